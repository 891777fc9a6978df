"""Direct tests of weaviate_ext.builder: building one plugin version off the registry.

A :class:`Builder` is used on its own here, with a bare :class:`Registry` holding the
hookspecs and the python bridge, and small Python plugins written by plugin_factory.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from plugin_factory import vectorizer_source, write_plugin

from weaviate_ext import hookimpl, hookspecs
from weaviate_ext.bridges import python as python_bridge
from weaviate_ext.builder import PROBE_TEXT, Builder, check_hooks, check_replaces
from weaviate_ext.discovery import Installed
from weaviate_ext.dispatch import Registry
from weaviate_ext.errors import (
    PermissionNotGranted,
    PluginDisabled,
    PluginLoadError,
    RuntimeNotAllowed,
    RuntimeNotAvailable,
)
from weaviate_ext.grants import Grant, Grants
from weaviate_ext.hookspecs import PROJECT_NAME
from weaviate_ext.manifest import Manifest, load_manifest


@pytest.fixture
def registry() -> Registry:
    """A registry with the hookspecs and the python bridge, nothing else."""
    registry = Registry(PROJECT_NAME)
    registry.add_hookspecs(hookspecs)
    registry.register(python_bridge, name="runtime:python")
    return registry


def make_builder(
    registry: Registry,
    *,
    runtimes: dict[str, Installed] | None = None,
    allowed: frozenset[str] | None = None,
    disabled: set[str] | None = None,
    timeout: float | None = 30.0,
    grants: Grants | None = None,
) -> Builder:
    return Builder(registry, runtimes or {}, allowed, disabled or set(), timeout, grants)


def transformer(tmp_path: Path, name: str, body: str, **options: Any) -> Manifest:
    """A python transformer whose class ``Plugin`` has ``body`` (indented methods)."""
    source = f"from weaviate_ext import hookimpl\n\nCLOSED = []\n\nclass Plugin:\n{body}"
    return load_manifest(write_plugin(tmp_path, name, "transformer", source, **options))


TRANSFORM = """
    @hookimpl
    def transform(self, data):
        return data.upper()
"""

RECORDS_CLOSE = """
    @hookimpl
    def plugin_close(self):
        CLOSED.append(True)
"""


def module_of(manifest: Manifest) -> Any:
    """The plugin module the python bridge imported (privately) for ``manifest``."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        private = name.startswith(python_bridge.PRIVATE_PREFIX)
        if private and file and Path(file).parent.parent == manifest.directory:
            return module
    raise AssertionError(f"{manifest.name}'s module was not imported")


def closed_flag(manifest: Manifest) -> list[bool]:
    """The ``CLOSED`` list of ``manifest``'s plugin module: one entry per plugin_close."""
    flag: list[bool] = module_of(manifest).CLOSED
    return flag


def imported(name: str) -> bool:
    """Whether the python bridge has imported the module of plugin ``name``."""
    return any(m.startswith(f"{python_bridge.PRIVATE_PREFIX}{name}_") for m in sys.modules)


# -- check_hooks -------------------------------------------------------------------------


class Upper:
    @hookimpl
    def transform(self, data: str) -> str:
        return data.upper()

    @hookimpl
    def plugin_setup(self, config: Any, manifest: Any) -> None:
        pass


def test_check_hooks_accepts_type_and_lifecycle_hooks(registry: Registry, tmp_path: Path) -> None:
    manifest = transformer(tmp_path, "upper", TRANSFORM)
    impls = check_hooks(registry, Upper(), manifest)
    assert set(impls) == {"transform", "plugin_setup"}
    assert registry.get_plugin("upper") is None, "checking must not register"


def test_check_hooks_refuses_a_hook_of_another_type(registry: Registry, tmp_path: Path) -> None:
    class Both(Upper):
        @hookimpl
        def vectorize_batch(self, texts: list[str]) -> Any:
            return texts

    manifest = transformer(tmp_path, "both", TRANSFORM)
    with pytest.raises(PluginLoadError, match="'vectorize_batch', a vectorizer hook") as info:
        check_hooks(registry, Both(), manifest)
    assert info.value.plugin == "both"


def test_check_hooks_names_the_closest_hook_for_a_typo(registry: Registry, tmp_path: Path) -> None:
    class Typo:
        @hookimpl
        def transfrom(self, data: str) -> str:
            return data

    manifest = transformer(tmp_path, "typo", TRANSFORM)
    with pytest.raises(PluginLoadError, match="unknown hook 'transfrom'.*did you mean 'transform'"):
        check_hooks(registry, Typo(), manifest)


