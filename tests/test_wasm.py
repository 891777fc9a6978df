"""The wasm runtime: the C vectorizer and the other C examples, the module
cache, and every fault plugin of tests/cabi (sandbox, deadline, memory, traps, ABI)."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cabi.helpers import C_EXAMPLES, build_examples, build_faults, fault_manifest

from weaviate_ext import (
    DeadlineExceeded,
    DimensionMismatch,
    Grant,
    PermissionNotGranted,
    PluginCallError,
    PluginCrashed,
    PluginLoadError,
    PluginManager,
    ResourceLimitExceeded,
    RuntimeNotAllowed,
    load_manifest,
)
from weaviate_ext.bridges import wasm
from weaviate_ext.bridges.cabi import capi
from weaviate_ext.testing import check_plugin


@pytest.fixture(scope="session")
def examples() -> Path:
    return build_examples()


@pytest.fixture(scope="session")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_faults(tmp_path_factory.mktemp("cabi"))


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test compiles into a cache directory of the session, not ~/.cache."""
    path = tmp_path_factory.getbasetemp() / "wasm-cache"
    monkeypatch.setenv("WEAVIATE_EXT_CACHE_DIR", str(path))
    return path


def load_fault(manager: PluginManager, faults: Path, tmp_path: Path, **kwargs: object) -> str:
    binary = faults / f"{kwargs.pop('binary', 'faults')}.wasm"
    manifest = fault_manifest(tmp_path, binary, runtime="wasm", **kwargs)  # type: ignore[arg-type]
    return str(manager.load(manifest).name)


# -- the product spec -------------------------------------------------------------------


def test_c_vectorizer_has_768_dimensions(examples: Path) -> None:
    """The spec's 768-dimension test against the C twin of custom-vectorizer."""
    manager = PluginManager()
    try:
        manager.load(examples / "c-vectorizer" / "plugin.yaml")
        vectorizer = manager.get_vectorizer("c-embedder")
        vector = vectorizer.vectorize_text("test")
        assert len(vector) == 768
    finally:
        manager.close()


def test_c_vectorizer_loads_its_model_through_the_granted_directory(
    examples: Path, manager: PluginManager, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="weaviate_ext.plugin.c-embedder"):
        manager.load(examples / "c-vectorizer" / "plugin.yaml")
    assert any("loaded /model/model.bin (768 dimensions)" in r.message for r in caplog.records)
    handle = manager.get_vectorizer("c-embedder")
    a, b, c = handle.vectorize_batch(
        ["vector search engine", "vector search engines", "cooking pasta tonight"]
    )
    assert float(np.dot(a, b)) > float(np.dot(a, c))
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-5


def test_c_vectorizer_without_its_model_refuses_to_load(
    examples: Path, manager: PluginManager
) -> None:
    path = examples / "c-vectorizer" / "plugin.yaml"
    with pytest.raises(PluginLoadError, match="cannot open model file /model/missing.bin"):
        manager.load(path, config={"modelPath": "/model/missing.bin"})


@pytest.mark.parametrize("directory", sorted(C_EXAMPLES))
def test_c_example_passes_conformance_as_wasm(
    directory: str, examples: Path, manager: PluginManager
) -> None:
    handle = manager.load(examples / directory / "plugin.yaml")
    assert handle.name == C_EXAMPLES[directory][0]
    assert manager.manifest(handle.name).spec.runtime == "wasm"
    check_plugin(handle).raise_for_failures()


def test_wasm_and_native_builds_agree(examples: Path, manager: PluginManager) -> None:
    manager.load(examples / "c-vectorizer" / "plugin.yaml")
    manager.load(examples / "c-vectorizer" / "plugin-native.yaml")
    texts = ["test", "Vector search 🚀", ""]
    wasm_out = manager.get_vectorizer("c-embedder").vectorize_batch(texts)
    native_out = manager.get_vectorizer("c-embedder-native").vectorize_batch(texts)
    assert np.array_equal(wasm_out, native_out)


