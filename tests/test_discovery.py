"""pip-installed plugins: found by entry point name, imported only when asked for.

Each test lays out an installed distribution the way pip does (a package directory and
its ``.dist-info`` with ``entry_points.txt``) on a temporary ``sys.path`` entry, so
importlib-metadata finds it exactly as it finds a real install.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from weaviate_ext import (
    PluginDisabled,
    PluginLoadError,
    PluginManager,
    PluginNotFound,
)

PACKAGE_INIT = """
from pathlib import Path
from weaviate_ext import hookimpl

IMPORTED = True

@hookimpl
def weaviate_ext_discover():
    return [Path(__file__).parent / "plugin.yaml"]
"""

MANIFEST = """\
apiVersion: weaviate.io/v1
kind: Plugin
metadata:
  name: {name}
  version: {version}
spec:
  type: transformer
  runtime: python
  entrypoint: {module}.impl:Plugin
{extra}"""

IMPL = """
from weaviate_ext import hookimpl

class Plugin:
    @hookimpl
    def plugin_setup(self, config):
        self.suffix = config.get("suffix", "")

    @hookimpl
    def transform(self, data):
        return data + self.suffix
"""


def install(
    site: Path,
    name: str,
    *,
    version: str = "1.0.0",
    init: str = PACKAGE_INIT,
    extra: str = "",
) -> str:
    """Lay out distribution ``wx-<name>`` with module ``wx_<name>`` in ``site``."""
    module = "wx_" + name.replace("-", "_")
    package = site / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(init))
    (package / "impl.py").write_text(textwrap.dedent(IMPL))
    (package / "plugin.yaml").write_text(
        MANIFEST.format(name=name, version=version, module=module, extra=extra)
    )
    info = site / f"wx_{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: wx-{name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[weaviate_ext]\n{name} = {module}\n")
    return module


@pytest.fixture
def site(tmp_path, monkeypatch):
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    for key in [k for k in sys.modules if k.startswith("wx_")]:
        del sys.modules[key]


def test_installed_plugins_are_listed_without_being_imported(site):
    module = install(site, "suffixer")
    with PluginManager() as manager:
        assert "suffixer" in manager.installed
        row = next(r for r in manager.plugins() if r.name == "suffixer")
        assert row.status == "installed" and "wx-suffixer" in row.source
        assert module not in sys.modules, "listing must not import the package"


def test_asking_by_name_imports_and_loads_it(site):
    module = install(site, "suffixer", extra="  config:\n    suffix: {type: string}\n")
    with PluginManager(config={"suffixer": {"suffix": "!"}}) as manager:
        handle = manager.get_transformer("suffixer")
        assert module in sys.modules
        assert handle.transform("hi") == "hi!"
        row = next(r for r in manager.plugins() if r.name == "suffixer")
        assert row.status == "loaded" and row.version == "1.0.0"


def test_a_broken_package_is_reported_and_does_not_stop_the_host(site):
    install(site, "good")
    install(site, "broken", init="import not_a_module_anywhere\n")
    with PluginManager() as manager:
        with pytest.raises(PluginLoadError, match="cannot import wx_broken.*not_a_module_anywhere"):
            manager.get_transformer("broken")
        result = manager.load_installed()
        assert "good" in result.loaded
        assert "broken" in result.failed
        rows = {r.name: r for r in manager.plugins()}
        assert rows["broken"].status == "broken"
        assert "not_a_module_anywhere" in rows["broken"].reason
        assert manager.get_transformer("good").transform("x") == "x"


def test_package_without_discovery_hook_or_matching_manifest(site):
    install(site, "nohook", init="X = 1\n")
    module = install(site, "mismatch")
    (site / module / "plugin.yaml").write_text(
        (site / module / "plugin.yaml").read_text().replace("name: mismatch", "name: renamed")
    )
    with PluginManager() as manager:
        with pytest.raises(PluginLoadError, match="implements no weaviate_ext_discover hook"):
            manager.get_transformer("nohook")
        with pytest.raises(PluginLoadError, match="ships no manifest named 'mismatch'"):
            manager.get_transformer("mismatch")


def test_disabled_installed_plugin(site, monkeypatch):
    module = install(site, "suffixer")
    monkeypatch.setenv("WEAVIATE_EXT_DISABLE", "suffixer")
    with PluginManager() as manager:
        with pytest.raises(PluginDisabled):
            manager.get_transformer("suffixer")
        assert module not in sys.modules
        assert next(r for r in manager.plugins() if r.name == "suffixer").status == "disabled"


def test_discover_false_ignores_installed_plugins(site):
    install(site, "suffixer")
    with PluginManager(discover=False) as manager:
        assert manager.installed == ()
        with pytest.raises(PluginNotFound):
            manager.get_transformer("suffixer")


def test_a_dependency_on_an_installed_plugin_loads_it(site, tmp_path):
    from plugin_factory import vectorizer_source, write_plugin

    install(site, "base", version="1.3.0")
    path = write_plugin(
        tmp_path,
        "user",
        "vectorizer",
        vectorizer_source(),
        dependencies=[{"name": "base", "version": "^1.2"}],
    )
    with PluginManager() as manager:
        manager.load(path)
        assert set(manager.names()) == {"base", "user"}


def test_the_python_runtime_is_itself_an_entry_point():
    with PluginManager(discover=False) as manager:
        assert "python" in manager.runtimes
