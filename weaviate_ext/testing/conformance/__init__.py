"""The conformance suite: does a loaded plugin keep the contract of its type?

Each ``check_<type>(handle)`` function calls a plugin through its typed handle (so it
tests what a host sees, whatever the runtime) and runs a list of named checks. A check
that raises, or whose result breaks the contract, is recorded as failed with a message;
the suite never stops at the first failure. :func:`check_plugin` picks the function for
the handle's type::

    from weaviate_ext.testing import check_plugin

    report = check_plugin(manager.get_vectorizer("hash-embedder"))
    print(report)                  # one line per check
    report.raise_for_failures()    # AssertionError listing every failed check

The suite uses no pytest; :mod:`weaviate_ext.testing.pytest_plugin` adds fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weaviate_ext.handles import (
    AuthHandle,
    GeneratorHandle,
    PluginHandle,
    RerankerHandle,
    StorageHandle,
    TransformerHandle,
    VectorizerHandle,
)
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


def check_plugin(handle: PluginHandle, **options: Any) -> ConformanceReport:
    """Run the conformance suite of ``handle``'s plugin type.

    ``options`` go to the type's function (``valid_credentials=...`` for auth); an
    option the type does not take is a :class:`TypeError`.
    """
    checks: dict[type[PluginHandle], Callable[..., ConformanceReport]] = {
        VectorizerHandle: check_vectorizer,
        TransformerHandle: check_transformer,
        RerankerHandle: check_reranker,
        GeneratorHandle: check_generator,
        StorageHandle: check_storage,
        AuthHandle: check_auth,
    }
    for kind, check in checks.items():
        if isinstance(handle, kind):
            return check(handle, **options)
    raise TypeError(f"check_plugin needs a typed plugin handle, got {type(handle).__name__}")


__all__ = [
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
