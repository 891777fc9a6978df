"""Bulkheads: every plugin has its own concurrency limit (``spec.maxConcurrency``).

A hung plugin holds only its own slots: calls beyond them wait within their deadline and
fail with ``PluginBusy`` (503 in ``serve``, with ``Retry-After``), calls to every other
plugin keep answering, and calls it abandoned cannot pile up threads. No assertion here
is an absolute wall-clock time: latencies are compared with the same server's idle ones,
and "never hangs" is a generous bound past the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from plugin_factory import write_plugin

from weaviate_ext import PluginBusy, PluginManager
from weaviate_ext.live import DEFAULT_MAX_CONCURRENCY, max_concurrency
from weaviate_ext.manifest import parse_manifest

TESTS = Path(__file__).resolve().parents[1]
FAULTY = TESTS / "grpc_plugins" / "faulty.py"

HANGS_PAST = 5.0
"""How far past its deadline (plus serve's grace) a call may return and still count as
"not hanging": generous, for a loaded machine."""


def _serve_helpers() -> Any:
    """tests/serve/conftest.py (its ``Server``), imported under a name of its own."""
    spec = importlib.util.spec_from_file_location(
        "bulkheads_serve_helpers", TESTS / "serve" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------
# plugins
# ---------------------------------------------------------------------------------------

GATED = """
    import threading

    import numpy as np
    from weaviate_ext import hookimpl


    class Plugin:
        '''Every call waits until the test sets ``release``; counts who is inside.'''

        def __init__(self):
            self.release = threading.Event()
            self.changed = threading.Condition()
            self.inside = 0
            self.most = 0
            self.entries = 0

        @hookimpl
        def vectorize_text(self, text):
            if text == "weaviate-ext probe":  # the load's probe call
                return np.ones(4, dtype=np.float32)
            with self.changed:
                self.inside += 1
                self.entries += 1
                self.most = max(self.most, self.inside)
                self.changed.notify_all()
            try:
                if not self.release.wait(60):
                    raise RuntimeError("never released")
                return np.ones(4, dtype=np.float32)
            finally:
                with self.changed:
                    self.inside -= 1
                    self.changed.notify_all()

        def wait_inside(self, count, timeout=30):
            with self.changed:
                return self.changed.wait_for(lambda: self.inside >= count, timeout)
"""

FREE = """
    import numpy as np
    from weaviate_ext import hookimpl


    class Plugin:
        @hookimpl
        def vectorize_text(self, text):
            return np.full(4, len(text), dtype=np.float32)
"""

HOLD = """
    import os
    import time

    import numpy as np
    from weaviate_ext import hookimpl


    class Plugin:
        @hookimpl
        def vectorize_text(self, text):
            if text.startswith("hold:"):  # ignores its deadline, like hung code does
                stop = time.monotonic() + 60
                while not os.path.exists(text[5:]) and time.monotonic() < stop:
                    time.sleep(0.01)
            return np.full(4, 1.0, dtype=np.float32)
"""


def _load(manager: PluginManager, root: Path, name: str, source: str, **spec: Any) -> None:
    manager.load(
        write_plugin(
            root, name, "vectorizer", source, capabilities={"dimensions": 4}, extra_spec=spec
        )
    )


@pytest.fixture
def gated(manager: PluginManager, tmp_path: Path) -> Iterator[Any]:
    """``gated`` (maxConcurrency 2, calls wait for the test) and ``free`` loaded; the
    gated plugin's object. Its calls are released at the end."""
    _load(manager, tmp_path, "gated", GATED, maxConcurrency=2)
    _load(manager, tmp_path, "free", FREE)
    plugin = manager.registry.get_plugin("gated")
    try:
        yield plugin
    finally:
        plugin.release.set()


def _in_threads(fn: Any, count: int) -> tuple[list[threading.Thread], list[Any]]:
    """``count`` threads each calling ``fn()``; what each returned or raised."""
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            results[i] = fn()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


# ---------------------------------------------------------------------------------------
# the limit and its default
# ---------------------------------------------------------------------------------------


def _spec(extra: str) -> Any:
    text = (
        "apiVersion: weaviate.io/v1\nkind: Plugin\nmetadata: {name: x, version: 1.0.0}\n"
        f"spec:\n  type: vectorizer\n  runtime: grpc\n  command: [x]\n{extra}"
    )
    return parse_manifest(text).spec


def test_the_limit_comes_from_max_concurrency_else_cpu_else_the_default() -> None:
    assert max_concurrency(_spec("  maxConcurrency: 3\n  resources: {cpu: 4}\n")) == 3
    assert max_concurrency(_spec("  resources: {cpu: 500m}\n")) == 2
    assert max_concurrency(_spec("  resources: {cpu: '2'}\n")) == 4
    assert max_concurrency(_spec("  resources: {cpu: 2.5}\n")) == 6
    assert max_concurrency(_spec("")) == DEFAULT_MAX_CONCURRENCY == 8


# ---------------------------------------------------------------------------------------
# manager level
# ---------------------------------------------------------------------------------------


def test_a_call_beyond_the_limit_fails_busy_at_its_deadline_while_others_answer(
    manager: PluginManager, gated: Any
) -> None:
    handle = manager.get_vectorizer("gated")
    threads, results = _in_threads(lambda: handle.vectorize_text("held"), 2)
    assert gated.wait_inside(2), "the two calls never got into the plugin"

    # both slots are taken: a third call waits its deadline, then fails without entering
    started = time.monotonic()
    with pytest.raises(PluginBusy) as caught:
        handle.vectorize_text("third", timeout=0.3)
    waited = time.monotonic() - started
    assert waited < 0.3 + HANGS_PAST  # it never hangs past its deadline
    error = caught.value
    assert error.plugin == "gated" and error.hook == "vectorize_text"
    assert "busy: all 2 slots (spec.maxConcurrency) stayed taken for 0.3s" in str(error)
    assert error.retry_after >= 1.0
    assert gated.entries == 2
    # the other paths of the handle are bounded too
    with pytest.raises(PluginBusy):
        handle.vectorize_batch(["a", "b"], timeout=0.05)

    # meanwhile another plugin answers: it has slots of its own
    assert manager.get_vectorizer("free").vectorize_text("abc").tolist() == [3.0] * 4
    assert gated.inside == 2 and not gated.release.is_set()  # ... while gated still hangs

    gated.release.set()
    for thread in threads:
        thread.join(30)
    assert all(r is not None and r.tolist() == [1.0] * 4 for r in results), results
    # the slots are free again
    assert handle.vectorize_text("after", timeout=5).tolist() == [1.0] * 4
    assert handle.stats.in_flight == 0


def test_a_waiting_call_takes_the_slot_a_finished_call_frees(
    manager: PluginManager, gated: Any
) -> None:
    handle = manager.get_vectorizer("gated")
    threads, results = _in_threads(lambda: handle.vectorize_text("held"), 2)
    assert gated.wait_inside(2)
    waiting, waited = _in_threads(lambda: handle.vectorize_text("waits", timeout=60), 1)
    gated.release.set()  # the held calls return; the waiting one gets a slot
    for thread in [*threads, *waiting]:
        thread.join(30)
    assert all(not isinstance(r, BaseException) for r in [*results, *waited]), (results, waited)
    assert gated.entries == 3 and gated.most <= 2


def test_concurrent_calls_never_exceed_max_concurrency(
    manager: PluginManager, tmp_path: Path
) -> None:
    _load(manager, tmp_path, "limited", GATED, maxConcurrency=3)
    plugin = manager.registry.get_plugin("limited")
    handle = manager.get_vectorizer("limited")
    calls = 8
    started = threading.Barrier(calls + 1)

    def call() -> Any:
        started.wait(30)
        return handle.vectorize_text("x", timeout=60)

    try:
        threads, results = _in_threads(call, calls)
        started.wait(30)  # every call is on its way
        assert plugin.wait_inside(3)
        time.sleep(0.2)  # time for the other calls to get in, were there no limit
        assert plugin.inside == 3
    finally:
        plugin.release.set()
    for thread in threads:
        thread.join(30)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert plugin.entries == calls
    assert plugin.most == 3


BRIEF = """
    import time

    import numpy as np
    from weaviate_ext import hookimpl


    class Plugin:
        @hookimpl
        def vectorize_text(self, text):
            time.sleep(0.002)
            return np.ones(4, dtype=np.float32)
"""


def test_waiting_calls_are_not_overtaken_by_new_ones(
    manager: PluginManager, tmp_path: Path
) -> None:
    """With one slot and callers that call again the moment they are done, a call that
    waits gets the slot in its turn, long before its deadline."""
    _load(manager, tmp_path, "single", BRIEF, maxConcurrency=1)
    handle = manager.get_vectorizer("single")
    stop = threading.Event()

    def hammer() -> int:
        calls = 0
        while not stop.is_set():
            handle.vectorize_text("again", timeout=60)
            calls += 1
        return calls

    hammers, counts = _in_threads(hammer, 3)
    try:
        for _ in range(20):
            handle.vectorize_text("in turn", timeout=5)
    finally:
        stop.set()
        for thread in hammers:
            thread.join(30)
    assert all(isinstance(count, int) and count > 0 for count in counts), counts


def test_a_reload_sends_waiting_calls_to_the_new_version(
    manager: PluginManager, gated: Any, tmp_path: Path
) -> None:
    handle = manager.get_vectorizer("gated")
    threads, _ = _in_threads(lambda: handle.vectorize_text("held"), 2)
    assert gated.wait_inside(2)
    waiting, waited = _in_threads(lambda: handle.vectorize_text("waits", timeout=60), 1)
    new = write_plugin(
        tmp_path / "v2",
        "gated",
        "vectorizer",
        FREE,
        version="2.0.0",
        capabilities={"dimensions": 4},
        extra_spec={"maxConcurrency": 2},
    )
    manager.reload("gated", new)
    for thread in waiting:
        thread.join(30)
    assert waited[0].tolist() == [5.0] * 4  # answered by version 2 ("waits")
    gated.release.set()
    for thread in threads:
        thread.join(30)


# ---------------------------------------------------------------------------------------
# serve
# ---------------------------------------------------------------------------------------

STUCK_TIMEOUT = 5.0
STUCK_SLOTS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``serve`` with a gRPC plugin to stop (``stuck``), a healthy Python plugin and a
    Python plugin that ignores its deadline (``hold``)."""
    helpers = _serve_helpers()
    root = tmp_path_factory.mktemp("bulkheads")
    plugins = root / "plugins"
    write_plugin(plugins, "healthy", "vectorizer", FREE, capabilities={"dimensions": 4})
    write_plugin(
        plugins,
        "hold",
        "vectorizer",
        HOLD,
        capabilities={"dimensions": 4},
        extra_spec={"timeout": 0.5, "maxConcurrency": 2},
    )
    stuck = root / "stuck" / "plugin.yaml"
    stuck.parent.mkdir()
    shutil.copy(FAULTY, stuck.parent / "faulty.py")  # a plugin may read its own directory
    manifest = {
        "apiVersion": "weaviate.io/v1",
        "kind": "Plugin",
        "metadata": {"name": "stuck", "version": "1.0.0"},
        "spec": {
            "type": "vectorizer",
            "runtime": "grpc",
            "command": ["python", "faulty.py", "--mode", "normal"],  # the host's Python
            "timeout": f"{STUCK_TIMEOUT:g}s",
            "maxConcurrency": STUCK_SLOTS,
            "capabilities": {"dimensions": 8},
        },
    }
    stuck.write_text(yaml.safe_dump(manifest, sort_keys=False))
    args = ["--plugins", str(plugins), "--plugin", str(stuck), "--vectorizer", "healthy"]
    with helpers.running(args, root / "server.log") as running:
        yield running


def _vectorize(http: httpx.Client, plugin: str, text: str) -> httpx.Response:
    return http.post(f"/v1/plugins/{plugin}/vectorize", json={"text": text})


def _latencies(http: httpx.Client, plugin: str, count: int) -> list[float]:
    out = []
    for i in range(count):
        started = time.perf_counter()
        response = _vectorize(http, plugin, f"text {i}")
        out.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return out


async def _burst(
    url: str, plugin: str, text: str, count: int
) -> list[tuple[int, Any, float, float]]:
    """``count`` concurrent calls: (status, Retry-After, seconds taken, when it ended)."""
    limits = httpx.Limits(max_connections=count + 8, max_keepalive_connections=count + 8)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def one() -> tuple[int, Any, float, float]:
            started = time.monotonic()
            response = await http.post(f"/v1/plugins/{plugin}/vectorize", json={"text": text})
            ended = time.monotonic()
            return response.status_code, response.headers.get("retry-after"), ended - started, ended

        return list(await asyncio.gather(*(one() for _ in range(count))))


def _stats(http: httpx.Client, plugin: str) -> dict[str, Any]:
    response = http.get(f"/v1/plugins/{plugin}")
    assert response.status_code == 200, response.text
    return dict(response.json()["stats"])


def _wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count")


def test_abandoned_calls_of_a_hung_plugin_hold_only_its_own_slots(
    server: Any, tmp_path: Path
) -> None:
    """A plugin that ignores its deadline: its calls are abandoned with a 504, but their
    threads stay in it; a new call waits for a slot (503). Never more threads in it than
    its limit, however many calls came."""
    gate = tmp_path / "open"
    pid = server.process.pid
    with server.client() as http:
        _latencies(http, "hold", 3)
        before = _threads(pid)
        try:
            results = asyncio.run(_burst(server.url, "hold", f"hold:{gate}", 12))
            statuses = sorted(status for status, *_ in results)
            assert statuses == [503] * 10 + [504] * 2, statuses
            assert all(took < 0.5 + 1.0 + HANGS_PAST for _, _, took, _ in results)
            # the two abandoned calls still hold the slots, and nothing else piled up
            assert _stats(http, "hold")["in_flight"] == 2
            assert _threads(pid) - before <= 2 + 2
            # the healthy plugin is not affected
            assert _vectorize(http, "healthy", "abc").status_code == 200
            # a new call to the hung plugin is busy: its slots are still taken
            busy = _vectorize(http, "hold", "quick")
            assert busy.status_code == 503, busy.text
            assert "busy: all 2 slots (spec.maxConcurrency)" in busy.json()["error"]
            assert int(busy.headers["retry-after"]) >= 1
        finally:
            gate.touch()
        # the abandoned threads return and give their slots back
        assert _wait_for(lambda: _stats(http, "hold")["in_flight"] == 0)
        assert _vectorize(http, "hold", "quick").status_code == 200


def test_a_stopped_grpc_plugin_does_not_slow_down_the_others(server: Any) -> None:
    """The issue's "done when": with a gRPC plugin stopped (SIGSTOP) and 64 calls waiting
    on it, calls to another plugin answer about as fast as when the server is idle, and
    the stopped plugin's callers get 503 (busy) or 504, never hanging past the deadline."""
    with server.client() as http:
        pids = _vectorize(http, "stuck", "pids")
        assert pids.status_code == 200, pids.text
        pid = int(pids.json()["vector"][0])
        _latencies(http, "healthy", 10)  # warm up
        idle = statistics.median(_latencies(http, "healthy", 30))

        os.kill(pid, signal.SIGSTOP)
        try:
            done: list[list[tuple[int, Any, float, float]]] = []
            thread = threading.Thread(
                target=lambda: done.append(asyncio.run(_burst(server.url, "stuck", "hello", 64))),
                daemon=True,
            )
            thread.start()
            # the stopped plugin's slots are taken: the rest of the burst waits for one
            assert _wait_for(lambda: _stats(http, "stuck")["in_flight"] == STUCK_SLOTS)
            loaded = _latencies(http, "healthy", 30)
            measured_until = time.monotonic()
            thread.join(STUCK_TIMEOUT + 1.0 + HANGS_PAST + 30)
            assert not thread.is_alive(), "calls to the stopped plugin hung"
            assert done, "the burst failed (see the captured output)"
            results = done[0]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    assert statistics.median(loaded) < idle * 5 + 0.25, (idle, statistics.median(loaded))
    assert max(loaded) < idle * 5 + 1.0, (idle, max(loaded))  # none waited for a thread
    # ... measured while every call to the stopped plugin still waited
    assert measured_until < min(ended for *_, ended in results)
    statuses = [status for status, *_ in results]
    assert set(statuses) <= {503, 504}, statuses
    # 504: the calls that got into the plugin -- the first ones, and maybe, when their
    # deadline freed the slots, a few that came last and had not given up yet
    assert statuses.count(503) >= 64 - 2 * STUCK_SLOTS, statuses
    for status, retry_after, took, _ in results:
        assert took < STUCK_TIMEOUT + 1.0 + HANGS_PAST  # deadline + serve's grace + margin
        if status == 503:
            assert retry_after is not None and int(retry_after) >= 1

    # once it runs again, it answers again
    with server.client() as http:
        assert _wait_for(lambda: _stats(http, "stuck")["in_flight"] == 0)
        assert _vectorize(http, "stuck", "hello").status_code == 200
