"""Calls go through the hook registry: host wrappers, tracing, auth order, one registry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pluggy
import pytest
from cabi.helpers import build_examples
from grpc_helpers import EXAMPLES, sdk_pythonpath
from plugin_factory import write_plugin

from weaviate_ext import (
    AuthenticationError,
    Identity,
    PluginLoadError,
    PluginManager,
    current_call,
    hookimpl,
    load_manifest,
)
from weaviate_ext.bridges import wasm
from weaviate_ext.live import LivePlugin


class Timing:
    """A host's timing wrapper around both vectorizer hooks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, Any]] = []

    def _record(self, deadline: Any, started: float) -> None:
        call = current_call()
        assert call is not None
        self.calls.append((call.plugin, call.hook, time.perf_counter() - started, deadline))

    @hookimpl(wrapper=True)
    def vectorize_text(self, text: str, deadline: Any) -> Iterator[None]:
        started = time.perf_counter()
        try:
            return (yield)
        finally:
            self._record(deadline, started)

    @hookimpl(wrapper=True)
    def vectorize_batch(self, texts: list[str], deadline: Any) -> Iterator[None]:
        started = time.perf_counter()
        try:
            return (yield)
        finally:
            self._record(deadline, started)

    def seen(self) -> set[tuple[str, str]]:
        return {(plugin, hook) for plugin, hook, _, _ in self.calls}


VECTORIZER = """
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def vectorize_text(self, text):
            return [float(len(text)), 1.0]
"""


def _live(manager: PluginManager, name: str) -> LivePlugin:
    live = manager.get(name)._slot.live
    assert live is not None
    return live


@pytest.fixture
def every_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginManager]:
    """A manager with a vectorizer of each runtime: python, wasm, native, grpc."""
    monkeypatch.setenv("PYTHONPATH", sdk_pythonpath())
    examples = build_examples()
    with PluginManager(discover=False) as manager:
        manager.load(examples / "python-hash-vectorizer" / "plugin.yaml")
        manager.load(examples / "c-vectorizer" / "plugin.yaml")
        manager.load(examples / "c-vectorizer" / "plugin-native.yaml")
        manager.load(EXAMPLES / "grpc-vectorizer" / "plugin.yaml")
        yield manager


RUNTIMES = {
    "hash-embedder": "python",
    "c-embedder": "wasm",
    "c-embedder-native": "native",
    "grpc-embedder": "grpc",
}


def test_a_host_wrapper_sees_and_times_every_call_of_every_runtime(
    every_runtime: PluginManager,
) -> None:
    manager = every_runtime
    assert {n: manager.manifest(n).spec.runtime for n in RUNTIMES} == RUNTIMES
    timing = Timing()
    remove = manager.add_wrapper(timing)  # after the loads: live plugins are rewired
    for name in RUNTIMES:
        handle = manager.get_vectorizer(name)
        assert handle.vectorize_text("hello world").shape == (768,)
        assert handle.vectorize_batch(["a", "b", "c"]).shape == (3, 768)
    by_plugin: dict[str, set[str]] = {}
    for plugin, hook, elapsed, deadline in timing.calls:
        by_plugin.setdefault(plugin, set()).add(hook)
        assert elapsed > 0
        assert deadline.plugin == plugin and deadline.hook  # always a Deadline when wrapped
    # the C examples export wv_vectorize_batch only; the C-ABI bridge implements both
    # hooks over it (one text without a list), so a wrapper sees each hook called
    assert by_plugin == {
        "hash-embedder": {"vectorize_text", "vectorize_batch"},
        "c-embedder": {"vectorize_text", "vectorize_batch"},
        "c-embedder-native": {"vectorize_text", "vectorize_batch"},
        "grpc-embedder": {"vectorize_text", "vectorize_batch"}
        if _live(manager, "grpc-embedder").has("vectorize_text")
        else {"vectorize_batch"},
    }
    assert len(timing.calls) == 2 * len(RUNTIMES)
    assert current_call() is None  # only set inside a wrapped call

    remove()
    assert not manager.registry.wrapped
    for name in RUNTIMES:
        live = _live(manager, name)
        assert live.hooks is live.direct  # the fast path again
        manager.get_vectorizer(name).vectorize_batch(["x"])
    assert len(timing.calls) == 2 * len(RUNTIMES)


def test_wrappers_registered_on_the_registry_wrap_new_and_reloaded_versions(
    manager: PluginManager, tmp_path: Path
) -> None:
    timing = Timing()
    manager.registry.register(timing)  # the plain pluggy way works as add_wrapper does
    path = write_plugin(tmp_path, "vec", "vectorizer", VECTORIZER, capabilities={"dimensions": 2})
    handle = manager.load(path)
    assert ("vec", "vectorize_text") in timing.seen()  # the probe call, before serving
    timing.calls.clear()
    manager.reload("vec")
    handle.vectorize_text("abc")
    assert [(p, h) for p, h, _, _ in timing.calls][-1] == ("vec", "vectorize_text")
    live = _live(manager, "vec")
    assert live.hooks is not live.direct
    manager.registry.unregister(timing)
    assert live.hooks is live.direct
    count = len(timing.calls)
    handle.vectorize_text("abc")
    assert len(timing.calls) == count


