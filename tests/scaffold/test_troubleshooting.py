"""Every error the framework prints names the section of docs/troubleshooting.md that
explains it, and that section exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scaffold_helpers import invoke

import weaviate_ext
from weaviate_ext import errors
from weaviate_ext.errors import (
    AuthenticationError,
    ConfigError,
    DeadlineExceeded,
    ManifestError,
    PluginCallError,
    PluginLoadError,
    PluginNotFound,
    WeaviateExtError,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def _import_everything() -> None:
    """Import the modules that define error classes (bridges, scaffold, server...)."""
    import pkgutil

    for info in pkgutil.walk_packages(weaviate_ext.__path__, "weaviate_ext."):
        last = info.name.rpartition(".")[2]
        if last.startswith("_") or ".grpc.weaviate_plugin_pb2" in info.name:
            continue  # private modules may be scripts (and __main__ runs the CLI)
        try:
            __import__(info.name)
        except ImportError:  # an optional extra that is not installed
            continue


def _anchors() -> set[str]:
    anchors = set()
    for line in PAGE.read_text().splitlines():
        match = re.match(r"#+ (.+)$", line)
        if match:
            title = match.group(1).strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return anchors


def test_every_error_class_has_a_section() -> None:
    _import_everything()
    classes = {WeaviateExtError, *_subclasses(WeaviateExtError)}
    classes = {c for c in classes if c.__module__.startswith("weaviate_ext")}
    missing = sorted(c.__name__ for c in classes if c.section not in _anchors())
    assert missing == [], f"add a '## <ClassName>' section to docs/troubleshooting.md for {missing}"


def test_messages_name_their_section_once() -> None:
    error = PluginLoadError("p", "it broke")
    assert str(error) == "plugin 'p': it broke (see docs/troubleshooting.md#pluginloaderror)"
    wrapped = PluginCallError("p", "rerank", str(DeadlineExceeded("q", "rerank", "late")))
    assert str(wrapped).count("(see ") == 1
    assert str(wrapped).endswith("(see docs/troubleshooting.md#plugincallerror)")
    assert str(PluginNotFound("x", ["a"])).startswith("no plugin named 'x' (loaded: a)")
    assert errors.troubleshooting_section(DeadlineExceeded) == (
        "docs/troubleshooting.md#deadlineexceeded"
    )
    assert errors.troubleshooting_section(ValueError("x")) == "docs/troubleshooting.md"


@pytest.mark.parametrize(
    "error",
    [
        ManifestError.single("plugin.yaml", 3, "spec.type", "bad"),
        ConfigError("plugin 'p': config key 'k': is required"),
        AuthenticationError("invalid token"),
    ],
)
def test_messages_with_a_contract_of_their_own_stay_bare(error: WeaviateExtError) -> None:
    assert "(see " not in str(error)
    assert errors.troubleshooting_section(error).startswith("docs/troubleshooting.md#")


def test_the_cli_prints_the_section_in_its_one_line_error() -> None:
    result = invoke("--no-discover", "call", "no-such-plugin", "x")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no plugin named 'no-such-plugin' (loaded: none) "
        "(see docs/troubleshooting.md#pluginnotfound)\n"
    )