def test_check_hooks_refuses_a_plugin_wrapper(registry: Registry, tmp_path: Path) -> None:
    class Wrapping:
        @hookimpl(wrapper=True)
        def transform(self, data: str) -> Any:
            return (yield)

    manifest = transformer(tmp_path, "wrapping", TRANSFORM)
    with pytest.raises(PluginLoadError, match="as a wrapper; .*only the host wraps them"):
        check_hooks(registry, Wrapping(), manifest)


def test_check_hooks_needs_the_required_hooks(registry: Registry, tmp_path: Path) -> None:
    class SetupOnly:
        @hookimpl
        def plugin_setup(self, config: Any, manifest: Any) -> None:
            pass

    manifest = transformer(tmp_path, "setup-only", TRANSFORM)
    with pytest.raises(PluginLoadError, match="a transformer plugin must implement transform"):
        check_hooks(registry, SetupOnly(), manifest)


def test_check_hooks_reports_pluggy_validation(registry: Registry, tmp_path: Path) -> None:
    class BadArgs:
        @hookimpl
        def transform(self, data: str, language: str) -> str:
            return data

    manifest = transformer(tmp_path, "bad-args", TRANSFORM)
    with pytest.raises(PluginLoadError, match="invalid hook implementation: .*language"):
        check_hooks(registry, BadArgs(), manifest)


# -- disabled, allowed runtimes, bridges -------------------------------------------------


def test_a_disabled_plugin_is_refused_before_anything_is_built(
    registry: Registry, tmp_path: Path
) -> None:
    manifest = transformer(tmp_path, "off", TRANSFORM)
    builder = make_builder(registry, disabled={"off"})
    with pytest.raises(PluginDisabled, match="is disabled") as info:
        builder.build(manifest, None, "test")
    assert info.value.plugin == "off"
    with pytest.raises(PluginDisabled):
        builder.check_enabled("off")
    builder.check_enabled("on")  # another name passes
    assert not imported("off")


def test_a_runtime_the_host_does_not_allow_is_refused(registry: Registry, tmp_path: Path) -> None:
    manifest = transformer(tmp_path, "upper", TRANSFORM)
    builder = make_builder(registry, allowed=frozenset({"wasm"}))
    with pytest.raises(RuntimeNotAllowed, match=r"runtime 'python' is not allowed.*wasm"):
        builder.build(manifest, None, "test")
    make_builder(registry, allowed=frozenset({"python"})).check_allowed(manifest)
    make_builder(registry).check_allowed(manifest)  # None: every runtime


def test_no_bridge_for_a_runtime_names_the_installed_ones(
    registry: Registry, tmp_path: Path
) -> None:
    manifest = transformer(tmp_path, "odd", TRANSFORM, runtime="pyhton")
    entry = Installed("python", "weaviate_ext.bridges.python", "weaviate-ext", None)  # type: ignore[arg-type]
    builder = make_builder(registry, runtimes={"python": entry})
    with pytest.raises(RuntimeNotAvailable, match="no bridge for runtime 'pyhton'.*'python'"):
        builder.build(manifest, None, "test")


def test_a_bridge_that_fails_to_import(registry: Registry, tmp_path: Path) -> None:
    class Broken:
        value = "nowhere:bridge"

        def load(self) -> object:
            raise ImportError("no module named nowhere")

    manifest = transformer(tmp_path, "odd", TRANSFORM, runtime="other")
    builder = make_builder(registry, runtimes={"other": Broken()})  # type: ignore[dict-item]
    with pytest.raises(RuntimeNotAvailable, match="'other' runtime .* failed to import"):
        builder.build(manifest, None, "test")


# -- build: setup, health, probe ---------------------------------------------------------


def test_build_makes_a_working_version_off_the_registry(registry: Registry, tmp_path: Path) -> None:
    path = write_plugin(tmp_path, "vec", "vectorizer", vectorizer_source())
    manifest = load_manifest(path)
    obj, config = make_builder(registry).build(manifest, None, str(path))
    assert registry.get_plugin("vec") is None and not registry.is_registered(obj)
    assert type(config).__name__ == "PluginConfig"


def test_the_probe_sends_the_probe_text(registry: Registry, tmp_path: Path) -> None:
    body = """
    @hookimpl
    def transform(self, data):
        CLOSED.append(data)  # (the list records the probe here)
        return data
"""
    manifest = transformer(tmp_path, "seer", body)
    make_builder(registry).build(manifest, None, "test")
    assert module_of(manifest).CLOSED == [PROBE_TEXT]


