"""Turn an endpoint builder ``f(*args) -> Call[T]`` into a client method with the same signature,
returning ``T`` (sync) or ``Awaitable[T]`` (async); editors and type checkers see the builder's parameters."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from marginface.client._core import Call

P = ParamSpec("P")
T = TypeVar("T")


class _SyncRunner(Protocol):
    def _run(self, call: Call[Any]) -> Any: ...


class _AsyncRunner(Protocol):
    async def _run(self, call: Call[Any]) -> Any: ...


class sync_endpoint(Generic[P, T]):  # noqa: N801 - used like a decorator/function
    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        functools.update_wrapper(self, build)  # type: ignore[arg-type]

    def __get__(self, client: _SyncRunner, owner: type | None = None) -> Callable[P, T]:
        build = self.build

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return client._run(build(*args, **kwargs))

        return method


class async_endpoint(Generic[P, T]):  # noqa: N801
    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        functools.update_wrapper(self, build)  # type: ignore[arg-type]

    def __get__(self, client: _AsyncRunner, owner: type | None = None) -> Callable[P, Awaitable[T]]:
        build = self.build

        @functools.wraps(build)
        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await client._run(build(*args, **kwargs))

        return method
