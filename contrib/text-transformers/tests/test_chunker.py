"""text-chunker through the framework: exact sizes and overlap, nothing lost, edge cases."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from weaviate_ext_text_transformers.chunking import sentence_spans, windows

from weaviate_ext import InvalidInput, PluginLoadError, PluginManager, TransformerHandle
from weaviate_ext.testing import check_plugin

WORDS = [f"w{i}" for i in range(23)]


def load(manager: PluginManager, manifest: Path, **config: Any) -> TransformerHandle:
    """The chunker loaded with ``config``."""
    handle: TransformerHandle = manager.load(manifest, config=config)
    return handle


@pytest.mark.parametrize("mode", ["words", "sentences"])
def test_conformance(plugin_manager: PluginManager, chunker_manifest: Path, mode: str) -> None:
    handle = load(plugin_manager, chunker_manifest, mode=mode, size=4, overlap=1)
    check_plugin(handle).raise_for_failures()


def test_word_chunks_have_exact_sizes_and_overlap(
    plugin_manager: PluginManager, chunker_manifest: Path
) -> None:
    chunker = load(plugin_manager, chunker_manifest, size=5, overlap=2)
    chunks = chunker.transform(" ".join(WORDS))
    assert chunks == [" ".join(WORDS[i : i + 5]) for i in (0, 3, 6, 9, 12, 15, 18)]
    for before, after in itertools.pairwise(chunks):
        assert before.split()[-2:] == after.split()[:2]


@pytest.mark.parametrize(("count", "size", "overlap"), [
    (0, 3, 0), (1, 3, 2), (3, 3, 0), (4, 3, 0), (10, 3, 2), (10, 4, 1), (97, 10, 3),
    (100, 10, 0), (128, 128, 16), (129, 128, 16), (1000, 7, 6),
])  # fmt: skip
def test_no_word_is_lost_and_the_overlap_is_exact(
    plugin_manager: PluginManager, chunker_manifest: Path, count: int, size: int, overlap: int
) -> None:
    words = [f"word{i}" for i in range(count)]
    chunker = load(plugin_manager, chunker_manifest, size=size, overlap=overlap)
    chunks = [c.split() for c in chunker.transform("  ".join(words) + "\n")]
    if not words:
        assert chunks == []
        return
    rebuilt = chunks[0] + [w for chunk in chunks[1:] for w in chunk[overlap:]]
    assert rebuilt == words  # joined without the overlaps, the chunks are the text
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= size
    for before, after in itertools.pairwise(chunks):
        assert before[len(before) - overlap :] == after[:overlap]
    if len(chunks) > 1:
        assert len(chunks[-1]) > overlap  # the last chunk adds something new


def test_chunks_are_slices_of_the_text(
    plugin_manager: PluginManager, chunker_manifest: Path
) -> None:
    text = "alpha  beta\n\tgamma — delta,  epsilon\n\nzeta"
    chunks = load(plugin_manager, chunker_manifest, size=3, overlap=1).transform(text)
    assert chunks == ["alpha  beta\n\tgamma", "gamma — delta,", "delta,  epsilon\n\nzeta"]
    position = 0
    for chunk in chunks:
        found = text.find(chunk, position)
        assert found >= position
        position = found + 1


def test_sentence_chunks(plugin_manager: PluginManager, chunker_manifest: Path) -> None:
    text = (
        'It costs 3.14 euros. "Is it cheap?" she asked! Nobody knew… '
        "Then a new paragraph without a full stop\n\n"
        "The end.)  Trailing words"
    )
    sentences = [
        "It costs 3.14 euros.",
        '"Is it cheap?"',
        "she asked!",
        "Nobody knew…",
        "Then a new paragraph without a full stop",
        "The end.)",
        "Trailing words",
    ]
    assert [text[a:b] for a, b in sentence_spans(text)] == sentences
    chunker = load(plugin_manager, chunker_manifest, mode="sentences", size=3, overlap=1)
    chunks = chunker.transform(text)
    assert chunks == [
        'It costs 3.14 euros. "Is it cheap?" she asked!',
        "she asked! Nobody knew… Then a new paragraph without a full stop",
        "Then a new paragraph without a full stop\n\nThe end.)  Trailing words",
    ]


def test_cjk_sentences_need_no_spaces() -> None:
    bang, question = "\uff01", "\uff1f"  # full-width ! and ?
    text = f"向量搜索很快。它使用嵌入{bang}真的吗{question}是的"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "向量搜索很快。",
        f"它使用嵌入{bang}",
        f"真的吗{question}",
        "是的",
    ]


def test_edge_cases(plugin_manager: PluginManager, chunker_manifest: Path) -> None:
    words = load(plugin_manager, chunker_manifest, size=4, overlap=1)
    assert words.transform("") == []
    assert words.transform(" \n\t ") == []
    assert words.transform("one") == ["one"]
    assert words.transform_batch(["a b", "", "c"]) == [["a b"], [], ["c"]]
    plugin_manager.unload("text-chunker")
    sentences = load(plugin_manager, chunker_manifest, mode="sentences", size=2, overlap=0)
    huge = " ".join(f"word{i}" for i in range(20_000))  # one sentence, no full stop
    assert sentences.transform(huge) == [huge]
    assert sentences.transform(huge + ". Short one.") == [huge + ". Short one."]


def test_one_huge_sentence_in_word_mode(
    plugin_manager: PluginManager, chunker_manifest: Path
) -> None:
    huge = " ".join(f"word{i}" for i in range(20_000)) + "."
    chunks = load(plugin_manager, chunker_manifest, size=128, overlap=16).transform(huge)
    assert len(chunks) == len(windows(20_000, 128, 16)) == 1 + -(-(20_000 - 128) // 112)
    assert chunks[0].split() == [f"word{i}" for i in range(128)]
    assert chunks[-1].endswith("word19999.")


def test_unicode_is_kept_intact(plugin_manager: PluginManager, chunker_manifest: Path) -> None:
    text = "emoji 👩\u200d💻 combining e\u0301 a\u0308 中文文本 עברית مرحبا 🇩🇪"
    chunks = load(plugin_manager, chunker_manifest, size=3, overlap=0).transform(text)
    assert " ".join(chunks) == text
    assert "👩\u200d💻" in chunks[0] and "e\u0301" in chunks[1]


def write_wordpiece_tokenizer(path: Path) -> Path:
    """A small BERT-style WordPiece tokenizer.json, built with the tokenizers package."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab = ["[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "play", "##ing", "."]
    model = tokenizers.models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]")
    tokenizer = tokenizers.Tokenizer(model)
    tokenizer.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    tokenizer.save(str(path))
    json.loads(path.read_text())  # it is a tokenizer.json
    return path


