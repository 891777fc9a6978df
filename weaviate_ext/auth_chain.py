"""Authentication and authorization across every loaded auth plugin.

``authenticate`` is pluggy's ``firstresult`` call of the hook over the auth plugins, in
the registry's order (the last loaded first; ``tryfirst``/``trylast`` honoured), each
plugin called through its handle (bulkhead, deadline, errors, host wrappers).
``authorize`` asks them all in the same order: one deny wins, one allow is needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pluggy

from weaviate_ext.dispatch import Registry, is_wrapper
from weaviate_ext.errors import InvalidInput
from weaviate_ext.handles import AuthHandle
from weaviate_ext.types import Identity

if TYPE_CHECKING:
    from weaviate_ext.handles import Slot


def _authenticate_by(handle: AuthHandle) -> Callable[..., Identity | None]:
    """An ``authenticate`` implementation that calls ``handle`` (pluggy passes the
    spec's arguments by name; the handle makes its own deadline)."""

    def authenticate(credentials: Mapping[str, str]) -> Identity | None:
        return handle.authenticate(credentials)

    return authenticate


class AuthChain:
    """The auth plugins among ``slots`` (a manager's loaded plugins by name), in the
    order of ``registry``; rebuilt on the first call after a register or unregister."""

    def __init__(
        self, registry: Registry, slots: Mapping[str, Slot], lock: threading.RLock
    ) -> None:
        self._registry = registry
        self._slots = slots
        self._lock = lock
        self._order: tuple[int, list[pluggy.HookImpl], list[AuthHandle]] = (-1, [], [])

    def plugins(self) -> tuple[list[pluggy.HookImpl], list[AuthHandle]]:
        """One ``authenticate`` implementation per auth plugin, in the registry's order,
        each calling the plugin through its handle; and the handles in pluggy's call
        order (the reverse). Cached until the next register or unregister."""
        generation, impls, handles = self._order
        if generation == self._registry.generation:
            return impls, handles
        with self._lock:
            generation = self._registry.generation
            impls, handles = [], []
            for impl in self._registry.hook.authenticate.get_hookimpls():
                slot = self._slots.get(impl.plugin_name)
                if slot is None or is_wrapper(impl):
                    continue
                handle = AuthHandle(slot)
                call = _authenticate_by(handle)
                impls.append(pluggy.HookImpl(impl.plugin, impl.plugin_name, call, impl.opts))
                handles.insert(0, handle)
            self._order = (generation, impls, handles)
        return impls, handles

    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        """The first identity an auth plugin recognises in ``credentials``, or ``None``;
        an :class:`~weaviate_ext.AuthenticationError` from one of them is passed on."""
        if not isinstance(credentials, Mapping):
            raise InvalidInput(f"credentials must be a mapping, got {type(credentials).__name__}")
        kwargs = {"credentials": credentials, "deadline": None}
        impls, _ = self.plugins()
        identity = self._registry._hookexec("authenticate", impls, kwargs, True)
        return identity  # type: ignore[return-value]

    def authorize(self, identity: Identity, resource: str, action: str) -> bool:
        """Whether ``identity`` may do ``action`` on ``resource``: one deny wins; at
        least one allow is needed."""
        allowed = False
        for handle in self.plugins()[1]:
            decision = handle.authorize(identity, resource, action)
            if decision is False:
                return False
            allowed = allowed or decision is True
        return allowed
