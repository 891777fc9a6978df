"""Direct tests of weaviate_ext.live and weaviate_ext.dispatch: hooks, fast path, bulkhead."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml

from weaviate_ext import PluginCallError, current_call, hookimpl, hookspecs
from weaviate_ext.deadline import Deadline
from weaviate_ext.dispatch import Registry, adapt, hookimpls
from weaviate_ext.live import DEFAULT_MAX_CONCURRENCY, LivePlugin, max_concurrency
from weaviate_ext.manifest import Manifest, PluginConfig, Secret
from weaviate_ext.manifest.loader import parse_manifest


def _manifest(tmp_path: Path, **spec: Any) -> Manifest:
    data = {
        "apiVersion": "weaviate.io/v1",
        "kind": "Plugin",
        "metadata": {"name": "t", "version": "1.0.0"},
        "spec": {"type": "transformer", "runtime": "python", "entrypoint": "x:Y", **spec},
    }
    return parse_manifest(yaml.safe_dump(data), path=tmp_path / "plugin.yaml")


class Plugin:
    def __init__(self) -> None:
        self.closed = 0

    @hookimpl
    def transform(self, data: Any) -> Any:  # names fewer arguments than its spec
        return data.upper()

    @hookimpl
    def transform_batch(self, deadline: Deadline, items: list[Any]) -> list[Any]:
        return [deadline.plugin, *items]  # names them out of the spec's order

    @hookimpl
    def plugin_close(self) -> None:
        self.closed += 1


def _registry() -> Registry:
    registry = Registry(hookspecs.PROJECT_NAME)
    registry.add_hookspecs(hookspecs)
    return registry


@pytest.fixture
def live(tmp_path: Path) -> LivePlugin:
    return LivePlugin(
        _manifest(tmp_path, maxConcurrency=1),
        PluginConfig({}),
        Plugin(),
        _registry(),
        2.0,
        "test",
    )


def test_hooks_are_read_without_registering(live: LivePlugin) -> None:
    registry = live._registry
    assert registry.get_plugins() == set()  # nothing registered by LivePlugin
    assert set(live.impls) == {"transform", "transform_batch", "plugin_close"}
    assert live.has("transform") and not live.has("rerank")
    assert live.hooks["transform"]("ab", None) == "AB"  # spec order: data, deadline
    assert live.hooks["transform_batch"](["x"], Deadline(1, "t", "h")) == ["t", "x"]
    assert live.deadline("transform", None) is None  # the impl does not name it
    assert live.deadline("transform_batch", None).timeout == 2.0  # type: ignore[union-attr]


def test_adapt_keeps_an_exact_signature_and_reorders_others() -> None:
    registry = _registry()
    impls = hookimpls(registry, Plugin(), "p")
    spec = tuple(registry.hook.transform_batch.spec.argnames)  # type: ignore[union-attr]
    assert adapt(impls["transform_batch"], spec)(["i"], Deadline(None, "p")) == ["p", "i"]
    exact = adapt(impls["plugin_close"], ())
    assert exact == impls["plugin_close"].function


def test_hookimpls_validate_against_the_specs() -> None:
    class Bad:
        @hookimpl
        def transform(self, data: Any, nonsense: Any) -> Any:
            return data

    with pytest.raises(pluggy.PluginValidationError):
        hookimpls(_registry(), Bad(), "bad")


def test_rewire_goes_through_the_registry_and_back(live: LivePlugin) -> None:
    seen: list[Any] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def transform(self, data: Any, deadline: Deadline) -> Iterator[None]:
            seen.append((current_call(), data, deadline.timeout))
            result = yield
            return result + "!"

    registry = live._registry
    assert isinstance(registry, Registry) and not registry.wrapped
    wrapper = Wrapper()
    registry.register(wrapper)
    assert registry.wrapped
    assert live.hooks["transform"] is not live.direct["transform"]
    assert live.hooks["transform_batch"] is live.direct["transform_batch"]  # not wrapped
    deadline = live.deadline("transform", None)  # a wrapped hook always gets one
    assert live.hooks["transform"]("ab", deadline) == "AB!"
    assert seen == [(("t", "transform"), "ab", 2.0)]
    registry.unregister(wrapper)
    assert live.hooks is live.direct and not registry.wrapped
    assert live.deadline("transform", None) is None


def test_bulkhead_enter_wait_exit(live: LivePlugin) -> None:
    assert live.max_concurrency == 1
    assert live.enter() is True
    assert live.enter() is None  # the only slot is taken
    assert live.wait_enter(0.01) is None
    got: list[bool | None] = []
    waiter = threading.Thread(target=lambda: got.append(live.wait_enter(5.0)))
    waiter.start()
    while not live._queue:
        pass
    live.exit(0.0, failed=False)  # hands its slot to the waiting call
    waiter.join()
    assert got == [True] and live.counter.in_flight == 1
    live.exit(0.0, failed=True)
    stats = live.counter.snapshot()
    assert (stats.calls, stats.errors, stats.in_flight) == (2, 1, 0)


def test_retire_closes_after_the_last_call(live: LivePlugin) -> None:
    obj = live.obj
    assert isinstance(obj, Plugin)
    assert live.enter() is True
    live.retire()
    assert not live.closed and obj.closed == 0
    assert live.wait_enter(0.01) is False  # retired: callers go to the new version
    live.exit(0.0, failed=False)
    while live.counter.in_flight:
        live.exit(0.0, failed=False)
    assert live.closed and obj.closed == 1
    assert live.enter() is False
    assert live not in live._registry._live  # type: ignore[attr-defined]


def test_call_error_scrubs_secrets(tmp_path: Path) -> None:
    config = PluginConfig({"token": Secret("s3cret")})
    live = LivePlugin(_manifest(tmp_path), config, Plugin(), _registry(), None, "test")
    error = live.call_error("transform", ValueError("bad s3cret"))
    assert isinstance(error, PluginCallError)
    assert "s3cret" not in str(error) and "ValueError" in str(error)
    assert not live.keeps_cause(ValueError("bad s3cret"))
    assert live.timeout is None


def test_max_concurrency_from_the_spec(tmp_path: Path) -> None:
    assert max_concurrency(_manifest(tmp_path).spec) == DEFAULT_MAX_CONCURRENCY
    assert max_concurrency(_manifest(tmp_path, maxConcurrency=3).spec) == 3
    assert max_concurrency(_manifest(tmp_path, resources={"cpu": "1500m"}).spec) == 4