def test_wordpiece_chunks_count_model_tokens(
    plugin_manager: PluginManager, chunker_manifest: Path, tmp_path: Path
) -> None:
    path = write_wordpiece_tokenizer(tmp_path / "tokenizer.json")
    chunker = load(
        plugin_manager, chunker_manifest, mode="wordpiece", size=3, overlap=1,
        tokenizer_path=str(path),
    )  # fmt: skip
    # the cat sat on the mat [UNK] play ##ing . -> 10 tokens ("," is not in the vocabulary),
    # windows of 3 sharing 1; a window may end inside a word ("play" | "##ing")
    chunks = chunker.transform("The cat sat on the mat, playing.")
    assert chunks == ["The cat sat", "sat on the", "the mat,", ", playing", "ing."]


def test_wordpiece_needs_a_tokenizer(
    plugin_manager: PluginManager, chunker_manifest: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(PluginLoadError, match="tokenizer_path"):
        load(plugin_manager, chunker_manifest, mode="wordpiece", tokenizer_path=str(junk))
    try:
        import weaviate_ext_minilm_vectorizer  # noqa: F401
    except ImportError:  # without it, there is no default tokenizer.json
        with pytest.raises(PluginLoadError, match="tokenizer"):
            load(plugin_manager, chunker_manifest, mode="wordpiece")
    else:  # with it, all-MiniLM-L6-v2's
        chunker = load(plugin_manager, chunker_manifest, mode="wordpiece", size=4, overlap=0)
        assert chunker.transform("unbelievable tokenization") == ["unbelievable tokenization"]


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"mode": "paragraphs"}, "mode"),
        ({"size": 0}, "size"),
        ({"size": 4, "overlap": 4}, "overlap"),
        ({"overlap": -1}, "overlap"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, chunker_manifest: Path, config: dict[str, Any], key: str
) -> None:
    with pytest.raises(PluginLoadError, match=key):
        plugin_manager.load(chunker_manifest, config=config)


def test_wrong_input_types(plugin_manager: PluginManager, chunker_manifest: Path) -> None:
    chunker = load(plugin_manager, chunker_manifest)
    bad: Any = 42
    with pytest.raises(InvalidInput):
        chunker.transform(bad)
    with pytest.raises(InvalidInput, match=r"items\[1\]"):
        chunker.transform_batch(["fine", bad])
