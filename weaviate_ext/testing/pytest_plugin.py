"""pytest fixtures for plugin authors, registered through the ``pytest11`` entry point.

Installed with weaviate-ext, so every pytest run has them:

``plugin_manager``
    a fresh ``PluginManager(discover=False)``, closed after the test.
``load_plugin``
    a factory: ``load_plugin(path, config=None)`` loads a ``plugin.yaml`` (or a
    directory holding one) into ``plugin_manager`` and returns its typed handle. A
    relative path is tried against the current directory, then the test file's
    directory, then pytest's root directory.
``weaviate_plugin``
    the handle of the plugin named by ``@pytest.mark.weaviate_ext_plugin(path,
    config={...})`` on the test, or else by the ``--weaviate-ext-plugin PATH`` option
    (given several times, the test runs once per path); skipped when neither is given.

A conformance test is then one line::

    from weaviate_ext.testing import check_plugin

    def test_conformance(load_plugin):
        check_plugin(load_plugin("plugin.yaml")).raise_for_failures()
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from weaviate_ext.handles import PluginHandle
    from weaviate_ext.manager import PluginManager

OPTION = "--weaviate-ext-plugin"
MARKER = "weaviate_ext_plugin"
MANIFEST_NAME = "plugin.yaml"


class PluginLoader(Protocol):
    """The type of the ``load_plugin`` fixture."""

    def __call__(
        self, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None
    ) -> Any:
        """Load the manifest at ``path`` with ``config``; return the plugin's typed handle."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--weaviate-ext-plugin PATH``."""
    group = parser.getgroup("weaviate-ext", "weaviate-ext plugin testing")
    group.addoption(
        OPTION,
        action="append",
        default=[],
        metavar="PATH",
        dest="weaviate_ext_plugins",
        help="plugin.yaml (or its directory) for tests using the weaviate_plugin fixture; "
        "may be given several times",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``weaviate_ext_plugin`` marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(path, config=None): the plugin.yaml the weaviate_plugin fixture loads",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests that use ``weaviate_plugin`` once per ``--weaviate-ext-plugin`` path."""
    if "weaviate_plugin_path" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker(MARKER) is not None:
        return
    paths: list[str] = metafunc.config.getoption("weaviate_ext_plugins") or []
    if paths:
        metafunc.parametrize(
            "weaviate_plugin_path", paths, ids=[Path(p).parent.name or p for p in paths]
        )


def resolve_manifest_path(
    path: str | os.PathLike[str], *, test_dir: Path | None = None, root: Path | None = None
) -> Path:
    """Find ``path``: as given, else under ``test_dir``, else under ``root``.

    A directory stands for the ``plugin.yaml`` inside it. When nothing exists, the path
    as given is returned, so that loading it reports the missing file.
    """
    given = Path(path)
    candidates = [given]
    if not given.is_absolute():
        candidates += [base / given for base in (test_dir, root) if base is not None]
    for candidate in candidates:
        if candidate.is_dir() and (candidate / MANIFEST_NAME).is_file():
            return candidate / MANIFEST_NAME
        if candidate.is_file():
            return candidate
    return given


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    """A ``PluginManager(discover=False)`` for one test, closed afterwards."""
    from weaviate_ext.manager import PluginManager

    manager = PluginManager(discover=False)
    try:
        yield manager
    finally:
        manager.close()


@pytest.fixture
def load_plugin(plugin_manager: PluginManager, request: pytest.FixtureRequest) -> PluginLoader:
    """``load_plugin(path, config=None)``: load a plugin into ``plugin_manager``."""
    test_dir = Path(str(request.path)).parent
    root = Path(str(request.config.rootpath))

    def load(path: str | os.PathLike[str], config: Mapping[str, Any] | None = None) -> Any:
        manifest = resolve_manifest_path(path, test_dir=test_dir, root=root)
        return plugin_manager.load(manifest, config=config)

    return load


@pytest.fixture
def weaviate_plugin_path(request: pytest.FixtureRequest) -> str:
    """The path for ``weaviate_plugin``: the marker's, or skip when none is given."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None or not marker.args:
        pytest.skip(f"no @pytest.mark.{MARKER}(path) and no {OPTION} given")
    return str(marker.args[0])


@pytest.fixture
def weaviate_plugin(
    weaviate_plugin_path: str, load_plugin: PluginLoader, request: pytest.FixtureRequest
) -> PluginHandle:
    """The handle of the plugin under test (marker or ``--weaviate-ext-plugin``)."""
    marker = request.node.get_closest_marker(MARKER)
    config = marker.kwargs.get("config") if marker is not None else None
    handle: PluginHandle = load_plugin(weaviate_plugin_path, config=config)
    return handle
