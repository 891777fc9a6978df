"""Typed handles: outputs, batching, dimensions, deadlines and error translation."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from plugin_factory import write_plugin

from weaviate_ext import (
    DeadlineExceeded,
    DimensionMismatch,
    InvalidInput,
    PluginCallError,
    PluginOutputError,
    RankResult,
    ResourceLimitExceeded,
)

RETURNS = """
    import struct
    import numpy as np
    from weaviate_ext import hookimpl

    CALLS = []

    class Plugin:
        @hookimpl
        def vectorize_text(self, text):
            CALLS.append(text)
            kind = text.split(":")[0]
            if kind == "list":
                return [1.0, 2.0, 3.0]
            if kind == "bytes":
                return struct.pack("<3f", 1.0, 2.0, 3.0)
            if kind == "f64":
                return np.array([1.0, 2.0, 3.0])
            if kind == "short":
                return [1.0, 2.0]
            if kind == "2d":
                return np.ones((1, 3), dtype=np.float32)
            if kind == "junk":
                return ["a", "b", "c"]
            if kind == "oddbytes":
                return b"12345"
            if kind == "memory":
                raise MemoryError()
            return np.array([1.0, 2.0, 3.0], dtype=np.float32)
"""


@pytest.fixture
def vec(manager, tmp_path):
    return manager.load(
        write_plugin(tmp_path, "vec", "vectorizer", RETURNS, capabilities={"dimensions": 3})
    )


@pytest.mark.parametrize("kind", ["list", "bytes", "f64", "array"])
def test_every_vector_form_becomes_float32(vec, kind):
    vector = vec.vectorize_text(f"{kind}:x")
    assert vector.dtype == np.float32 and vector.shape == (3,)
    assert vector.tolist() == [1.0, 2.0, 3.0]


def test_packed_bytes_are_read_without_copy(manager, tmp_path):
    source = """
        import struct
        from weaviate_ext import hookimpl
        BUF = bytearray(struct.pack("<4f", 1, 2, 3, 4))
        class Plugin:
            @hookimpl
            def vectorize_batch(self, texts):
                return BUF[: 8 * len(texts)]
    """
    handle = manager.load(
        write_plugin(tmp_path, "packed", "vectorizer", source, capabilities={"dimensions": 2})
    )
    matrix = handle.vectorize_batch(["a", "b"])
    assert matrix.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert struct.pack("<4f", 1, 2, 3, 4) == matrix.tobytes()


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("short", DimensionMismatch, "returned vectors of 2 dimensions, the manifest declares 3"),
        ("2d", PluginOutputError, r"shape \(1, 3\), not 1-D"),
        ("junk", PluginOutputError, "not float vectors"),
        ("oddbytes", PluginOutputError, "returned 5 bytes, not packed float32"),
        ("memory", ResourceLimitExceeded, "out of memory"),
    ],
)
def test_contract_breaks_are_framework_errors(vec, kind, error, message):
    with pytest.raises(error, match=message) as info:
        vec.vectorize_text(f"{kind}:x")
    assert info.value.plugin == "vec" and info.value.hook == "vectorize_text"


def test_plugin_exception_becomes_plugin_call_error(manager, tmp_path):
    source = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def transform(self, data):
                return {}["missing"] if data == "x" else data
    """
    handle = manager.load(write_plugin(tmp_path, "t", "transformer", source, extra_spec={}))
    with pytest.raises(PluginCallError, match="plugin 't' transform: KeyError: 'missing'") as info:
        handle.transform("x")
    assert isinstance(info.value.__cause__, KeyError)