def test_allowed_runtimes_refuses_native(examples: Path) -> None:
    with PluginManager(discover=False, allowed_runtimes={"python", "wasm"}) as manager:
        manager.load(examples / "c-vectorizer" / "plugin.yaml")
        with pytest.raises(RuntimeNotAllowed, match="runtime 'native' is not allowed"):
            manager.load(examples / "c-vectorizer" / "plugin-native.yaml")


# -- module cache ------------------------------------------------------------------------


def test_second_load_uses_the_module_cache(
    examples: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    binary = examples / "c-reranker" / "plugin.wasm"
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    cached = wasm.cache_path(digest)
    cached.unlink(missing_ok=True)
    assert cached.parent == cache_dir
    with PluginManager(discover=False) as first, caplog.at_level(logging.INFO):
        first.load(examples / "c-reranker" / "plugin.yaml")
    assert cached.is_file()
    assert digest in cached.name and wasm.WASMTIME_VERSION in cached.name
    caplog.clear()
    with PluginManager(discover=False) as second, caplog.at_level(logging.INFO):
        second.load(examples / "c-reranker" / "plugin.yaml")
        assert any("from cache" in r.message for r in caplog.records)
        check_plugin(second.get_reranker("overlap-reranker")).raise_for_failures()
    _module, hit = wasm.compile_module("x", binary.read_bytes(), digest)
    assert hit


def test_a_corrupt_cache_file_is_recompiled(examples: Path) -> None:
    binary = examples / "c-transformer" / "plugin.wasm"
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    cached = wasm.cache_path(digest)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"not a compiled module")
    with PluginManager(discover=False) as manager:
        handle = manager.load(examples / "c-transformer" / "plugin.yaml")
        assert handle.transform("  A  B ") == "a b"
    assert cached.stat().st_size > 100


# -- load-time refusals ------------------------------------------------------------------


def test_declared_sha256_mismatch_is_refused(
    faults: Path, manager: PluginManager, tmp_path: Path
) -> None:
    with pytest.raises(PluginLoadError, match="spec.sha256 is 0+ but faults.wasm has sha256"):
        load_fault(manager, faults, tmp_path, sha256="0" * 64)
    good = hashlib.sha256((faults / "faults.wasm").read_bytes()).hexdigest()
    assert load_fault(manager, faults, tmp_path, sha256=good.upper()) == "faults"


def test_abi_version_mismatch_is_a_clear_load_error(
    faults: Path, manager: PluginManager, tmp_path: Path
) -> None:
    with pytest.raises(PluginLoadError, match="ABI version 99, this host speaks version 1"):
        load_fault(manager, faults, tmp_path, binary="abi_mismatch")


def test_missing_exports_are_named(faults: Path, manager: PluginManager, tmp_path: Path) -> None:
    with pytest.raises(
        PluginLoadError, match="does not export wv_init, wv_last_error, wv_vectorize_batch"
    ):
        load_fault(manager, faults, tmp_path, binary="missing_exports")


def test_a_binary_that_is_not_wasm_is_refused(manager: PluginManager, tmp_path: Path) -> None:
    binary = tmp_path / "junk.wasm"
    binary.write_bytes(b"#!/bin/sh\necho hi\n")
    with pytest.raises(PluginLoadError, match="not a WebAssembly binary"):
        manager.load(fault_manifest(tmp_path, binary, runtime="wasm"))


def test_a_binary_deleted_after_validation_says_to_build_it(
    manager: PluginManager, tmp_path: Path
) -> None:
    binary = tmp_path / "gone.wasm"
    binary.write_bytes(b"\0asm")
    manifest = load_manifest(fault_manifest(tmp_path, binary, runtime="wasm"))
    binary.unlink()
    with pytest.raises(PluginLoadError, match="was it built"):
        manager.load_manifest(manifest)


# -- faults during calls: clear error, host keeps serving, plugin recovers --------------


@pytest.fixture
def served(examples: Path, faults: Path, manager: PluginManager, tmp_path: Path) -> str:
    """The fault plugin, loaded next to a good plugin that must keep serving."""
    manager.load(examples / "c-transformer" / "plugin.yaml")
    return load_fault(manager, faults, tmp_path)