def test_wrapper_order_and_what_it_can_change(manager: PluginManager, tmp_path: Path) -> None:
    order: list[str] = []

    class Outer:
        @hookimpl(wrapper=True, tryfirst=True)
        def vectorize_text(self) -> Iterator[None]:
            order.append("outer")
            result = yield
            return [x * 2 for x in result]

    class Inner:
        @hookimpl(wrapper=True, trylast=True)
        def vectorize_text(self, text: str) -> Iterator[None]:
            order.append(f"inner {text}")
            return (yield)

    manager.load(
        write_plugin(tmp_path, "vec", "vectorizer", VECTORIZER, capabilities={"dimensions": 2})
    )
    manager.add_wrapper(Inner())
    manager.add_wrapper(Outer())
    assert manager.get_vectorizer("vec").vectorize_text("abc").tolist() == [6.0, 2.0]
    assert order == ["outer", "inner abc"]


def test_call_monitoring_sees_plugin_calls_until_undone(
    manager: PluginManager, tmp_path: Path
) -> None:
    handle = manager.load(
        write_plugin(tmp_path, "vec", "vectorizer", VECTORIZER, capabilities={"dimensions": 2})
    )
    seen: list[tuple[str, list[str]]] = []
    undo = manager.registry.add_hookcall_monitoring(
        lambda hook, impls, kwargs: seen.append((hook, [i.plugin_name for i in impls])),
        lambda outcome, hook, impls, kwargs: None,
    )
    handle.vectorize_text("x")
    assert seen == [("vectorize_text", ["vec"])]
    undo()
    live = _live(manager, "vec")
    assert live.hooks is live.direct
    handle.vectorize_text("x")
    assert len(seen) == 1


def test_a_plugin_cannot_be_a_wrapper(manager: PluginManager, tmp_path: Path) -> None:
    source = """
        from weaviate_ext import hookimpl

        class Plugin:
            @hookimpl(wrapper=True)
            def vectorize_text(self, text):
                return (yield)
    """
    path = write_plugin(tmp_path, "sly", "vectorizer", source, capabilities={"dimensions": 2})
    with pytest.raises(PluginLoadError, match="as a wrapper"):
        manager.load(path)


# -- auth: pluggy's firstresult and order --------------------------------------------------


def _auth(tmp_path: Path, name: str, opts: str = "", answer: str = "name") -> Path:
    source = f"""
        from weaviate_ext import Identity, hookimpl
        from weaviate_ext.errors import AuthenticationError

        ASKED = []

        class Plugin:
            @hookimpl({opts})
            def authenticate(self, credentials):
                ASKED.append({name!r})
                if credentials.get("reject") == {name!r}:
                    raise AuthenticationError("rejected by " + {name!r})
                if credentials.get("who") in ({name!r}, "anyone"):
                    return Identity({name!r} if {answer!r} == "name" else {answer!r})
                return None
    """
    return write_plugin(tmp_path, name, "auth", source)


class AskedOrder:
    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl(wrapper=True)
    def authenticate(self) -> Iterator[None]:
        call = current_call()
        assert call is not None and call.hook == "authenticate"
        self.asked.append(call.plugin)
        return (yield)


def test_auth_plugins_are_asked_in_pluggy_order_with_tryfirst_and_trylast(
    manager: PluginManager, tmp_path: Path
) -> None:
    manager.load(_auth(tmp_path, "first", "tryfirst=True"))
    manager.load(_auth(tmp_path, "early"))
    manager.load(_auth(tmp_path, "late"))
    manager.load(_auth(tmp_path, "last", "trylast=True"))
    order = AskedOrder()
    manager.add_wrapper(order)
    assert manager.authenticate({"who": "nobody"}) is None
    # pluggy: tryfirst, then the last registered first, then trylast
    assert order.asked == ["first", "late", "early", "last"]
    order.asked.clear()
    assert manager.authorize(Identity("x"), "r", "read") is False  # all abstain
    assert manager.authenticate({"who": "anyone"}) == Identity("first", plugin="first")
    assert order.asked == ["first"]