def test_bad_input_types_are_refused_before_the_plugin(vec):
    import weaviate_ext

    module = __import__(type(vec._slot.live.obj).__module__)
    before = len(module.CALLS)
    with pytest.raises(InvalidInput, match="text must be str, got int"):
        vec.vectorize_text(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not a single str"):
        vec.vectorize_batch("abc")
    with pytest.raises(InvalidInput, match=r"texts\[1\] must be str"):
        vec.vectorize_batch(["a", None])  # type: ignore[list-item]
    assert len(module.CALLS) == before
    assert issubclass(InvalidInput, weaviate_ext.WeaviateExtError)


BATCH_RECORDER = """
    import numpy as np
    from weaviate_ext import hookimpl
    SIZES = []
    class Plugin:
        @hookimpl
        def vectorize_batch(self, texts):
            SIZES.append(len(texts))
            return np.array([[len(t), i] for i, t in enumerate(texts)], dtype=np.float32)
"""


def test_batches_are_split_by_max_batch_size(manager, tmp_path):
    handle = manager.load(
        write_plugin(
            tmp_path,
            "b",
            "vectorizer",
            BATCH_RECORDER,
            capabilities={"dimensions": 2, "maxBatchSize": 3},
        )
    )
    sizes = __import__(type(handle._slot.live.obj).__module__).SIZES
    sizes.clear()
    texts = ["x" * n for n in range(8)]
    matrix = handle.vectorize_batch(texts)
    assert sizes == [3, 3, 2]
    assert matrix.shape == (8, 2)
    assert matrix[:, 0].tolist() == list(range(8))
    assert handle.vectorize_batch([]).shape == (0, 2)
    assert sizes == [3, 3, 2], "an empty batch must not reach the plugin"
    # a single text goes through the batch hook as a batch of one
    assert handle.vectorize_text("abcd").tolist() == [4.0, 0.0]


def test_batch_falls_back_to_single_calls(vec):
    matrix = vec.vectorize_batch(["list:a", "bytes:b", "array:c"])
    assert matrix.shape == (3, 3) and matrix.dtype == np.float32


def test_batch_with_wrong_count_is_refused(manager, tmp_path):
    source = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def vectorize_batch(self, texts):
                if len(texts) == 1:
                    return [[1.0, 1.0]]
                return [[1.0, 1.0]] * (len(texts) - 1)
    """
    handle = manager.load(write_plugin(tmp_path, "short", "vectorizer", source))
    with pytest.raises(PluginOutputError, match="returned 2 vectors for 3 texts"):
        handle.vectorize_batch(["a", "b", "c"])


DEADLINE = """
    import time
    from weaviate_ext import hookimpl
    SEEN = []
    class Plugin:
        @hookimpl
        def vectorize_batch(self, texts, deadline):
            SEEN.append(deadline.timeout)
            time.sleep(0.05)
            return [[1.0]] * len(texts)

        @hookimpl
        def vectorize_text(self, text, deadline):
            SEEN.append(deadline.timeout)
            while not deadline.expired:
                time.sleep(0.01)
            deadline.check()
"""


def test_deadlines_reach_the_plugin_and_stop_chunked_batches(manager, tmp_path):
    handle = manager.load(
        write_plugin(
            tmp_path,
            "slow",
            "vectorizer",
            DEADLINE,
            capabilities={"dimensions": 1, "maxBatchSize": 1},
            extra_spec={"timeout": "2s"},
        )
    )
    seen = __import__(type(handle._slot.live.obj).__module__).SEEN
    seen.clear()
    handle.vectorize_batch(["a"])
    assert seen == [2.0], "the manifest's spec.timeout is the default deadline"
    with pytest.raises(DeadlineExceeded, match="deadline of 0.12s exceeded"):
        handle.vectorize_batch(["a"] * 50, timeout=0.12)
    assert 2 <= len(seen) - 1 <= 4, "chunks after the deadline must not be sent"
    with pytest.raises(DeadlineExceeded):
        handle.vectorize_text("x", timeout=0.05)
    assert handle.stats.errors == 2


RERANK = """
    from weaviate_ext import RankResult, hookimpl
    class Plugin:
        @hookimpl
        def rerank(self, query, documents):
            mode, _, term = query.partition(":")
            scores = [float(d.count(term)) for d in documents]
            if not term:  # the framework's probe at load
                return scores
            if mode == "scores":
                return scores
            if mode == "pairs":
                return [(i, s) for i, s in enumerate(scores)][::-1]
            if mode == "results":
                return [RankResult(i, s) for i, s in enumerate(scores)]
            if mode == "drop":
                return [(0, 1.0)] * len(documents)
            if mode == "range":
                return [(len(documents), 1.0)]
            return "nonsense"
"""


@pytest.mark.parametrize("mode", ["scores", "pairs", "results"])
def test_rerank_normalises_every_answer_form(manager, tmp_path, mode):
    handle = manager.load(write_plugin(tmp_path, "r", "reranker", RERANK))
    docs = ["a", "b b", "a a a", "c"]
    ranked = handle.rerank(f"{mode}:a", docs)
    assert [r.index for r in ranked] == [2, 0, 1, 3]
    assert ranked[0] == RankResult(2, 3.0, "a a a")
    assert handle.rerank(f"{mode}:a", docs, top_k=2) == ranked[:2]
    assert handle.rerank(f"{mode}:a", []) == []


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("drop", "each index must appear once"),
        ("range", "index 2 for 2 documents"),
        ("junk", "expected a score or"),
    ],
)
def test_rerank_contract_breaks(manager, tmp_path, mode, message):
    handle = manager.load(write_plugin(tmp_path, "r", "reranker", RERANK))
    with pytest.raises(PluginOutputError, match=message):
        handle.rerank(f"{mode}:a", ["a", "b"])


def test_rerank_in_chunks_keeps_global_indices(manager, tmp_path):
    handle = manager.load(
        write_plugin(tmp_path, "r", "reranker", RERANK, capabilities={"maxBatchSize": 2})
    )
    docs = ["x", "a", "x", "a a a", "a a"]
    ranked = handle.rerank("pairs:a", docs)
    assert [r.index for r in ranked] == [3, 4, 1, 0, 2]
    assert [r.document for r in ranked][:2] == ["a a a", "a a"]


GENERATOR = """
    from weaviate_ext import hookimpl
    CLOSED = []
    class Plugin:
        @hookimpl
        def generate_stream(self, prompt, options):
            try:
                for word in prompt.split()[: options.get("max_tokens", 100)]:
                    yield word + " "
            finally:
                CLOSED.append(prompt)
"""


def test_generator_streams_and_derives_generate(manager, tmp_path):
    handle = manager.load(write_plugin(tmp_path, "g", "generator", GENERATOR))
    seen: list[str] = []
    chunks = list(handle.generate_stream("one two three", callback=seen.append))
    assert chunks == ["one ", "two ", "three "] == seen
    assert handle.generate("one two three", max_tokens=2) == "one two "
    stream = handle.generate_stream("a b c d")
    assert next(stream) == "a "
    assert handle.stats.in_flight == 1
    stream.close()
    assert handle.stats.in_flight == 0
    closed = __import__(type(handle._slot.live.obj).__module__).CLOSED
    assert closed[-1] == "a b c d", "closing the handle's stream closes the plugin's"


def test_a_stream_closed_or_dropped_before_its_first_chunk_is_counted_out(manager, tmp_path):
    """A reload waits for calls in flight: a stream that is never read must not count
    as one forever."""
    handle = manager.load(write_plugin(tmp_path, "g", "generator", GENERATOR))
    stream = handle.generate_stream("never read")
    assert handle.stats.in_flight == 1
    stream.close()
    assert handle.stats.in_flight == 0
    dropped = handle.generate_stream("dropped")
    assert handle.stats.in_flight == 1
    del dropped
    assert handle.stats.in_flight == 0
    manager.reload("g")  # would wait for ever on a leaked call
    assert handle.generate("still answers") == "still answers "


def test_async_stream(manager, tmp_path):
    import asyncio

    handle = manager.load(write_plugin(tmp_path, "g", "generator", GENERATOR))

    async def collect() -> list[str]:
        return [chunk async for chunk in handle.agenerate_stream("x y")]

    assert asyncio.run(collect()) == ["x ", "y "]


def test_generate_must_return_text(manager, tmp_path):
    source = """
        from weaviate_ext import hookimpl
        class Plugin:
            @hookimpl
            def generate(self, prompt):
                return 42
    """
    handle = manager.load(write_plugin(tmp_path, "g", "generator", source))
    with pytest.raises(PluginOutputError, match="returned int, not str"):
        handle.generate("x")
    assert list(handle.generate_stream.__doc__ or "")  # documented
    with pytest.raises(PluginOutputError):
        list(handle.generate_stream("x"))


STORAGE = """
    from weaviate_ext import hookimpl
    class Plugin:
        def __init__(self):
            self.data = {}
        @hookimpl
        def store(self, key, data):
            self.data[key] = data
        @hookimpl
        def retrieve(self, key):
            value = self.data.get(key)
            return bytearray(value) if key.startswith("ba") and value is not None else value
        @hookimpl
        def delete(self, key):
            return self.data.pop(key, None) is not None
"""


def test_storage_handle(manager, tmp_path):
    handle = manager.load(write_plugin(tmp_path, "kv", "storage", STORAGE))
    handle.store("k", b"\x00\xff")
    handle.store("ba", memoryview(b"view"))
    assert handle.retrieve("k") == b"\x00\xff"
    assert handle.retrieve("ba") == b"view" and type(handle.retrieve("ba")) is bytes
    assert handle.retrieve("missing") is None
    assert handle.delete("k") is True and handle.delete("k") is False
    with pytest.raises(InvalidInput, match="data must be bytes, got str"):
        handle.store("k", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="key must not be empty"):
        handle.retrieve("")


def test_stream_callback_must_be_callable(manager, tmp_path):
    handle = manager.load(write_plugin(tmp_path, "g", "generator", GENERATOR))
    with pytest.raises(InvalidInput, match="callback must be callable, got int"):
        handle.generate_stream("x", callback=5)  # type: ignore[arg-type]


def test_non_iterable_batches_are_invalid_input(vec, manager, tmp_path):
    with pytest.raises(InvalidInput, match="texts must be a sequence of str, got int"):
        vec.vectorize_batch(12345)  # type: ignore[arg-type]
    reranker = manager.load(write_plugin(tmp_path, "r", "reranker", RERANK))
    with pytest.raises(InvalidInput, match="documents must be a sequence of str, got int"):
        reranker.rerank("q", 5)  # type: ignore[arg-type]
