"""The example plugins under ``examples/plugins/``: layout, build, conformance, behaviour."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weaviate_ext import (
    AuthenticationError,
    ConfigError,
    Identity,
    PluginLoadError,
    PluginManager,
)
from weaviate_ext.testing import check_plugin

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "plugins"

PYTHON_EXAMPLES = {
    "python-hash-vectorizer": "hash-embedder",
    "python-text-normalizer": "text-normalizer",
    "python-bm25-reranker": "bm25-lite",
    "python-extractive-generator": "extractive-summarizer",
    "python-file-storage": "file-store",
    "python-apikey-auth": "apikey-auth",
}
"""The python-runtime examples: directory -> plugin name."""

API_KEY = "wv-test-key-0123456789"
OTHER_KEY = "wv-admin-key-abcdef"
PEPPER = "pepper-Value-9f8e7d"


def manifest_of(directory: str) -> Path:
    return EXAMPLES / directory / "plugin.yaml"


def auth_config(pepper: str = "") -> dict[str, Any]:
    def digest(key: str) -> str:
        if pepper:
            return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()
        return hashlib.sha256(key.encode()).hexdigest()

    config: dict[str, Any] = {
        "keys": {
            "reader-key": {"sha256": digest(API_KEY), "roles": ["reader"]},
            "admin-key": {"sha256": digest(OTHER_KEY), "roles": ["admin", "reader"]},
        },
        "rules": [
            {"role": "reader", "resource": "collections/*", "action": "read", "allow": True},
            {"role": "reader", "resource": "collections/Secret*", "action": "*", "allow": False},
            {"role": "admin", "resource": "*", "action": "*", "allow": True},
        ],
    }
    if pepper:
        config["pepper"] = pepper
    return config


def example_config(directory: str, tmp_path: Path) -> dict[str, Any] | None:
    if directory == "python-file-storage":
        return {"path": str(tmp_path / "store")}
    if directory == "python-apikey-auth":
        return auth_config()
    return None


# -- layout and build ----------------------------------------------------------------------


def example_dirs() -> list[str]:
    return sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_every_python_example_exists() -> None:
    assert set(PYTHON_EXAMPLES) <= set(example_dirs())


@pytest.mark.parametrize("directory", example_dirs())
def test_example_layout(directory: str) -> None:
    base = EXAMPLES / directory
    assert (base / "plugin.yaml").is_file()
    assert (base / "src").is_dir()
    assert (base / "README.md").is_file()
    build = base / "build.sh"
    assert build.is_file()
    assert os.access(build, os.X_OK), f"{build} is not executable"


@pytest.mark.parametrize("directory", sorted(PYTHON_EXAMPLES))
def test_build_script_succeeds(directory: str) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        [str(EXAMPLES / directory / "build.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


@pytest.mark.parametrize("directory", sorted(PYTHON_EXAMPLES))
def test_build_script_fails_on_a_bad_manifest(directory: str, tmp_path: Path) -> None:
    copy = tmp_path / directory
    copy.mkdir()
    (copy / "src").mkdir()
    script = (EXAMPLES / directory / "build.sh").read_bytes()
    (copy / "build.sh").write_bytes(script)
    (copy / "build.sh").chmod(0o755)
    (copy / "plugin.yaml").write_text(
        manifest_of(directory).read_text().replace("type:", "tipe:", 1)
    )
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run([str(copy / "build.sh")], env=env, capture_output=True, timeout=120)
    assert done.returncode != 0


# -- loading and conformance ---------------------------------------------------------------


@pytest.mark.parametrize("directory", sorted(PYTHON_EXAMPLES))
def test_example_passes_conformance(directory: str, manager: PluginManager, tmp_path: Path) -> None:
    handle = manager.load(manifest_of(directory), config=example_config(directory, tmp_path))
    assert handle.name == PYTHON_EXAMPLES[directory]
    assert manager.manifest(handle.name).spec.runtime == "python"
    options: dict[str, Any] = {}
    if directory == "python-apikey-auth":
        options = {
            "valid_credentials": {"api_key": API_KEY},
            "invalid_credentials": {"api_key": "not-a-key"},
        }
    report = check_plugin(handle, **options)
    report.raise_for_failures()
    assert report.ok
    assert len(report) >= 5


def test_all_examples_load_with_load_directory(tmp_path: Path) -> None:
    with PluginManager(discover=False) as manager:
        for directory, name in PYTHON_EXAMPLES.items():
            config = example_config(directory, tmp_path)
            manager.load(manifest_of(directory), config=config)
            assert name in manager.names()
        assert len(manager.names()) == len(PYTHON_EXAMPLES)


# -- hash-embedder -------------------------------------------------------------------------


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_hash_embedder_related_texts_are_closer(manager: PluginManager) -> None:
    embedder = manager.load(manifest_of("python-hash-vectorizer"))
    cat, cats, money = embedder.vectorize_batch(
        [
            "The cat sat on the mat",
            "A cat was sitting on the mat",
            "Quarterly revenue grew by ten percent",
        ]
    )
    assert cosine(cat, cats) > 0.5
    assert abs(cosine(cat, money)) < 0.2
    assert cosine(cat, cats) > cosine(cat, money) + 0.3
    # word pieces count too: a typo stays close
    misspelled = embedder.vectorize_text("The cat sat on the matt")
    assert cosine(cat, misspelled) > cosine(cat, money)


def test_hash_embedder_is_stable_across_processes(manager: PluginManager) -> None:
    """BLAKE2b, not salted hash(): another interpreter gives the same vector."""
    embedder = manager.load(manifest_of("python-hash-vectorizer"))
    here = embedder.vectorize_text("stable hashing")
    code = (
        "import sys, numpy as np\n"
        "from weaviate_ext import PluginManager\n"
        "with PluginManager(discover=False) as m:\n"
        f"    h = m.load({str(manifest_of('python-hash-vectorizer'))!r})\n"
        "    sys.stdout.write(h.vectorize_text('stable hashing').tobytes().hex())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    there = np.frombuffer(bytes.fromhex(done.stdout), dtype=np.float32)
    assert np.array_equal(here, there)


def test_hash_embedder_output_properties(manager: PluginManager) -> None:
    embedder = manager.load(manifest_of("python-hash-vectorizer"))
    vector = embedder.vectorize_text("hello world")
    assert vector.dtype == np.float32
    assert vector.shape == (768,)
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, abs_tol=1e-5)
    # hello, world and their padded trigrams: at most 2 + 5 + 5 buckets are used
    assert 0 < np.count_nonzero(vector) <= 12
    assert not np.any(embedder.vectorize_text(""))  # no features: the zero vector
    # case-insensitive
    assert np.array_equal(vector, embedder.vectorize_text("HELLO World"))


def test_hash_embedder_refuses_mismatched_dimensions(manager: PluginManager) -> None:
    with pytest.raises(PluginLoadError, match=r"capabilities\.dimensions"):
        manager.load(manifest_of("python-hash-vectorizer"), config={"dimensions": 512})
    with pytest.raises(ConfigError, match="dimensions"):
        manager.load(manifest_of("python-hash-vectorizer"), config={"dimensions": "big"})


# -- text-normalizer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello\t\tWORLD \n", "hello world"),
        (
            "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff21\uff22\uff23",
            "fullwidth abc",
        ),
        ("\ufb01le", "file"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9"),
        ("a\x00b\x07c\x1bd\x7fe", "abcde"),
        ("no\u00a0break\u2003space", "no break space"),
        ("\u2460\u2461 \u00bd", "12 1\u20442"),
        ("Stra\u00dfe", "stra\u00dfe"),
        ("line one\r\nline two\u2028three", "line one line two three"),
        ("\U0001f469\u200d\U0001f4bb", "\U0001f469\u200d\U0001f4bb"),
        ("", ""),
        (" \t\n ", ""),
    ],
)
def test_normalizer_exact_outputs(text: str, expected: str, manager: PluginManager) -> None:
    normalizer = manager.load(manifest_of("python-text-normalizer"))
    assert normalizer.transform(text) == expected
    assert normalizer.transform_batch([text, text]) == [expected, expected]


def test_normalizer_lowercase_off(manager: PluginManager) -> None:
    normalizer = manager.load(manifest_of("python-text-normalizer"), config={"lowercase": False})
    assert normalizer.transform("  Hello \uff37orld\x00 ") == "Hello World"


def test_normalizer_in_a_pipeline(manager: PluginManager) -> None:
    manager.load(manifest_of("python-text-normalizer"))
    assert manager.pipeline("text-normalizer").run_batch(["A  B", "\ufb01"]) == ["a b", "fi"]


def test_normalizer_rejects_non_text(manager: PluginManager) -> None:
    from weaviate_ext import InvalidInput

    normalizer = manager.load(manifest_of("python-text-normalizer"))
    with pytest.raises(InvalidInput):
        normalizer.transform(42)


# -- bm25-lite -----------------------------------------------------------------------------


def test_bm25_document_with_query_terms_ranks_first(manager: PluginManager) -> None:
    bm25 = manager.load(manifest_of("python-bm25-reranker"))
    docs = [
        "How to cook pasta al dente",
        "The weather is sunny today",
        "Rust and Python plugins for a vector database",
        "Vector databases answer nearest neighbour queries over embeddings",
    ]
    # no stemming: "databases" is not "database"; doc 3 holds all three query terms
    ranked = bm25.rerank("nearest vector embeddings", docs)
    assert ranked[0].index == 3
    assert ranked[1].index == 2  # "vector" only
    assert ranked[0].document == docs[3]
    assert {r.index for r in ranked[2:]} == {0, 1}
    assert all(r.score == 0.0 for r in ranked[2:])


def test_bm25_matches_hand_computed_scores(manager: PluginManager) -> None:
    bm25 = manager.load(manifest_of("python-bm25-reranker"))
    docs = ["the cat sat", "cat cat dog runs fast", "dog"]
    # N = 3; "cat" and "dog" are each in 2 documents: idf = ln(1 + 1.5 / 2.5) = ln 1.6.
    # avgdl = (3 + 5 + 1) / 3 = 3; k1 = 1.5, b = 0.75, so k1 * (1 - b + b * |d| / 3) is
    # 1.5 for |d| = 3, 2.25 for |d| = 5 and 0.75 for |d| = 1.
    idf = math.log(1.6)
    expected = {
        0: idf * (1 * 2.5 / (1 + 1.5)),  # cat once
        1: idf * (2 * 2.5 / (2 + 2.25)) + idf * (1 * 2.5 / (1 + 2.25)),  # cat twice, dog
        2: idf * (1 * 2.5 / (1 + 0.75)),  # dog once, short document
    }
    ranked = bm25.rerank("cat dog", docs)
    assert [r.index for r in ranked] == [1, 2, 0]
    for r in ranked:
        assert r.score == pytest.approx(expected[r.index], rel=1e-9)


def test_bm25_parameters_change_scores(manager: PluginManager, tmp_path: Path) -> None:
    docs = ["cat", "cat cat cat cat cat cat cat cat dog"]
    bm25 = manager.load(manifest_of("python-bm25-reranker"), config={"k1": 1.2, "b": 0.0})
    no_length = {r.index: r.score for r in bm25.rerank("cat", docs)}
    assert no_length[1] > no_length[0]  # b = 0: term frequency wins
    with (
        PluginManager(discover=False) as other,
        pytest.raises(PluginLoadError, match="b must be between 0 and 1"),
    ):
        other.load(manifest_of("python-bm25-reranker"), config={"b": 1.5})


# -- extractive-summarizer -----------------------------------------------------------------

ARTICLE = (
    "Summarize: Vector search compares embeddings to find similar documents. "
    "The cafeteria serves lunch at noon. "
    "Embeddings make vector search fast and vector search scales well. "
    "Parking is free on weekends."
)


def test_summarizer_picks_the_expected_sentences(manager: PluginManager) -> None:
    summarizer = manager.load(manifest_of("python-extractive-generator"))
    # vector and search appear 3 times, embeddings twice: the two sentences about them
    # win, in their original order; the instruction prefix is dropped.
    assert summarizer.generate(ARTICLE) == (
        "Vector search compares embeddings to find similar documents. "
        "Embeddings make vector search fast and vector search scales well."
    )


def test_summarizer_sentences_config_and_max_tokens(manager: PluginManager) -> None:
    summarizer = manager.load(manifest_of("python-extractive-generator"), config={"sentences": 1})
    assert summarizer.generate(ARTICLE) == (
        "Embeddings make vector search fast and vector search scales well."
    )
    assert summarizer.generate(ARTICLE, max_tokens=3) == "Embeddings make vector"
    assert list(summarizer.generate_stream(ARTICLE, max_tokens=3)) == [
        "Embeddings",
        " make",
        " vector",
    ]


def test_summarizer_streams_word_by_word(manager: PluginManager) -> None:
    summarizer = manager.load(manifest_of("python-extractive-generator"))
    chunks = list(summarizer.generate_stream(ARTICLE))
    assert chunks[:3] == ["Vector", " search", " compares"]
    assert "".join(chunks) == summarizer.generate(ARTICLE)
    assert summarizer.generate("") == ""
    assert list(summarizer.generate_stream("")) == []
    assert summarizer.generate("Only one sentence here.") == "Only one sentence here."


# -- file-store ----------------------------------------------------------------------------


def test_file_store_keys_cannot_escape(manager: PluginManager, tmp_path: Path) -> None:
    directory = tmp_path / "inner" / "store"
    store = manager.load(manifest_of("python-file-storage"), config={"path": str(directory)})
    keys = ["../escape", "../../escape", "/etc/passwd-copy", "a/../../b", "..", ".", "x/y"]
    for key in keys:
        store.store(key, key.encode())
    for key in keys:
        assert store.retrieve(key) == key.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inner"]
    assert sorted(p.name for p in (tmp_path / "inner").iterdir()) == ["store"]
    files = list(directory.iterdir())
    assert len(files) == len(keys)
    assert all(f.is_file() and f.parent == directory for f in files)
    assert not any(f.name.startswith(".") for f in files)  # no temp file left behind


def test_file_store_survives_a_new_manager(tmp_path: Path) -> None:
    config = {"path": str(tmp_path / "store")}
    payload = os.urandom(4096)
    with PluginManager(discover=False) as first:
        first.load(manifest_of("python-file-storage"), config=config).store("k/é", payload)
    with PluginManager(discover=False) as second:
        store = second.load(manifest_of("python-file-storage"), config=config)
        assert store.retrieve("k/é") == payload
        assert store.delete("k/é") is True
        assert store.retrieve("k/é") is None


def test_file_store_requires_a_path(manager: PluginManager) -> None:
    with pytest.raises(ConfigError, match="path"):
        manager.load(manifest_of("python-file-storage"))


def test_file_store_removes_stale_temp_files(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    directory.mkdir()
    (directory / ".tmp-crashed").write_bytes(b"half a write")
    with PluginManager(discover=False) as manager:
        manager.load(manifest_of("python-file-storage"), config={"path": str(directory)})
    assert not (directory / ".tmp-crashed").exists()


# -- apikey-auth ---------------------------------------------------------------------------


def test_auth_identity_and_wrong_key(manager: PluginManager) -> None:
    auth = manager.load(manifest_of("python-apikey-auth"), config=auth_config())
    identity = manager.authenticate({"api_key": API_KEY})
    assert identity is not None
    assert identity.subject == "reader-key"
    assert identity.roles == ("reader",)
    assert identity.plugin == "apikey-auth"
    assert auth.authenticate({"authorization": "Bearer x"}) is None
    with pytest.raises(AuthenticationError) as caught:
        manager.authenticate({"api_key": "wrong-key"})
    assert "wrong-key" not in str(caught.value)
    with pytest.raises(AuthenticationError):
        auth.authenticate({"api_key": API_KEY + "x"})


def test_auth_deny_beats_allow(manager: PluginManager) -> None:
    manager.load(manifest_of("python-apikey-auth"), config=auth_config())
    reader = manager.authenticate({"api_key": API_KEY})
    admin = manager.authenticate({"api_key": OTHER_KEY})
    assert reader is not None and admin is not None
    assert manager.authorize(reader, "collections/Article", "read") is True
    assert manager.authorize(reader, "collections/Article", "delete") is False  # no allow
    # allowed by collections/* read, denied by collections/Secret* *: the deny wins
    assert manager.authorize(reader, "collections/SecretPlans", "read") is False
    # admin also has the reader role, so the reader deny applies to it as well
    assert manager.authorize(admin, "collections/SecretPlans", "read") is False
    assert manager.authorize(admin, "schema", "delete") is True
    stranger = Identity("someone", roles=["guest"])
    assert manager.get_auth("apikey-auth").authorize(stranger, "schema", "read") is None
    assert manager.authorize(stranger, "schema", "read") is False


def test_auth_pepper_is_secret(manager: PluginManager, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    auth = manager.load(manifest_of("python-apikey-auth"), config=auth_config(PEPPER))
    assert manager.authenticate({"api_key": API_KEY}) is not None
    config = manager.config_of("apikey-auth")
    assert config["pepper"].reveal() == PEPPER
    for text in (repr(config), str(config), repr(dict(config)), repr(auth), repr(manager)):
        assert PEPPER not in text
    assert PEPPER not in caplog.text
    # without the pepper the same digests do not match
    with PluginManager(discover=False) as other:
        config_without = auth_config(PEPPER)
        del config_without["pepper"]
        other.load(manifest_of("python-apikey-auth"), config=config_without)
        with pytest.raises(AuthenticationError):
            other.authenticate({"api_key": API_KEY})


def test_auth_refuses_a_bad_key_table(manager: PluginManager) -> None:
    bad = {"keys": {"k": {"sha256": "not-hex", "roles": []}}}
    with pytest.raises(PluginLoadError, match=r"keys\.k\.sha256"):
        manager.load(manifest_of("python-apikey-auth"), config=bad)


def test_readmes_name_their_plugin() -> None:
    for directory, name in PYTHON_EXAMPLES.items():
        text = (EXAMPLES / directory / "README.md").read_text()
        assert name in text
        assert "plugin.yaml" in text