def still_serving(manager: PluginManager, name: str) -> None:
    assert manager.get_transformer("whitespace-normalizer").transform(" Ok ") == "ok"
    vector = manager.get_vectorizer(name).vectorize_text("good text")
    assert vector.shape == (16,)


def test_endless_loop_stops_at_the_deadline(served: str, manager: PluginManager) -> None:
    handle = manager.get_vectorizer(served)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="interrupted at its deadline of 1s"):
        handle.vectorize_text("loop")
    assert time.monotonic() - started < 1 + 2
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        handle.vectorize_text("loop", timeout=0.3)
    assert time.monotonic() - started < 0.3 + 2
    still_serving(manager, served)


def test_memory_bomb_hits_the_memory_limit(served: str, manager: PluginManager) -> None:
    with pytest.raises(ResourceLimitExceeded, match="memory limit of 67108864 bytes"):
        manager.get_vectorizer(served).vectorize_text("bomb")
    still_serving(manager, served)


def test_trap_is_a_crash_and_the_instance_is_replaced(served: str, manager: PluginManager) -> None:
    with pytest.raises(
        PluginCrashed,
        match="trapped: wasm trap: wasm `unreachable` instruction executed "
        r"\(in wv_vectorize_batch\); the instance was replaced",
    ):
        manager.get_vectorizer(served).vectorize_text("trap")
    still_serving(manager, served)


def test_wrong_dimensions(served: str, manager: PluginManager) -> None:
    with pytest.raises(DimensionMismatch, match="15 dimensions, the manifest declares 16"):
        manager.get_vectorizer(served).vectorize_text("wrong dims")
    still_serving(manager, served)


def test_output_outside_memory_is_a_call_error(served: str, manager: PluginManager) -> None:
    with pytest.raises(PluginCallError, match="outside its memory"):
        manager.get_vectorizer(served).vectorize_text("oob")
    still_serving(manager, served)


def test_returned_error_message(served: str, manager: PluginManager) -> None:
    with pytest.raises(PluginCallError, match="plugin 'faults' vectorize_batch: asked to fail"):
        manager.get_vectorizer(served).vectorize_text("fail")
    still_serving(manager, served)


def test_a_batch_with_a_fault_fails_whole_and_the_next_batch_works(
    served: str, manager: PluginManager
) -> None:
    handle = manager.get_vectorizer(served)
    with pytest.raises(PluginCrashed):
        handle.vectorize_batch(["a", "b", "trap", "c"])
    assert handle.vectorize_batch(["a", "b", "c"]).shape == (3, 16)


