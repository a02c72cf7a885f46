"""Key management for the ``/keys`` API: list, create (token returned once), revoke by id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.services.errors import Conflict, NotFound
from app.store.keys import KeyStore
from app.store.models import ApiKey, iso, utcnow


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key as the API shows it: never the token nor its hash."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "admin": bool(key.admin),
        "active": key.revoked_at is None,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at) if key.revoked_at else None,
    }


class KeyService:
    """Keys over the shared KeyStore; revoking never leaves the server without an active admin key."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def list(self) -> list[ApiKey]:
        return self.store.list()

    def create(self, name: str, admin: bool) -> tuple[str, ApiKey]:
        return self.store.create(name, admin)

    def revoke(self, key_id: int) -> ApiKey:
        """Revoke one key by id; refuses unknown ids, revoked keys and the last active admin key."""
        with self.store.repo.session() as s:
            key = s.get(ApiKey, key_id, with_for_update=True)
            if key is None:
                raise NotFound.of("key", key_id)
            if key.revoked_at is not None:
                raise Conflict(f"key {key_id} is already revoked", code="key_already_revoked")
            if key.admin:
                admins = s.scalar(
                    select(func.count()).where(ApiKey.admin.is_(True), ApiKey.revoked_at.is_(None))
                )
                if int(admins or 0) <= 1:
                    raise Conflict(
                        "this is the last active admin key; create another admin key first",
                        code="last_admin_key",
                    )
            key.revoked_at = utcnow()
        return key
