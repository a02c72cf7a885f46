"""API keys: random tokens shown once, stored only as sha256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import func, select, update

from app.store.models import ApiKey, utcnow
from app.store.repository import Repository

TOKEN_PREFIX = "mf_"
_KEY_BY_HASH = "SELECT id, name, prefix, admin, key_hash, revoked_at FROM api_keys WHERE key_hash = ?"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class KeyStore:
    """Create, check, list and revoke API keys."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._reads = repo.hot_reads

    def create(self, name: str, admin: bool) -> tuple[str, ApiKey]:
        """A new key; the token is returned once and never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(name=name, key_hash=hash_token(token), prefix=token[:10], admin=admin)
        with self.repo.session() as s:
            s.add(key)
        return token, key

    def check(self, token: str) -> ApiKey | None:
        """The active key for ``token``, or None (unknown or revoked); read fresh every time (a revoked key
        is refused at once), as plain SQL: every request checks a key (``app/store/hot_reads.py``)."""
        digest = hash_token(token)
        with self._reads.connection() as conn:
            found = self._reads.rows(conn, _KEY_BY_HASH, (digest,))
        if not found:
            return None
        key_id, name, prefix, admin, key_hash, revoked_at = found[0]
        if revoked_at is not None or not hmac.compare_digest(key_hash, digest):
            return None
        return ApiKey(id=key_id, name=name, prefix=prefix, admin=bool(admin), key_hash=key_hash)

    def list(self) -> list[ApiKey]:
        with self.repo.session() as s:
            return list(s.scalars(select(ApiKey).order_by(ApiKey.id)))

    def revoke(self, ident: str) -> int:
        """Revoke by id, name or token prefix; returns how many keys were revoked."""
        with self.repo.session() as s:
            condition = (ApiKey.name == ident) | (ApiKey.prefix == ident)
            if ident.isdigit():
                condition = condition | (ApiKey.id == int(ident))
            result = s.execute(
                update(ApiKey).where(condition, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
            )
            return int(result.rowcount or 0)

    def active_count(self) -> int:
        with self.repo.session() as s:
            return int(s.scalar(select(func.count()).where(ApiKey.revoked_at.is_(None))) or 0)
