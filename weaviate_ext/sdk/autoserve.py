"""Serving a plugin script that never calls ``serve()``.

The product spec's example defines a plugin class in ``plugin_server.py`` and is run
with ``python plugin_server.py``, with no call that starts a server. To make that work,
every plugin subclass defined in the ``__main__`` module of a script is noted; the first
one starts a (non-daemon) thread that waits for the main thread to finish. When the
script's top level has run to its end without an uncaught exception and without an
explicit :func:`~weaviate_ext.sdk.serve` call, that thread instantiates the *last*
plugin class defined in ``__main__`` (with no arguments) and serves it. A script that
calls ``serve()`` itself is unaffected; set ``WEAVIATE_EXT_SDK_AUTOSERVE=0`` to switch
the mechanism off.

The same hook makes the message classes of the plugin's type (``VectorizeResponse``
...) available in the defining module's globals when the module has not defined or
imported those names itself, so the spec's snippet, which uses ``VectorizeResponse``
without importing it, runs as written.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weaviate_ext.sdk.plugins import PluginBase

_lock = threading.Lock()
_candidates: list[type[PluginBase]] = []
_waiter: threading.Thread | None = None
_explicit = False
_main_failed = False


def served() -> None:
    """Record that ``serve()`` was called explicitly (auto-serve then stays off)."""
    global _explicit
    _explicit = True


def _enabled() -> bool:
    if os.environ.get("WEAVIATE_EXT_SDK_AUTOSERVE", "1") in ("0", "false", "no"):
        return False
    main = sys.modules.get("__main__")
    return main is not None and hasattr(main, "__file__") and not sys.flags.interactive


def _inject_messages(cls: type[PluginBase]) -> None:
    from weaviate_ext.grpc import weaviate_plugin_pb2 as pb

    module = sys.modules.get(cls.__module__)
    if module is None:
        return
    namespace: dict[str, Any] = vars(module)
    for name in cls.message_names:
        namespace.setdefault(name, getattr(pb, name))


def note_subclass(cls: type[PluginBase]) -> None:
    """Called for every plugin subclass; arms auto-serve for ones defined in ``__main__``."""
    global _waiter
    if cls.__module__.startswith("weaviate_ext."):
        return
    _inject_messages(cls)
    if cls.__module__ != "__main__" or not _enabled():
        return
    with _lock:
        _candidates.append(cls)
        if _waiter is None:
            _hook_excepthook()
            _waiter = threading.Thread(target=_serve_after_main, name="weaviate-plugin-autoserve")
            _waiter.start()


def _hook_excepthook() -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        global _main_failed
        _main_failed = True
        previous(kind, value, tb)

    sys.excepthook = hook


def _serve_after_main() -> None:
    threading.main_thread().join()
    if _explicit or _main_failed or not _candidates:
        return
    from weaviate_ext.sdk.server import serve

    serve(_candidates[-1]())
