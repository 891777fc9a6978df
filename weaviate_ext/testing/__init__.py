"""The test kit for plugin authors: a conformance suite per plugin type, durability
checks for storage plugins, and pytest fixtures.

``weaviate_ext.testing.conformance`` holds the suite (no pytest needed);
``weaviate_ext.testing.durability`` kills a writer with SIGKILL mid-write and checks
that no acknowledged write is lost (:func:`check_crash_durability`);
``weaviate_ext.testing.pytest_plugin`` is registered through ``pytest11`` and gives
every pytest run the ``plugin_manager`` and ``load_plugin`` fixtures::

    from weaviate_ext.testing import check_plugin

    def test_conformance(load_plugin):
        check_plugin(load_plugin("plugin.yaml")).raise_for_failures()
"""

from weaviate_ext.testing.conformance import (
    CheckFailed,
    CheckResult,
    ConformanceReport,
    Skip,
    check_auth,
    check_generator,
    check_plugin,
    check_reranker,
    check_storage,
    check_transformer,
    check_vectorizer,
    expect,
    expect_raises,
)
from weaviate_ext.testing.durability import (
    CrashDurabilityResult,
    CrashRound,
    check_crash_durability,
    check_reopen_durability,
)

__all__ = [
    "CheckFailed",
    "CheckResult",
    "ConformanceReport",
    "CrashDurabilityResult",
    "CrashRound",
    "Skip",
    "check_auth",
    "check_crash_durability",
    "check_generator",
    "check_plugin",
    "check_reopen_durability",
    "check_reranker",
    "check_storage",
    "check_transformer",
    "check_vectorizer",
    "expect",
    "expect_raises",
]
