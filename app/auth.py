"""API-key authentication: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Plain keys may detect, verify, identify and read galleries, subjects and faces; admin keys may also
create, change and delete them (and enroll).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import ApiError
from app.services.offload import store_read
from app.store.models import ApiKey

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


async def require_key(request: Request) -> ApiKey | None:
    """Dependency: any active key (None when the server runs with --no-auth). The store is read only when
    a key must be checked, on the loop or in a worker thread (``store_read``; a plain ``def`` dependency
    would cost every request a thread hop)."""
    ctx = request.app.state.ctx
    if not ctx.settings.auth:
        return None
    return await store_read(ctx.repo, check_key, request)  # on the loop on SQLite (app.services.offload)


def check_key(request: Request) -> ApiKey | None:
    """Any active key (None when the server runs with --no-auth); blocking (reads the store)."""
    ctx = request.app.state.ctx
    if not ctx.settings.auth:
        return None
    token = _token(request)
    if token is None:
        raise ApiError(
            401, "missing_api_key", "send an API key: Authorization: Bearer <key>", headers=_CHALLENGE
        )
    key = ctx.keys.check(token)
    if key is None:
        raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked", headers=_CHALLENGE)
    return key


async def require_admin(key: Annotated[ApiKey | None, Depends(require_key)]) -> ApiKey | None:
    """An admin key (writes to galleries, subjects and faces)."""
    if key is not None and not key.admin:
        raise ApiError(403, "admin_required", "this operation needs an admin API key")
    return key


AnyKey = Depends(require_key)
AdminKey = Depends(require_admin)