def test_environment_is_denied_unless_granted(
    faults: Path, manager: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WV_FAULT_SECRET", "s3cret-value")
    name = load_fault(manager, faults, tmp_path, name="no-env")
    with pytest.raises(PluginCallError, match=r"WV_FAULT_SECRET=\(unset\)"):
        manager.get_vectorizer(name).vectorize_text("env")
    asks = {"env": ["WV_FAULT_SECRET"]}
    with pytest.raises(PermissionNotGranted, match="--grant with-env:env=WV_FAULT_SECRET"):
        load_fault(manager, faults, tmp_path, name="with-env", permissions=asks)
    grants = {"with-env": Grant(env={"WV_FAULT_SECRET"})}
    with PluginManager(discover=False, grants=grants) as host:
        granted = load_fault(host, faults, tmp_path, name="with-env", permissions=asks)
        with pytest.raises(PluginCallError, match="WV_FAULT_SECRET=s3cret-value"):
            host.get_vectorizer(granted).vectorize_text("env")


def test_files_are_denied_unless_granted(
    faults: Path, manager: PluginManager, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.txt").write_text("hello")
    name = load_fault(manager, faults, tmp_path, name="no-files")
    handle = manager.get_vectorizer(name)
    for path in ("/etc/passwd", str(shared / "data.txt"), "/data/data.txt"):
        with pytest.raises(PluginCallError, match=f"open {path}: denied"):
            handle.vectorize_text(f"file:{path}")
    ro = {"directories": [{"host": str(shared), "guest": "/data", "mode": "ro"}]}
    reader = manager.get_vectorizer(
        load_fault(manager, faults, tmp_path, name="ro", permissions=ro)
    )
    with pytest.raises(PluginCallError, match="open /data/data.txt: ok"):
        reader.vectorize_text("file:/data/data.txt")
    with pytest.raises(PluginCallError, match="open /etc/passwd: denied"):
        reader.vectorize_text("file:/etc/passwd")
    with pytest.raises(PluginCallError, match="write /data/new.txt: denied"):
        reader.vectorize_text("write:/data/new.txt")
    assert not (shared / "new.txt").exists()
    rw = {"directories": [{"host": str(shared), "guest": "/data", "mode": "rw"}]}
    with pytest.raises(PermissionNotGranted, match="read-write"):
        load_fault(manager, faults, tmp_path, name="rw", permissions=rw)
    with PluginManager(discover=False, grants={"rw": Grant(directories=[f"{shared}:rw"])}) as host:
        writer = host.get_vectorizer(load_fault(host, faults, tmp_path, name="rw", permissions=rw))
        with pytest.raises(PluginCallError, match="write /data/new.txt: ok"):
            writer.vectorize_text("write:/data/new.txt")
    assert (shared / "new.txt").read_text() == "written by the fault plugin\n"


def test_plugin_stderr_goes_to_the_host_log(
    faults: Path, manager: PluginManager, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="weaviate_ext.plugin.faults"):
        load_fault(manager, faults, tmp_path)
    lines = [r for r in caplog.records if r.name == "weaviate_ext.plugin.faults"]
    assert any(r.message == "[stderr] faults: ready" for r in lines)
    assert all(r.levelno == logging.WARNING for r in lines if "[stderr]" in r.message)


def _plugin_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.message for r in caplog.records if r.name == f"weaviate_ext.plugin.{name}"]


def _wait_for_line(caplog: pytest.LogCaptureFixture, name: str, line: str) -> list[str]:
    """The plugin's log lines once ``line`` is among them (the pump reads every 50 ms;
    a generous limit, since the machine may be busy)."""
    deadline = time.monotonic() + 10
    while line not in _plugin_lines(caplog, name):
        assert time.monotonic() < deadline, f"{line!r} never logged: {_plugin_lines(caplog, name)}"
        time.sleep(0.02)
    return _plugin_lines(caplog, name)


def test_what_a_successful_call_prints_reaches_the_log_off_the_call_path(
    faults: Path, manager: PluginManager, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="weaviate_ext.plugin.faults"):
        handle = manager.get_vectorizer(load_fault(manager, faults, tmp_path))
        handle.vectorize_batch(["say:first line", "say:second line"])
        lines = _wait_for_line(caplog, "faults", "[stdout] second line")
        assert lines.count("[stdout] first line") == 1
        assert lines.index("[stdout] first line") < lines.index("[stdout] second line")


def test_a_line_without_its_newline_is_logged_whole(
    faults: Path, manager: PluginManager, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The pump holds a partial last line for a round; when the rest of it comes in
    time, one record has the whole line; else the part is logged on its own."""
    with caplog.at_level(logging.INFO, logger="weaviate_ext.plugin.faults"):
        handle = manager.get_vectorizer(load_fault(manager, faults, tmp_path))
        handle.vectorize_batch(["part:no newline yet", "say: and its end"])
        assert "[stdout] no newline yet and its end" in _wait_for_line(
            caplog, "faults", "[stdout] no newline yet and its end"
        )
        handle.vectorize_text("part:left alone")
        _wait_for_line(caplog, "faults", "[stdout] left alone")


def test_a_failed_call_logs_what_the_plugin_printed_before_the_error(
    faults: Path, manager: PluginManager, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="weaviate_ext.plugin.faults"):
        handle = manager.get_vectorizer(load_fault(manager, faults, tmp_path))
        with pytest.raises(PluginCallError, match="asked to fail"):
            handle.vectorize_batch(["say:about to fail", "fail"])
        # no waiting: the failed call flushed before it raised
        assert "[stdout] about to fail" in _plugin_lines(caplog, "faults")


def test_concurrent_calls_use_the_instance_pool(
    faults: Path, manager: PluginManager, tmp_path: Path
) -> None:
    name = load_fault(manager, faults, tmp_path, cpu="2", timeout=5.0)
    handle = manager.get_vectorizer(name)
    expected = handle.vectorize_text("same text")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                assert np.array_equal(handle.vectorize_text("same text"), expected)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()

    def block() -> None:
        with pytest.raises(DeadlineExceeded):
            handle.vectorize_text("loop", timeout=0.5)

    blocker = threading.Thread(target=block)
    blocker.start()
    for t in [*threads, blocker]:
        t.join()
    assert not errors
    assert handle.stats.in_flight == 0


def test_no_ticker_thread_is_left_after_close(examples: Path) -> None:
    with PluginManager(discover=False) as manager:
        manager.load(examples / "c-transformer" / "plugin.yaml")
        assert any(t.name == "weaviate-ext-wasm-epoch" for t in threading.enumerate())
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not any(t.name == "weaviate-ext-wasm-epoch" for t in threading.enumerate()):
            break
        time.sleep(0.02)
    assert os.environ["WEAVIATE_EXT_CACHE_DIR"]


# -- the C API fast path ---------------------------------------------------------------


def _instance(manager: PluginManager, name: str) -> wasm.WasmInstance:
    """An idle instance of a loaded wasm plugin (put back at once)."""
    plugin = manager.registry.get_plugin(name)
    assert plugin is not None
    backend = plugin.backend
    instance = backend._idle.get(timeout=5)
    backend._idle.put(instance)
    assert isinstance(instance, wasm.WasmInstance)
    return instance


@pytest.fixture
def call_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``fast`` (the C API) or ``wasmtime-py`` (WEAVIATE_EXT_WASM_FASTPATH=0)."""
    path = getattr(request, "param", "fast")
    if path != "fast":
        monkeypatch.setenv(capi.ENV_SWITCH, "0")
    capi.reset()
    yield path
    capi.reset()


TEXTS = ["test", "Vector search 🚀", "", "x" * 5000, "Vector databases store embeddings"]


def test_the_fast_path_is_used_and_agrees_with_wasmtime_py(
    examples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = examples / "c-vectorizer" / "plugin.yaml"
    capi.reset()
    with PluginManager(discover=False) as fast:
        fast.load(manifest)
        instance = _instance(fast, "c-embedder")
        assert instance.fast_path and instance.fast is not None
        assert instance.fast.has("wv_vectorize_batch") and instance.fast.has("wv_alloc")
        handle = fast.get_vectorizer("c-embedder")
        fast_out = handle.vectorize_batch(TEXTS)
        fast_single = handle.vectorize_text(TEXTS[1])
    monkeypatch.setenv(capi.ENV_SWITCH, "0")
    capi.reset()
    with PluginManager(discover=False) as slow:
        slow.load(manifest)
        assert not _instance(slow, "c-embedder").fast_path
        handle = slow.get_vectorizer("c-embedder")
        assert np.array_equal(handle.vectorize_batch(TEXTS), fast_out)
        assert np.array_equal(handle.vectorize_text(TEXTS[1]), fast_single)
    capi.reset()


def test_without_the_c_api_symbols_the_bridge_falls_back(
    examples: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A library without the symbols (here: the example's own .so) -> wasmtime-py calls,
    a log line saying why, the same results."""
    not_wasmtime = examples / "c-vectorizer" / "plugin.so"
    monkeypatch.setattr(capi, "library_path", lambda: not_wasmtime)
    capi.reset()
    try:
        with PluginManager(discover=False) as manager, caplog.at_level(logging.INFO):
            manager.load(examples / "c-vectorizer" / "plugin.yaml")
            manager.load(examples / "c-vectorizer" / "plugin-native.yaml")
            assert not _instance(manager, "c-embedder").fast_path
            wasm_out = manager.get_vectorizer("c-embedder").vectorize_batch(TEXTS)
            native_out = manager.get_vectorizer("c-embedder-native").vectorize_batch(TEXTS)
            assert np.array_equal(wasm_out, native_out)
    finally:
        capi.reset()
    line = next(r.message for r in caplog.records if "fast path unavailable" in r.message)
    assert "does not export wasmtime_func_call_unchecked" in line


def test_the_fast_path_refuses_another_wasmtime_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capi, "PINNED_VERSION", "0.0.1")
    capi.reset()
    try:
        with pytest.raises(capi.FastPathUnavailable, match="pinned to 0.0.1"):
            capi.load()
    finally:
        capi.reset()


@pytest.mark.parametrize("call_path", ["fast", "wasmtime-py"], indirect=True)
def test_faults_on_both_call_paths(
    call_path: str, examples: Path, faults: Path, manager: PluginManager, tmp_path: Path
) -> None:
    """Traps, deadlines, the memory limit and bad outputs give the same errors through
    the C API as through wasmtime-py, and the plugin keeps serving."""
    manager.load(examples / "c-transformer" / "plugin.yaml")
    name = load_fault(manager, faults, tmp_path)
    assert _instance(manager, name).fast_path == (call_path == "fast")
    handle = manager.get_vectorizer(name)
    with pytest.raises(PluginCrashed, match=r"unreachable.*\(in wv_vectorize_batch\)"):
        handle.vectorize_text("trap")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="interrupted at its deadline of 0.3s"):
        handle.vectorize_text("loop", timeout=0.3)
    assert time.monotonic() - started < 0.3 + 2
    with pytest.raises(ResourceLimitExceeded, match="memory limit of 67108864 bytes"):
        handle.vectorize_text("bomb")
    with pytest.raises(PluginCallError, match="outside its memory"):
        handle.vectorize_text("oob")
    with pytest.raises(PluginCallError, match="asked to fail"):
        handle.vectorize_text("fail")
    still_serving(manager, name)


@pytest.mark.parametrize("call_path", ["fast", "wasmtime-py"], indirect=True)
def test_memory_growth_during_a_call_remakes_the_view(
    call_path: str, examples: Path, manager: PluginManager
) -> None:
    """The plugin's output buffer grows linear memory inside wv_vectorize_batch; the
    output is read from the grown memory, and matches the native build."""
    manager.load(examples / "c-vectorizer" / "plugin.yaml")
    manager.load(examples / "c-vectorizer" / "plugin-native.yaml")
    instance = _instance(manager, "c-embedder")
    before = instance.memory.data_len(instance.store)
    texts = [f"text number {i}" for i in range(100)]  # 100 x 768 float32 = 300 KiB out
    out = manager.get_vectorizer("c-embedder").vectorize_batch(texts)
    after = instance.memory.data_len(instance.store)
    assert after > before
    if instance.fast is not None:
        assert instance.fast.size == after == len(instance.fast.mem)
    expected = manager.get_vectorizer("c-embedder-native").vectorize_batch(texts)
    assert np.array_equal(out, expected)
    assert np.array_equal(manager.get_vectorizer("c-embedder").vectorize_batch(texts), out)


def test_trap_handlers_are_put_back_after_faulthandler_disable(
    faults: Path, tmp_path: Path, cache_dir: Path
) -> None:
    """faulthandler.disable() (what an in-process pytest session does when it ends)
    restores the signal handlers from before wasmtime's; a trap must still be an error,
    not the end of the process. Run in a subprocess, since failing kills it."""
    manifest = fault_manifest(tmp_path, faults / "faults.wasm", runtime="wasm")
    script = f"""
import faulthandler, time
from weaviate_ext import PluginCrashed, PluginManager
faulthandler.enable()
with PluginManager(discover=False) as manager:
    handle = manager.get_vectorizer(manager.load({str(manifest)!r}).name)
    faulthandler.disable()
    faulthandler.enable()
    time.sleep(0.1)  # the epoch ticker checks every 10 ms
    for _ in range(3):
        try:
            handle.vectorize_text("trap")
        except PluginCrashed:
            pass
    print("served", handle.vectorize_text("good text").shape)
"""
    env = {**os.environ, "WEAVIATE_EXT_CACHE_DIR": str(cache_dir)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "served (16,)" in result.stdout
