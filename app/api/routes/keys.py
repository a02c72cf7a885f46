"""Admin keys API: list, create (the token is in the answer once), revoke; and ``/keys/me``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CtxDep
from app.api.schemas import KeyCreated, KeyList, KeyRevoked, WhoAmI
from app.auth import AdminKey, require_key
from app.keys.service import KeyService, key_json
from app.store.models import ApiKey

router = APIRouter(prefix="/keys", tags=["keys"])

_NO_STORE = {"Cache-Control": "no-store"}


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, description="a label for the key (who or what uses it)")
    admin: bool = Field(default=False, description="admin keys may also write and manage keys")


def _service(ctx: CtxDep) -> KeyService:
    return KeyService(ctx.keys)


@router.get("/me", response_model=WhoAmI)
def whoami(key: Annotated[ApiKey | None, Depends(require_key)]) -> dict[str, Any]:
    """The key this request was made with (any key): name, prefix and whether it is admin."""
    if key is None:  # the server runs with --no-auth: everything is allowed
        return {"auth": False, "admin": True, "name": None, "prefix": None}
    return {"auth": True, "admin": bool(key.admin), "name": key.name, "prefix": key.prefix}


@router.get("", dependencies=[AdminKey], response_model=KeyList)
def list_keys(ctx: CtxDep) -> dict[str, Any]:
    """Every key, active and revoked (never a token)."""
    return {"keys": [key_json(k) for k in _service(ctx).list()]}


@router.post("", status_code=201, dependencies=[AdminKey], response_model=KeyCreated)
def create_key(body: KeyCreate, ctx: CtxDep) -> JSONResponse:
    """A new key; ``token`` is in this answer only (the store keeps its sha256)."""
    token, key = _service(ctx).create(body.name, body.admin)
    return JSONResponse({"key": key_json(key), "token": token}, status_code=201, headers=_NO_STORE)


@router.delete("/{key_id}", dependencies=[AdminKey], response_model=KeyRevoked)
def revoke_key(key_id: int, ctx: CtxDep) -> dict[str, Any]:
    """Revoke a key by id; it is refused from the next request on. The last active admin key stays."""
    key = _service(ctx).revoke(key_id)
    return {"revoked": key.id, "key": key_json(key)}
