"""Length-aware batching: a batch of more than one ``maxBatchSize`` chunk is cut from one
global length order (stable, by character length) and its rows come back in the caller's
order; a batch that fits in one chunk reaches the plugin as given."""

from __future__ import annotations

import random

import numpy as np
import pytest
from plugin_factory import write_plugin

from weaviate_ext import PluginOutputError

RECORDER = """
    import numpy as np
    from weaviate_ext import hookimpl

    CHUNKS = []

    def row(text):
        # depends on the text alone, so a batch must equal the singles
        return [len(text), sum(map(ord, text)) % 997, ord(text[0]) if text else -1]

    class Plugin:
        @hookimpl
        def vectorize_batch(self, texts):
            CHUNKS.append(list(texts))
            return np.array([row(t) for t in texts], dtype=np.float32).reshape(-1, 3)
"""

SINGLES = """
    import numpy as np
    from weaviate_ext import hookimpl

    CALLS = []

    class Plugin:
        @hookimpl
        def vectorize_text(self, text):
            CALLS.append(text)
            return np.array([len(text), ord(text[0]) if text else -1], dtype=np.float32)
"""

WIDTHS = """
    import numpy as np
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def vectorize_batch(self, texts):
            # the width follows the first text's length: two chunks of different widths
            width = 2 if len(texts[0]) < 5 else 3
            return np.ones((len(texts), width), dtype=np.float32)
"""

RERANK = """
    from weaviate_ext import hookimpl

    CHUNKS = []

    class Plugin:
        @hookimpl
        def rerank(self, query, documents):
            CHUNKS.append(list(documents))
            return [float(d.count(query or "a")) for d in documents]
"""


def expected_row(text: str) -> list[float]:
    return [len(text), sum(map(ord, text)) % 997, ord(text[0]) if text else -1]


def mixed_texts(count: int, seed: int = 7) -> list[str]:
    """Texts of mixed lengths (ties included), in a shuffled order."""
    rng = random.Random(seed)
    return [
        "".join(rng.choice("abcdefgh ") for _ in range(rng.choice([0, 1, 3, 3, 8, 20, 57])))
        for _ in range(count)
    ]


def module_of(handle):
    return __import__(type(handle._slot.live.obj).__module__)


@pytest.fixture
def recorder(manager, tmp_path):
    handle = manager.load(
        write_plugin(
            tmp_path,
            "rec",
            "vectorizer",
            RECORDER,
            capabilities={"dimensions": 3, "maxBatchSize": 8},
        )
    )
    module_of(handle).CHUNKS.clear()  # the probe at load
    return handle


def test_chunks_are_cut_from_one_global_length_order(recorder):
    texts = mixed_texts(30)
    recorder.vectorize_batch(texts)
    chunks = module_of(recorder).CHUNKS
    assert [len(c) for c in chunks] == [8, 8, 8, 6]
    # every chunk's texts are shorter than (or as long as) the next chunk's, and the
    # sort is stable: equal lengths keep the caller's order
    assert [t for c in chunks for t in c] == sorted(texts, key=len)


def test_rows_come_back_in_the_callers_order(recorder):
    texts = mixed_texts(30)
    matrix = recorder.vectorize_batch(texts)
    assert matrix.dtype == np.float32
    assert matrix.shape == (30, 3)
    assert matrix.tolist() == [expected_row(t) for t in texts]


def test_a_batch_equals_the_singles(recorder):
    texts = mixed_texts(21, seed=3)
    batch = recorder.vectorize_batch(texts)
    singles = np.stack([recorder.vectorize_text(t) for t in texts])
    np.testing.assert_array_equal(batch, singles)


def test_a_single_chunk_keeps_the_callers_order(recorder):
    texts = mixed_texts(8, seed=5)
    assert texts != sorted(texts, key=len), "the test needs texts out of length order"
    matrix = recorder.vectorize_batch(texts)
    chunks = module_of(recorder).CHUNKS
    assert chunks == [texts]
    assert matrix.tolist() == [expected_row(t) for t in texts]


def test_without_max_batch_size_the_batch_is_passed_as_given(manager, tmp_path):
    handle = manager.load(
        write_plugin(tmp_path, "rec", "vectorizer", RECORDER, capabilities={"dimensions": 3})
    )
    module_of(handle).CHUNKS.clear()
    texts = mixed_texts(100)
    handle.vectorize_batch(texts)
    chunks = module_of(handle).CHUNKS
    assert chunks == [texts]


def test_single_text_plugins_are_called_in_the_callers_order(manager, tmp_path):
    handle = manager.load(
        write_plugin(
            tmp_path,
            "one",
            "vectorizer",
            SINGLES,
            capabilities={"dimensions": 2, "maxBatchSize": 4},
        )
    )
    calls = module_of(handle).CALLS
    calls.clear()
    texts = [t or "z" for t in mixed_texts(10)]
    matrix = handle.vectorize_batch(texts)
    assert calls == texts, "no padding to save: texts go one by one as given"
    assert matrix.tolist() == [[len(t), ord(t[0])] for t in texts]


def test_chunks_of_different_widths_are_refused(manager, tmp_path):
    handle = manager.load(
        write_plugin(tmp_path, "w", "vectorizer", WIDTHS, capabilities={"maxBatchSize": 2})
    )
    with pytest.raises(PluginOutputError, match="vectors of different lengths"):
        handle.vectorize_batch(["aaaaaaa", "a", "aaaaaa", "aa"])


def test_reranker_chunks_by_length_and_keeps_the_callers_indexes(manager, tmp_path):
    handle = manager.load(
        write_plugin(tmp_path, "r", "reranker", RERANK, capabilities={"maxBatchSize": 2})
    )
    chunks = module_of(handle).CHUNKS
    chunks.clear()
    docs = ["a a a a", "b", "a a", "a", "bbbbbbbbbb a"]
    ranked = handle.rerank("a", docs)
    assert chunks == [["b", "a"], ["a a", "a a a a"], ["bbbbbbbbbb a"]]
    assert [(r.index, r.score, r.document) for r in ranked] == [
        (0, 4.0, "a a a a"),
        (2, 2.0, "a a"),
        (3, 1.0, "a"),
        (4, 1.0, "bbbbbbbbbb a"),
        (1, 0.0, "b"),
    ]
    chunks.clear()
    assert [r.index for r in handle.rerank("a", docs[:2])] == [0, 1]
    assert chunks == [docs[:2]], "one chunk goes to the plugin as given"
