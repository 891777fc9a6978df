"""wasm vs native: the same C vectorizer (examples/plugins/c-vectorizer) called
through the manager's handle as a wasm module and as a shared library, single text and
a batch of 100, plus the floors (a direct cffi call of the native export, and the wasm
export called straight through the C API fast path), and cold loads of the wasm plugin
with and without the compiled-module cache.

    python benchmarks/wasm_vs_native.py [--quick]

Builds the example first (examples/plugins/c-vectorizer/build.sh). Timings are the
best of N interleaved rounds (every case runs once per round, so a noisy moment hits
all of them alike); each round times a block of calls. Besides the headline cases it
measures, for the record:

* ``wasm_slowpath_single_us``: the handle with wasmtime-py's ``Func.__call__``
  (``WEAVIATE_EXT_WASM_FASTPATH=0``), the path before the C API fast path;
* ``wasm_direct_*_us``: the export alone through the fast path (no handle, no pool);
* ``wasm_direct_*_noepoch_us``: the same in an engine without epoch interruption --
  what the deadline instrumentation costs the kernel (the bridge always has it on).

Prints a table and, as its last line, one JSON object: wasm_single_ratio and
wasm_batch_ratio (wasm through the handle / native through the handle),
cache_load_speedup (cold load without the cache / with it), and the raw numbers in
microseconds / milliseconds. Besides, for issue 12:

* ``wasm_kernel_batch_ratio``: the floor under wasm_batch_ratio -- the export alone,
  wasm with epoch interruption (as the bridge runs it) over native -- and
  ``wasm_batch_ratio_over_kernel``, the framework's share: wasm_batch_ratio over it;
* ``native_single_overhead_us`` / ``wasm_single_overhead_us``: the handle's time for
  one text minus the direct call of the same export (``wv_vectorize_into``, the one
  the handles call; its input prepared once, its output buffer allocated once);
  ``native_batch_over_direct`` / ``wasm_batch_over_direct``: the handle over the
  direct call for 100 texts;
* ``native_batch_over_direct_fresh``: the same over a direct call writing into a new
  array each call (``native_direct_batch_fresh_us``), and
  ``wasm_batch_over_direct_copy``: over a direct call that also copies the vectors out
  of linear memory once (``wasm_direct_batch_copy_us``) -- what any caller that keeps
  the vectors must do: the part of the gap that is not the framework's bookkeeping;
* ``native_direct_packed_*`` / ``wasm_direct_packed_batch_us``: the packed-strings
  export (``wv_vectorize_batch``), for plugins without ``wv_vectorize_into``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "c-vectorizer"
SENTENCE = "Vector databases store embeddings for similarity search!!"  # 60 bytes
BATCH = [f"{SENTENCE} #{i}" for i in range(100)]
DIMS = 768


def interleaved(
    cases: dict[str, tuple[Callable[[], object], int]], rounds: int
) -> dict[str, float]:
    """Best over ``rounds`` interleaved rounds of the mean time per call, in µs.

    ``cases`` maps a name to ``(fn, calls per round)``."""
    best = {name: float("inf") for name in cases}
    for fn, _ in cases.values():
        for _ in range(20):
            fn()
    for _ in range(rounds):
        for name, (fn, calls) in cases.items():
            started = time.perf_counter()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.perf_counter() - started) / calls * 1e6)
    return best


def cold_loads_ms(cache: Path, rounds: int) -> tuple[float, float]:
    """Best load time of the wasm plugin in a fresh manager: without a cache, with it
    (interleaved, like the calls)."""
    from weaviate_ext import PluginManager

    os.environ["WEAVIATE_EXT_CACHE_DIR"] = str(cache)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(rounds):
        for warm in (False, True):
            if not warm:
                for f in cache.glob("*.cwasm"):
                    f.unlink()
            with PluginManager(discover=False) as manager:
                started = time.perf_counter()
                manager.load(EXAMPLE / "plugin.yaml")
                best[warm] = min(best[warm], (time.perf_counter() - started) * 1000)
    return best[False], best[True]


class DirectWasm:
    """The example's wasm export called through the C API fast path, without the
    bridge: an engine (epoch interruption on or off), WASI with the model directory,
    ``wv_init``, and preallocated inputs."""

    def __init__(self, epoch: bool) -> None:
        import wasmtime

        from weaviate_ext.bridges.cabi import abi, capi

        config = wasmtime.Config()
        config.epoch_interruption = epoch
        config.memory_may_move = False  # as the bridge's engine
        engine = wasmtime.Engine(config)
        store = self.store = wasmtime.Store(engine)
        if epoch:
            store.set_epoch_deadline(1 << 40)
        wasi = wasmtime.WasiConfig()
        wasi.preopen_dir(str(EXAMPLE / "build" / "model"), "/model", False)
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        linker.define_func(
            abi.EMIT_MODULE, abi.EMIT_NAME, wasmtime.FuncType([i32, i32], [i32]), lambda a, b: 1
        )
        module = wasmtime.Module.from_file(engine, str(EXAMPLE / "plugin.wasm"))
        exports = linker.instantiate(store, module).exports(store)
        names = ("wv_alloc", "wv_init", "wv_vectorize_batch", "wv_vectorize_into")
        funcs: dict[str, Any] = {n: exports[n] for n in (*names, "_initialize")}
        funcs["_initialize"](store)
        self.fast = capi.FastInstance(
            capi.load(), store, exports["memory"], funcs, {n: abi.wasm_params(n) for n in names}
        )
        config_json = b'{"modelPath": "/model/model.bin"}'
        self.inbuf = self.fast.call("wv_alloc", (1 << 16,)) or 0
        self.scratch = self.fast.call("wv_alloc", (8,)) or 0
        self.fast.refresh()  # the view is widened on demand, as the bridge does
        self.fast.mem[self.inbuf : self.inbuf + len(config_json)] = config_json
        assert self.fast.call("wv_init", (self.inbuf, len(config_json))) == 0

    def caller(self, packed: bytes, count: int, copy: bool = False) -> Callable[[], object]:
        """A call of ``wv_vectorize_batch`` on ``packed`` (written once, in its own
        buffer); checks once that it succeeds. ``copy``: and copy the output out of
        linear memory into a new array (the address read from the out-parameters)."""
        ptr = self.fast.call("wv_alloc", (len(packed),)) or 0
        self.fast.refresh()
        self.fast.mem[ptr : ptr + len(packed)] = packed
        args = (ptr, len(packed), count, self.scratch, self.scratch + 4)
        call = self.fast.call
        assert call("wv_vectorize_batch", args) == 0
        if not copy:
            return lambda: call("wv_vectorize_batch", args)
        fast, scratch, out = self.fast, self.scratch, struct.Struct("<II").unpack_from

        def call_and_copy() -> object:
            call("wv_vectorize_batch", args)
            at, size = out(fast.mem, scratch)
            return np.frombuffer(fast.mem, "<f4", size >> 2, at).copy()

        return call_and_copy

    def into_caller(self, joined: bytes, count: int, copy: bool = False) -> Callable[[], object]:
        """A call of ``wv_vectorize_into`` on ``joined`` (texts joined by 0xFF, written
        once) into a buffer of linear memory allocated once; ``copy``: and copy the
        vectors out into a new array, as any caller keeping them must."""
        floats = count * DIMS
        ptr = self.fast.call("wv_alloc", (len(joined),)) or 0
        out = self.fast.call("wv_alloc", (4 * floats,)) or 0
        self.fast.refresh()
        self.fast.mem[ptr : ptr + len(joined)] = joined
        args = (ptr, len(joined), count, out, floats)
        call = self.fast.call
        assert call("wv_vectorize_into", args) == 0
        if not copy:
            return lambda: call("wv_vectorize_into", args)
        fast = self.fast

        def call_and_copy() -> object:
            call("wv_vectorize_into", args)
            return np.frombuffer(fast.mem, "<f4", floats, out).copy()

        return call_and_copy


def main() -> None:
    """Run the benchmark and print the table and the JSON line."""
    quick = "--quick" in sys.argv
    rounds = 15 if quick else 50
    subprocess.run(["sh", str(EXAMPLE / "build.sh")], check=True, capture_output=True)
    from weaviate_ext import PluginManager
    from weaviate_ext.bridges import native
    from weaviate_ext.bridges.cabi import abi, capi

    cache = Path(tempfile.mkdtemp(prefix="wv-bench-cache-"))
    os.environ["WEAVIATE_EXT_CACHE_DIR"] = str(cache)
    with PluginManager(discover=False) as manager, PluginManager(discover=False) as slow:
        manager.load(EXAMPLE / "plugin.yaml")
        manager.load(EXAMPLE / "plugin-native.yaml")
        wasm_h = manager.get_vectorizer("c-embedder")
        native_h = manager.get_vectorizer("c-embedder-native")
        os.environ[capi.ENV_SWITCH] = "0"
        try:
            slow.load(EXAMPLE / "plugin.yaml")
        finally:
            del os.environ[capi.ENV_SWITCH]
        slow_h = slow.get_vectorizer("c-embedder")

        lib = native.ffi.dlopen(str((EXAMPLE / "plugin.so").resolve()))
        out_ptr = native.ffi.new("const uint8_t **")
        out_len = native.ffi.new("uint32_t *")
        hundred = abi.pack_strings(BATCH)
        one_joined, hundred_joined = abi.join_texts([SENTENCE]), abi.join_texts(BATCH)

        def direct_into(joined: bytes, count: int, fresh: bool = False) -> Callable[[], object]:
            """``wv_vectorize_into`` straight through cffi into one preallocated array
            (the strictest floor: not even a fresh array per call); ``fresh``: into a
            new array each call, as any caller keeping the vectors needs."""
            fn, floats = lib.wv_vectorize_into, count * DIMS
            out = native.ffi.from_buffer(np.empty(floats, np.float32))
            assert fn(joined, len(joined), count, out, floats) == 0
            if not fresh:
                return lambda: fn(joined, len(joined), count, out, floats)
            from_buffer, empty = native.ffi.from_buffer, np.empty

            def call_fresh() -> object:
                array = empty(floats, np.float32)
                fn(joined, len(joined), count, from_buffer(array), floats)
                return array

            return call_fresh

        def direct(packed: bytes, count: int, copy: bool = False) -> Callable[[], object]:
            fn = lib.wv_vectorize_batch
            if not copy:
                return lambda: fn(packed, len(packed), count, out_ptr, out_len)
            memmove, f4 = native.ffi.memmove, np.dtype("<f4")

            def call_and_copy() -> object:
                fn(packed, len(packed), count, out_ptr, out_len)
                out = np.empty(out_len[0] >> 2, f4)
                memmove(out, out_ptr[0], out_len[0])
                return out

            return call_and_copy

        with_epoch, without_epoch = DirectWasm(epoch=True), DirectWasm(epoch=False)
        single, batch = 2000, 20
        results = interleaved(
            {
                # the export the handles call (wv_vectorize_into), called directly
                "native_direct_us": (direct_into(one_joined, 1), single),
                "native_single_us": (lambda: native_h.vectorize_text(SENTENCE), single),
                "wasm_single_us": (lambda: wasm_h.vectorize_text(SENTENCE), single),
                "wasm_slowpath_single_us": (lambda: slow_h.vectorize_text(SENTENCE), 200),
                "wasm_direct_single_us": (with_epoch.into_caller(one_joined, 1), single),
                "wasm_direct_single_noepoch_us": (
                    without_epoch.into_caller(one_joined, 1),
                    single,
                ),
                "native_direct_batch_us": (direct_into(hundred_joined, 100), batch),
                "native_direct_batch_fresh_us": (
                    direct_into(hundred_joined, 100, fresh=True),
                    batch,
                ),
                "native_batch_us": (lambda: native_h.vectorize_batch(BATCH), batch),
                "wasm_batch_us": (lambda: wasm_h.vectorize_batch(BATCH), batch),
                "wasm_direct_batch_us": (with_epoch.into_caller(hundred_joined, 100), batch),
                "wasm_direct_batch_copy_us": (
                    with_epoch.into_caller(hundred_joined, 100, copy=True),
                    batch,
                ),
                "wasm_direct_batch_noepoch_us": (
                    without_epoch.into_caller(hundred_joined, 100),
                    batch,
                ),
                # for the record: the packed-strings export (wv_vectorize_batch), which
                # plugins without wv_vectorize_into are called through
                "native_direct_packed_batch_us": (direct(hundred, 100), batch),
                "native_direct_packed_batch_copy_us": (direct(hundred, 100, copy=True), batch),
                "wasm_direct_packed_batch_us": (with_epoch.caller(hundred, 100), batch),
            },
            rounds,
        )
        fast_path = bool(manager.registry.get_plugin("c-embedder").backend.fast_path)
    no_cache, cached = cold_loads_ms(cache, 5 if quick else 10)
    results["cold_load_no_cache_ms"] = no_cache
    results["cold_load_cached_ms"] = cached

    r = results
    summary: dict[str, Any] = {
        "wasm_single_ratio": round(r["wasm_single_us"] / r["native_single_us"], 3),
        "wasm_batch_ratio": round(r["wasm_batch_us"] / r["native_batch_us"], 3),
        "cache_load_speedup": round(no_cache / cached, 3),
        # the floor the batch ratio stands on: the kernel alone, wasm (with epochs, as
        # the bridge runs it) over native, and the framework's ratio over that floor
        "wasm_kernel_batch_ratio": round(
            r["wasm_direct_batch_us"] / r["native_direct_batch_us"], 3
        ),
        "wasm_kernel_batch_noepoch_ratio": round(
            r["wasm_direct_batch_noepoch_us"] / r["native_direct_batch_us"], 3
        ),
        "wasm_batch_ratio_over_kernel": round(
            (r["wasm_batch_us"] / r["native_batch_us"])
            / (r["wasm_direct_batch_us"] / r["native_direct_batch_us"]),
            3,
        ),
        # the handle over a direct call of the same export (issue 12, point 1)
        "native_single_overhead_us": round(r["native_single_us"] - r["native_direct_us"], 2),
        "native_batch_over_direct": round(r["native_batch_us"] / r["native_direct_batch_us"], 3),
        # the same over a direct call into a new array per call (what any caller keeping
        # the vectors pays: 300 KiB of fresh memory)
        "native_batch_over_direct_fresh": round(
            r["native_batch_us"] / r["native_direct_batch_fresh_us"], 3
        ),
        "wasm_single_overhead_us": round(r["wasm_single_us"] - r["wasm_direct_single_us"], 2),
        "wasm_batch_over_direct": round(r["wasm_batch_us"] / r["wasm_direct_batch_us"], 3),
        # wasm against a direct call that also copies the vectors out of linear memory
        # once (what any caller keeping them must do: 100 x 768 float32 = 300 KiB; a
        # native plugin writes them straight into the caller's array)
        "wasm_batch_over_direct_copy": round(
            r["wasm_batch_us"] / r["wasm_direct_batch_copy_us"], 3
        ),
        "fast_path": fast_path,
        **{k: round(v, 2) for k, v in r.items()},
    }
    print(f"{'measurement':<34}{'value':>12}")
    for key, value in r.items():
        unit = "ms" if key.endswith("_ms") else "µs"
        print(f"{key:<34}{value:>10.2f} {unit}")
    for key, value in summary.items():
        if key in r or isinstance(value, bool):
            continue
        unit = "µs" if key.endswith("_us") else "x"
        print(f"{key:<34}{value:>10.3f} {unit}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