def test_a_failing_probe_closes_the_candidate(registry: Registry, tmp_path: Path) -> None:
    body = (
        """
    @hookimpl
    def transform(self, data):
        raise RuntimeError("model file missing")
"""
        + RECORDS_CLOSE
    )
    manifest = transformer(tmp_path, "sick", body)
    with pytest.raises(
        PluginLoadError, match="failed to start: transform: RuntimeError: model file missing"
    ):
        make_builder(registry).build(manifest, None, "test")
    assert closed_flag(manifest) == [True]
    assert registry.get_plugin("sick") is None


def test_an_unhealthy_plugin_is_closed(registry: Registry, tmp_path: Path) -> None:
    body = (
        TRANSFORM
        + """
    @hookimpl
    def plugin_health(self):
        return False
"""
        + RECORDS_CLOSE
    )
    manifest = transformer(tmp_path, "unhealthy", body)
    with pytest.raises(PluginLoadError, match="plugin_health says it is not healthy"):
        make_builder(registry).build(manifest, None, "test")
    assert closed_flag(manifest) == [True]


def test_a_refused_hook_closes_the_object(registry: Registry, tmp_path: Path) -> None:
    body = (
        TRANSFORM
        + """
    @hookimpl
    def rerank(self, query, documents):
        return []
"""
        + RECORDS_CLOSE
    )
    manifest = transformer(tmp_path, "mixed", body)
    with pytest.raises(PluginLoadError, match="'rerank', a reranker hook"):
        make_builder(registry).build(manifest, None, "test")
    assert closed_flag(manifest) == [True]


# -- isolation and timeouts ---------------------------------------------------------------


def test_isolation_is_what_the_bridge_hook_says(registry: Registry, tmp_path: Path) -> None:
    manifest = transformer(tmp_path, "upper", TRANSFORM)
    builder = make_builder(registry)
    obj, _ = builder.build(manifest, None, "test")
    assert builder.isolation(manifest, obj) == python_bridge.ISOLATION

    class Sandbox:
        @hookimpl
        def weaviate_ext_isolation(self, manifest: Manifest, plugin: object) -> str | None:
            return "sandboxed (test)" if manifest.spec.runtime == "box" else None

    registry.register(Sandbox())
    boxed = transformer(tmp_path, "boxed", TRANSFORM, runtime="box", directory="boxed")
    assert builder.isolation(boxed, object()) == "sandboxed (test)"
    unknown = transformer(tmp_path, "unknown", TRANSFORM, runtime="elsewhere")
    assert builder.isolation(unknown, object()) is None


def test_timeout_of_prefers_the_manifest(registry: Registry, tmp_path: Path) -> None:
    plain = transformer(tmp_path, "plain", TRANSFORM)
    timed = transformer(tmp_path, "timed", TRANSFORM, extra_spec={"timeout": 2.5})
    assert make_builder(registry, timeout=7.0).timeout_of(plain) == 7.0
    assert make_builder(registry, timeout=None).timeout_of(plain) is None
    assert make_builder(registry, timeout=None).timeout_of(timed) == 2.5


# -- grants ---------------------------------------------------------------------------------


def test_a_request_not_granted_refuses_the_build(registry: Registry, tmp_path: Path) -> None:
    asks = {"permissions": {"env": ["WX_BUILDER_TEST_TOKEN"]}}
    manifest = transformer(tmp_path, "asker", TRANSFORM + RECORDS_CLOSE, extra_spec=asks)
    with pytest.raises(PermissionNotGranted, match="'WX_BUILDER_TEST_TOKEN'") as info:
        make_builder(registry).build(manifest, None, "test")
    assert info.value.plugin == "asker"
    assert not imported("asker"), "a refused request stops the build before the import"
    grants = Grants.of({"asker": Grant(env={"WX_BUILDER_TEST_TOKEN"})}, ())
    make_builder(registry, grants=grants).build(manifest, None, "test")
    trusted = Grants.of(None, ["asker"])
    make_builder(registry, grants=trusted).build(manifest, None, "test")


# -- reload checks --------------------------------------------------------------------------


def test_check_replaces_refuses_another_name_or_type(tmp_path: Path) -> None:
    old = transformer(tmp_path, "same", TRANSFORM)
    check_replaces(old, transformer(tmp_path / "v2", "same", TRANSFORM), "v2")
    other = transformer(tmp_path, "other", TRANSFORM)
    with pytest.raises(PluginLoadError, match="defines 'other', not 'same'"):
        check_replaces(old, other, "elsewhere/plugin.yaml")
    vec = load_manifest(write_plugin(tmp_path / "v3", "same", "vectorizer", vectorizer_source()))
    with pytest.raises(
        PluginLoadError, match=r"cannot change its type \(transformer -> vectorizer"
    ):
        check_replaces(old, vec, "v3")
