"""Direct tests of weaviate_ext.dependencies: ranges, missing plugins, load order, cycles."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from weaviate_ext import dependencies
from weaviate_ext._version import __version__
from weaviate_ext.errors import DependencyError, PluginLoadError, WeaviateExtError
from weaviate_ext.manifest import FRAMEWORK_NAME, Manifest, parse_manifest


def manifest(name: str, *deps: tuple[str, str], version: str = "1.0.0") -> Manifest:
    """A transformer manifest named ``name`` with ``(name, range)`` dependencies."""
    spec: dict[str, object] = {"type": "transformer", "runtime": "python", "entrypoint": "m:P"}
    if deps:
        spec["dependencies"] = [{"name": n, "version": v} for n, v in deps]
    data = {
        "apiVersion": "weaviate.io/v1",
        "kind": "Plugin",
        "metadata": {"name": name, "version": version},
        "spec": spec,
    }
    return parse_manifest(yaml.safe_dump(data, sort_keys=False))


def versions(**known: str) -> Callable[[str], str | None]:
    """A ``version_of`` for :func:`dependencies.check`: the given plugins, else None."""
    return known.get


# -- check ------------------------------------------------------------------------------


def test_check_passes_when_every_dependency_is_loaded_and_in_range() -> None:
    dependencies.check(manifest("app", ("lib", "^1.2.0")), versions(lib="1.4.0"))
    dependencies.check(manifest("app"), versions())  # no dependencies at all


def test_check_asks_only_for_declared_dependencies() -> None:
    asked: list[str] = []

    def version_of(name: str) -> str | None:
        asked.append(name)
        return "2.0.0"

    dependencies.check(manifest("app", ("a", "*"), ("b", ">=2")), version_of)
    assert asked == ["a", "b"]


def test_a_missing_dependency_is_a_dependency_error_naming_it_and_where() -> None:
    with pytest.raises(DependencyError) as info:
        dependencies.check(manifest("app", ("lib", "^1.0.0")), versions())
    error = info.value
    assert isinstance(error, PluginLoadError)
    assert (error.plugin, error.name, error.hook) == ("app", "app", None)
    assert error.reason.startswith("depends on 'lib' ^1.0.0, which is not loaded (plugin.yaml:")
    assert str(error).startswith("plugin 'app': depends on 'lib' ^1.0.0, which is not loaded")
    assert str(error).endswith("(see docs/troubleshooting.md#dependencyerror)")


@pytest.mark.parametrize("loaded", ["0.9.9", "2.0.0", "1.0.0-rc.1"])
def test_a_dependency_out_of_range_names_both_versions(loaded: str) -> None:
    with pytest.raises(DependencyError) as info:
        dependencies.check(manifest("app", ("lib", "^1.0.0")), versions(lib=loaded))
    assert info.value.reason == f"depends on 'lib' ^1.0.0, but 'lib' {loaded} is loaded"


def test_the_first_failing_dependency_is_reported() -> None:
    app = manifest("app", ("a", "^1"), ("b", "^1"))
    with pytest.raises(DependencyError, match="depends on 'b'"):
        dependencies.check(app, versions(a="1.0.0"))


def test_the_framework_is_checked_against_its_own_version() -> None:
    never_asked = versions()
    dependencies.check(manifest("app", (FRAMEWORK_NAME, f">={__version__}")), never_asked)
    with pytest.raises(DependencyError) as info:
        dependencies.check(manifest("app", (FRAMEWORK_NAME, ">=999.0.0")), never_asked)
    assert info.value.reason == (
        f"depends on {FRAMEWORK_NAME!r} >=999.0.0, but {FRAMEWORK_NAME!r} {__version__} "
        "is installed"
    )


# -- load_order -------------------------------------------------------------------------


def names(order: list[Manifest]) -> list[str]:
    return [m.name for m in order]


def test_load_order_puts_dependencies_first() -> None:
    app = manifest("app", ("mid", "*"))
    mid = manifest("mid", ("base", "*"))
    base = manifest("base")
    order, cycles = dependencies.load_order([app, mid, base])
    assert names(order) == ["base", "mid", "app"]
    assert cycles == {}


def test_load_order_ignores_dependencies_outside_the_set() -> None:
    order, cycles = dependencies.load_order([manifest("app", ("elsewhere", "*"))])
    assert names(order) == ["app"] and cycles == {}


def test_load_order_of_nothing_is_empty() -> None:
    assert dependencies.load_order([]) == ([], {})


def test_a_cycle_fails_every_member_and_names_the_path() -> None:
    a = manifest("a", ("b", "*"))
    b = manifest("b", ("c", "*"))
    c = manifest("c", ("a", "*"))
    free = manifest("free")
    uses_a = manifest("uses-a", ("a", "*"))
    order, cycles = dependencies.load_order([a, b, c, free, uses_a])
    assert names(order) == ["free", "uses-a"] or names(order) == ["uses-a", "free"]
    assert sorted(cycles) == ["a", "b", "c"]
    for name, error in cycles.items():
        assert isinstance(error, DependencyError)
        assert error.plugin == name
        assert error.reason.startswith("is part of a dependency cycle: ")
        path = error.reason.removeprefix("is part of a dependency cycle: ").split(" -> ")
        assert path[0] == path[-1] and sorted(path[:-1]) == ["a", "b", "c"]
        assert str(error).count("(see ") == 1


def test_two_separate_cycles_are_both_reported() -> None:
    ring = [manifest("a", ("b", "*")), manifest("b", ("a", "*"))]
    other = [manifest("x", ("y", "*")), manifest("y", ("x", "*"))]
    order, cycles = dependencies.load_order([*ring, *other, manifest("ok")])
    assert names(order) == ["ok"]
    assert sorted(cycles) == ["a", "b", "x", "y"]


# -- dependents -------------------------------------------------------------------------


def test_dependents_lists_loaded_plugins_that_declare_the_dependency() -> None:
    loaded = {
        "lib": manifest("lib"),
        "b-app": manifest("b-app", ("lib", "^1")),
        "a-app": manifest("a-app", ("lib", "*"), ("other", "*")),
        "unrelated": manifest("unrelated", ("other", "*")),
    }
    assert dependencies.dependents("lib", loaded) == ["a-app", "b-app"]
    assert dependencies.dependents("nobody-uses-me", loaded) == []


# -- the manager's loading steps ------------------------------------------------------------


def test_load_in_order_loads_dependencies_first_and_skips_dependents_of_failures() -> None:
    app, lib, base = (
        manifest("app", ("lib", "^1")),
        manifest("lib", ("base", "^1")),
        manifest("base"),
    )
    other = manifest("other", ("broken", "^1"))
    failed: dict[str, WeaviateExtError] = {"broken": PluginLoadError("broken", "bad manifest")}
    calls: list[str] = []
    loaded = dependencies.load_in_order(
        [app, other, lib, base], failed, lambda m: calls.append(m.name)
    )
    assert loaded == calls == ["base", "lib", "app"]
    assert "depends on 'broken', which failed to load" in str(failed["other"])


def test_load_in_order_reports_a_load_error_and_its_dependents() -> None:
    def load(m: Manifest) -> None:
        if m.name == "lib":
            raise RuntimeError("boom")

    failed: dict[str, WeaviateExtError] = {}
    loaded = dependencies.load_in_order(
        [manifest("app", ("lib", "^1")), manifest("lib")], failed, load
    )
    assert loaded == []
    assert "RuntimeError: boom" in str(failed["lib"])
    assert isinstance(failed["app"], DependencyError)


def test_unload_order_is_dependents_first() -> None:
    loaded = {m.name: m for m in (manifest("base"), manifest("app", ("base", "^1")))}
    assert dependencies.unload_order(loaded) == ["app", "base"]


def test_check_dependents_refuses_a_version_outside_a_dependent_range() -> None:
    loaded = {"app": manifest("app", ("lib", "^1.2"))}
    dependencies.check_dependents(manifest("lib", version="1.9.0"), loaded)
    with pytest.raises(DependencyError, match="version 2.0.0 is outside 'app'"):
        dependencies.check_dependents(manifest("lib", version="2.0.0"), loaded)


def test_load_needed_loads_installed_dependencies_once_and_sees_cycles() -> None:
    app = manifest("app", ("lib", "^1"), ("loaded", "^1"), ("elsewhere", "^1"))
    asked: list[str] = []
    dependencies.load_needed(app, {"loaded"}, {"lib", "loaded"}, set(), asked.append)
    assert asked == ["lib"]
    with pytest.raises(DependencyError, match="dependency cycle with 'lib'"):
        dependencies.load_needed(app, set(), {"lib"}, {"lib"}, asked.append)

    def failing(name: str) -> None:
        raise PluginLoadError(name, "cannot import")

    with pytest.raises(DependencyError, match="depends on 'lib', which failed to load"):
        dependencies.load_needed(app, set(), {"lib"}, set(), failing)
