"""The conformance suite: does a loaded plugin keep the contract of its type?

Each ``check_<type>(handle)`` function calls a plugin through its typed handle (so it
tests what a host sees, whatever the runtime) and runs a list of named checks. A check
that raises, or whose result breaks the contract, is recorded as failed with a message;
the suite never stops at the first failure. :func:`check_plugin` picks the function for
the handle's type (:data:`CHECKS`, from :mod:`weaviate_ext.plugin_types`)::

    from weaviate_ext.testing import check_plugin

    report = check_plugin(manager.get_vectorizer("hash-embedder"))
    print(report)                  # one line per check
    report.raise_for_failures()    # AssertionError listing every failed check

The suite uses no pytest; :mod:`weaviate_ext.testing.pytest_plugin` adds fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from weaviate_ext import plugin_types
from weaviate_ext.handles import PluginHandle
from weaviate_ext.plugin_types import TypeTable, resolve
from weaviate_ext.testing.conformance.records import check_auth, check_storage
from weaviate_ext.testing.conformance.report import (
    CheckFailed,
    CheckResult,
    ConformanceReport,
    Skip,
    expect,
    expect_raises,
)
from weaviate_ext.testing.conformance.text import check_generator, check_reranker, check_transformer
from weaviate_ext.testing.conformance.vectors import check_vectorizer

# ---------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------


CHECKS: Mapping[str, Callable[..., ConformanceReport]] = TypeTable(lambda t: resolve(t.conformance))
"""The conformance suite of each plugin type (derived from :mod:`weaviate_ext.plugin_types`)."""


def check_plugin(handle: PluginHandle, **options: Any) -> ConformanceReport:
    """Run the conformance suite of ``handle``'s plugin type.

    ``options`` go to the type's function (``valid_credentials=...`` for auth); an
    option the type does not take is a :class:`TypeError`.
    """
    kind = plugin_types.TYPES.get(getattr(handle, "plugin_type", ""))
    if kind is None or not isinstance(handle, kind.handle_class):
        raise TypeError(f"check_plugin needs a typed plugin handle, got {type(handle).__name__}")
    return CHECKS[kind.name](handle, **options)


__all__ = [
    "CHECKS",
    "CheckFailed",
    "CheckResult",
    "ConformanceReport",
    "Skip",
    "check_auth",
    "check_generator",
    "check_plugin",
    "check_reranker",
    "check_storage",
    "check_transformer",
    "check_vectorizer",
    "expect",
    "expect_raises",
]
