"""API keys: random tokens shown once, stored only as sha256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import bindparam, func, select, update

from app.store.models import ApiKey, utcnow
from app.store.repository import Repository, store_errors

TOKEN_PREFIX = "mf_"
_KEY_BY_HASH = select(ApiKey.__table__).where(ApiKey.__table__.c.key_hash == bindparam("digest"))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class KeyStore:
    """Create, check, list and revoke API keys."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def create(self, name: str, admin: bool) -> tuple[str, ApiKey]:
        """A new key; the token is returned once and never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(name=name, key_hash=hash_token(token), prefix=token[:10], admin=admin)
        with self.repo.session() as s:
            s.add(key)
        return token, key

    def check(self, token: str) -> ApiKey | None:
        """The active key for ``token``, or None (unknown or revoked)."""
        digest = hash_token(token)
        with store_errors(), self.repo.engine.connect() as conn:  # a Core read: every request checks a key
            row = conn.execute(_KEY_BY_HASH, {"digest": digest}).first()
        key = None if row is None else ApiKey(**row._mapping)
        if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, digest):
            return None
        return key

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
