"""Awaitable variants of blocking methods, for hosts running an event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


def awaitable(
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Make the awaitable variant ``a<name>`` of a blocking method.

    The method runs in a worker thread (``asyncio.to_thread``), so the event loop keeps
    serving while a plugin works.
    """

    @functools.wraps(method)
    async def run(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(method, self, *args, **kwargs)

    run.__name__ = run.__qualname__ = f"a{method.__name__}"
    run.__doc__ = f"Awaitable :meth:`{method.__name__}`: runs it without blocking the loop."
    return cast("Callable[Concatenate[S, P], Coroutine[Any, Any, T]]", run)