def test_authenticate_is_firstresult(manager: PluginManager, tmp_path: Path) -> None:
    manager.load(_auth(tmp_path, "a"))
    manager.load(_auth(tmp_path, "b"))
    order = AskedOrder()
    manager.add_wrapper(order)
    # b was loaded last, so it is asked first; it answers, a is never asked
    assert manager.authenticate({"who": "anyone"}) == Identity("b", plugin="b")
    assert order.asked == ["b"]
    order.asked.clear()
    # b does not recognise it: a is asked and answers
    assert manager.authenticate({"who": "a"}) == Identity("a", plugin="a")
    assert order.asked == ["b", "a"]
    order.asked.clear()
    # an error stops the walk, as in pluggy
    with pytest.raises(AuthenticationError, match="rejected by b"):
        manager.authenticate({"reject": "b", "who": "a"})
    assert order.asked == ["b"]
    # the registry's own monitoring sees one firstresult call of authenticate
    seen: list[str] = []
    undo = manager.registry.add_hookcall_monitoring(
        lambda hook, impls, kwargs: seen.append(hook), lambda *_: None
    )
    manager.authenticate({"who": "a"})
    undo()
    assert seen.count("authenticate") == 3  # the walk, then b's and a's own calls
    assert seen[0] == "authenticate"
    # after an unload the order follows the registry
    manager.unload("b")
    order.asked.clear()
    assert manager.authenticate({"who": "anyone"}) == Identity("a", plugin="a")
    assert order.asked == ["a"]


def test_authenticate_refuses_non_mapping_credentials(manager: PluginManager) -> None:
    from weaviate_ext import InvalidInput

    with pytest.raises(InvalidInput):
        manager.authenticate(["api_key"])  # type: ignore[arg-type]


# -- one registry ----------------------------------------------------------------------------


def test_one_registry_per_manager(
    manager: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[object] = []
    original = pluggy.PluginManager.__init__

    def counting(self: pluggy.PluginManager, project_name: str) -> None:
        created.append(self)
        original(self, project_name)

    monkeypatch.setattr(pluggy.PluginManager, "__init__", counting)
    path = write_plugin(tmp_path, "vec", "vectorizer", VECTORIZER, capabilities={"dimensions": 2})
    manager.load(path)
    manager.reload("vec")
    broken = write_plugin(
        tmp_path, "bad", "vectorizer", "class Plugin:\n    pass\n", capabilities={"dimensions": 2}
    )
    with pytest.raises(PluginLoadError):
        manager.load(broken)
    manager.load(_auth(tmp_path, "auth"))
    manager.authenticate({"who": "auth"})
    assert created == []


# -- the bridge contract: isolation, runtime status, default_timeout --------------------------


def test_isolation_comes_from_the_bridges_hook(every_runtime: PluginManager) -> None:
    rows = {row.name: row for row in every_runtime.plugins()}
    assert rows["hash-embedder"].isolation == "none: in the host process (trusted code only)"
    assert rows["c-embedder-native"].isolation.startswith("none: in-process native code")
    assert rows["c-embedder"].isolation.startswith("sandboxed (wasmtime")
    assert rows["grpc-embedder"].isolation.startswith("process")
    assert {row.status for row in rows.values()} == {"loaded"}


def _wasm_without_timeout() -> Any:
    manifest = load_manifest(build_examples() / "c-vectorizer" / "plugin.yaml")
    return attrs.evolve(manifest, spec=attrs.evolve(manifest.spec, timeout=None))


@pytest.fixture
def armed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The epoch deadlines (ticks from now) the wasm bridge arms, in order."""
    ticks: list[int] = []
    original = wasm.WasmInstance.set_deadline

    def recording(self: wasm.WasmInstance, count: int) -> None:
        ticks.append(count)
        original(self, count)

    monkeypatch.setattr(wasm.WasmInstance, "set_deadline", recording)
    return ticks


@pytest.mark.parametrize("default_timeout", [None, 5.0])
def test_wasm_honours_the_managers_default_timeout(
    default_timeout: float | None, armed: list[int]
) -> None:
    with PluginManager(discover=False, default_timeout=default_timeout) as manager:
        handle = manager.load_manifest(_wasm_without_timeout())
        plugin: Any = manager.registry.get_plugin("c-embedder")
        assert plugin.backend.timeout == default_timeout  # wv_init, new instances
        armed.clear()
        handle.vectorize_batch(["a deadline or none"])
        assert len(armed) == 1
        if default_timeout is None:
            # no deadline: no reachable epoch deadline (the old bridge armed 30 s here)
            assert armed == [wasm.NO_DEADLINE] and wasm.ticks(None) == wasm.NO_DEADLINE
        else:
            assert wasm.ticks(default_timeout) - 1 <= armed[0] <= wasm.ticks(default_timeout)


def test_a_deadline_without_a_timeout_arms_no_epoch_deadline(armed: list[int]) -> None:
    # the bridge as the handle calls it: Deadline(None) is no deadline on wasm, and a hook
    # called without any deadline gets the plugin's default (here: none either)
    from weaviate_ext.deadline import Deadline

    with PluginManager(discover=False, default_timeout=None) as manager:
        manager.load_manifest(_wasm_without_timeout())
        plugin: Any = manager.registry.get_plugin("c-embedder")
        armed.clear()
        for deadline in (Deadline(None), None, Deadline(2.0)):
            with plugin.backend.session("vectorize_batch", deadline):
                pass
        assert armed[:2] == [wasm.NO_DEADLINE, wasm.NO_DEADLINE]
        assert armed[2] <= wasm.ticks(2.0)
