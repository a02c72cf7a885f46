"""Errors of the store layer, free of SQLAlchemy types so services can catch them."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's own errors."""


class DuplicateError(StoreError):
    """A unique name already taken."""


class MissingError(StoreError):
    """A row a write refers to is gone (e.g. the subject was deleted while faces were being added)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or refused the transaction (down, restarting, locked too long).

    The write, if any, was not acknowledged: it may or may not have been committed when the
    connection dropped during the commit itself. Clients retry.
    """

    code = "store_unavailable"
    retry_after_s = 2

    def __init__(self, message: str = "the store is unreachable; retry shortly") -> None:
        super().__init__(message)
        self.message = message
