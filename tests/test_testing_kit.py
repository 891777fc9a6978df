"""The test kit: the conformance suite catches broken plugins, and the pytest fixtures work.

Broken plugins are plain objects defined here and served by a test bridge for the
private runtime ``testkit``, so each loads through the real manager and handles.
"""

from __future__ import annotations

import itertools
import random
import shutil
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weaviate_ext import (
    AuthenticationError,
    Identity,
    Manifest,
    PluginConfig,
    PluginManager,
    hookimpl,
)
from weaviate_ext.manifest import parse_manifest
from weaviate_ext.testing import (
    CheckResult,
    ConformanceReport,
    CrashDurabilityResult,
    CrashRound,
    check_auth,
    check_crash_durability,
    check_generator,
    check_plugin,
    check_reopen_durability,
    check_reranker,
    check_storage,
    check_transformer,
    check_vectorizer,
)
from weaviate_ext.testing.durability import (
    expected_state,
    is_whole_record,
    key_of,
    plugin_target,
    record,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "plugins"
DIMS = 8


class TestBridge:
    """Serves the objects of :attr:`objects` by manifest name, for ``runtime: testkit``."""

    __test__ = False

    def __init__(self) -> None:
        self.objects: dict[str, object] = {}

    @hookimpl
    def weaviate_ext_make_plugin(self, manifest: Manifest, config: PluginConfig) -> object | None:
        if manifest.spec.runtime != "testkit":
            return None
        return self.objects[manifest.name]


@pytest.fixture
def bridge() -> TestBridge:
    return TestBridge()


@pytest.fixture
def manager(bridge: TestBridge) -> Iterator[PluginManager]:
    with PluginManager(discover=False, bridges=[bridge]) as m:
        yield m


def load(
    manager: PluginManager,
    bridge: TestBridge,
    obj: object,
    plugin_type: str,
    capabilities: str = "",
    name: str = "under-test",
) -> Any:
    """Load ``obj`` as plugin ``name`` of ``plugin_type`` through the test bridge."""
    text = textwrap.dedent(
        f"""\
        apiVersion: weaviate.io/v1
        kind: Plugin
        metadata:
          name: {name}
          version: 1.0.0
        spec:
          type: {plugin_type}
          runtime: testkit
          capabilities: {{{capabilities}}}
        """
    )
    bridge.objects[name] = obj
    return manager.load_manifest(parse_manifest(text))


def failed(report: ConformanceReport) -> set[str]:
    return {r.name for r in report.failures}


# -- vectorizers ---------------------------------------------------------------------------


def unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).astype(np.float32)


def text_vector(text: str) -> np.ndarray:
    """A deterministic, normalised toy embedding of ``text``."""
    vector = np.zeros(DIMS, dtype=np.float64)
    for i, byte in enumerate(text.encode("utf-8")):
        vector[(byte + i) % DIMS] += 1.0
    vector[0] += 1.0
    return unit(vector)


class GoodVectorizer:
    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        return text_vector(text)

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([text_vector(t) for t in texts])


class WrongDimsOnUnicode(GoodVectorizer):
    """Declares 8 dimensions but returns 4 for text that is not ASCII."""

    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        vector = text_vector(text)
        return vector if text.isascii() else vector[:4]


class BatchDiffers(GoodVectorizer):
    """Batch rows are shifted by one text: a classic off-by-one."""

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str]) -> np.ndarray:
        shifted = [*texts[1:], texts[0]] if len(texts) > 1 else list(texts)
        return np.stack([text_vector(t) for t in shifted])


class RandomVectorizer:
    """Random unit vectors, although its manifest says ``deterministic: true``."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng()

    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        return unit(self.rng.standard_normal(DIMS))


class UnnormalizedVectorizer(GoodVectorizer):
    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        return text_vector(text) * 3.0

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([text_vector(t) * 3.0 for t in texts])


class CrashesOnLongText(GoodVectorizer):
    @hookimpl
    def vectorize_text(self, text: str) -> np.ndarray:
        if len(text) > 10_000:
            raise MemoryError("text too long")
        return text_vector(text)


VECTORIZER_CAPS = f"dimensions: {DIMS}, maxBatchSize: 4, deterministic: true, normalized: true"


def test_good_vectorizer_passes(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, GoodVectorizer(), "vectorizer", VECTORIZER_CAPS)
    report = check_vectorizer(handle)
    assert report.ok, str(report)
    report.raise_for_failures()
    assert "batch larger than maxBatchSize" in report.names
    assert report.result("deterministic").skipped is False


def test_wrong_dimensions_fail(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, WrongDimsOnUnicode(), "vectorizer", VECTORIZER_CAPS)
    report = check_plugin(handle)
    assert not report.ok
    assert "unicode text" in failed(report)
    assert "4 dimensions" in report.result("unicode text").message


def test_batch_differing_from_singles_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, BatchDiffers(), "vectorizer", VECTORIZER_CAPS)
    report = check_vectorizer(handle)
    assert {"batch equals singles", "batch larger than maxBatchSize"} <= failed(report)
    assert "differ" in report.result("batch equals singles").message


def test_nondeterministic_vectorizer_declared_deterministic_fails(
    manager: PluginManager, bridge: TestBridge
) -> None:
    handle = load(manager, bridge, RandomVectorizer(), "vectorizer", VECTORIZER_CAPS)
    report = check_vectorizer(handle)
    assert "deterministic" in failed(report)
    assert "normalized" not in failed(report)


def test_nondeterministic_vectorizer_not_declared_skips_the_check(
    manager: PluginManager, bridge: TestBridge
) -> None:
    caps = f"dimensions: {DIMS}, normalized: true"
    handle = load(manager, bridge, RandomVectorizer(), "vectorizer", caps)
    report = check_vectorizer(handle)
    assert report.result("deterministic").skipped
    assert report.result("deterministic").passed
    assert "batch equals singles" in failed(report)  # random rows never match


def test_unnormalized_vectorizer_declared_normalized_fails(
    manager: PluginManager, bridge: TestBridge
) -> None:
    handle = load(manager, bridge, UnnormalizedVectorizer(), "vectorizer", VECTORIZER_CAPS)
    assert failed(check_vectorizer(handle)) == {"normalized"}


def test_crash_on_long_text_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, CrashesOnLongText(), "vectorizer", VECTORIZER_CAPS)
    report = check_vectorizer(handle)
    assert failed(report) == {"very long text"}
    assert "raised" in report.result("very long text").message


def test_undeclared_dimensions_fail(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, GoodVectorizer(), "vectorizer", "")
    report = check_vectorizer(handle)
    assert failed(report) == {"dimensions declared", "empty batch is (0, dims)"}
    assert "without capabilities.dimensions" in report.result("empty batch is (0, dims)").message


# -- rerankers -----------------------------------------------------------------------------


class DropsLastIndex:
    """Scores every document but the last one (when there is more than one)."""

    @hookimpl
    def rerank(self, query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
        count = max(1, len(documents) - 1)
        return [(i, 1.0 / (i + 1)) for i in range(count)]


class OverlapReranker:
    @hookimpl
    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        words = set(query.lower().split())
        return [float(len(words & set(d.lower().split()))) for d in documents]


def test_reranker_dropping_an_index_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, DropsLastIndex(), "reranker")
    report = check_reranker(handle)
    assert "every index once" in failed(report)
    assert "single document" not in failed(report)


def test_good_reranker_passes(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, OverlapReranker(), "reranker", "deterministic: true")
    report = check_plugin(handle)
    assert report.ok, str(report)


# -- storage -------------------------------------------------------------------------------


class DictStore:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[key] = data

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(key)

    @hookimpl
    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None


class TruncatingStore(DictStore):
    """Loses everything past 64 KiB."""

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[key] = data[: 64 * 1024]


class SanitizingStore(DictStore):
    """Maps '/' to '_' in keys, so 'a/b' and 'a_b' collide."""

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[key.replace("/", "_")] = data

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(key.replace("/", "_"))

    @hookimpl
    def delete(self, key: str) -> bool:
        return self.data.pop(key.replace("/", "_"), None) is not None


class AlwaysDeletes(DictStore):
    @hookimpl
    def delete(self, key: str) -> bool:
        self.data.pop(key, None)
        return True


class EmptyIsMissing(DictStore):
    """Returns None for an empty value: b"" is lost."""

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(key) or None


def test_good_store_passes_and_cleans_up(manager: PluginManager, bridge: TestBridge) -> None:
    store = DictStore()
    report = check_storage(load(manager, bridge, store, "storage"))
    assert report.ok, str(report)
    assert store.data == {}


@pytest.mark.parametrize(
    ("store", "failing"),
    [
        (TruncatingStore(), {"round trip"}),
        (SanitizingStore(), {"unicode and path-like keys"}),
        (AlwaysDeletes(), {"delete returns True then False"}),
        (EmptyIsMissing(), {"round trip"}),
    ],
    ids=["truncates", "collides", "always-deletes", "loses-empty"],
)
def test_storage_that_loses_data_fails(
    store: DictStore, failing: set[str], manager: PluginManager, bridge: TestBridge
) -> None:
    report = check_storage(load(manager, bridge, store, "storage"))
    assert failed(report) == failing, str(report)


class NulTruncatingStore(DictStore):
    """Keys end at the first NUL, like a C string: 'a\\x00b' and 'a' collide."""

    @staticmethod
    def cut(key: str) -> str:
        return key.split("\x00", 1)[0]

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[self.cut(key)] = data

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(self.cut(key))

    @hookimpl
    def delete(self, key: str) -> bool:
        return self.data.pop(self.cut(key), None) is not None


class StrictUtf8Store(DictStore):
    """Encodes keys as strict UTF-8: a lone surrogate raises."""

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[key.encode("utf-8").decode()] = data


class LongKeysCutStore(DictStore):
    """Keeps the first 1,000 characters of a key, like a fixed-size column."""

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        self.data[key[:1000]] = data

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(key[:1000])

    @hookimpl
    def delete(self, key: str) -> bool:
        return self.data.pop(key[:1000], None) is not None


class RacyStore(DictStore):
    """Copies the whole dict on every write: concurrent writes lose each other."""

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        copy = dict(self.data)
        time.sleep(0.001)
        copy[key] = data
        self.data = copy


def test_bad_input_check_covers_every_refusal(manager: PluginManager, bridge: TestBridge) -> None:
    store = DictStore()
    report = check_storage(load(manager, bridge, store, "storage"))
    assert report.result("wrong input type raises InvalidInput").passed
    assert store.data == {}


def test_odd_keys_and_threads_run_only_when_asked(
    manager: PluginManager, bridge: TestBridge
) -> None:
    store = DictStore()
    handle = load(manager, bridge, store, "storage")
    plain = check_storage(handle)
    assert len(plain) == 6
    assert not [name for name in plain.names if "keys" in name and "NUL" in name]
    report = check_plugin(handle, odd_keys=True, threads=4)
    assert report.ok, str(report)
    assert report.names[6:] == [
        "NUL, surrogate, path and 10,000-character keys",
        "concurrent calls from many threads",
    ]
    assert "4 threads x 40 keys" in report.result("concurrent calls from many threads").message
    assert store.data == {}  # every key deleted afterwards
    with pytest.raises(ValueError, match="threads"):
        check_storage(handle, threads=-1)


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (NulTruncatingStore(), "nul"),
        (StrictUtf8Store(), "UnicodeEncodeError"),
        (LongKeysCutStore(), "10,000 characters"),
    ],
    ids=["truncates-at-nul", "refuses-surrogates", "cuts-long-keys"],
)
def test_store_mangling_odd_keys_fails(
    store: DictStore, message: str, manager: PluginManager, bridge: TestBridge
) -> None:
    handle = load(manager, bridge, store, "storage")
    assert check_storage(handle).ok  # the default checks do not see it
    report = check_storage(handle, odd_keys=True)
    assert failed(report) == {"NUL, surrogate, path and 10,000-character keys"}, str(report)
    assert message in report.failures[0].message


def test_store_losing_concurrent_writes_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, RacyStore(), "storage")
    report = check_storage(handle, threads=8)
    assert failed(report) == {"concurrent calls from many threads"}, str(report)


# -- storage durability --------------------------------------------------------------------

FILE_STORES = '''\
"""File stores for the durability check: one durable, three that are not."""

import os
import time
from pathlib import Path

from weaviate_ext import hookimpl


class FileStore:
    """One file per key (the hex of its UTF-8 bytes); a write is a rename."""

    def __init__(self):
        self.root = None

    @hookimpl
    def plugin_setup(self, config):
        self.root = Path(config.get_string("path"))
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key):
        return self.root / key.encode("utf-8", "surrogatepass").hex()

    @hookimpl
    def store(self, key, data):
        temp = self.path_of(key).with_suffix(".tmp")
        temp.write_bytes(data)
        os.replace(temp, self.path_of(key))

    @hookimpl
    def retrieve(self, key):
        try:
            return self.path_of(key).read_bytes()
        except FileNotFoundError:
            return None

    @hookimpl
    def delete(self, key):
        try:
            self.path_of(key).unlink()
        except FileNotFoundError:
            return False
        return True


class AcksBeforeWriting(FileStore):
    """Acknowledges a store at once and writes it later, 100 at a time."""

    def __init__(self):
        super().__init__()
        self.pending = {}

    @hookimpl
    def store(self, key, data):
        self.pending[key] = data
        if len(self.pending) >= 100:
            for pending_key, value in self.pending.items():
                FileStore.store(self, pending_key, value)
            self.pending.clear()

    @hookimpl
    def retrieve(self, key):
        if key in self.pending:
            return self.pending[key]
        return FileStore.retrieve(self, key)

    @hookimpl
    def delete(self, key):
        return self.pending.pop(key, None) is not None or FileStore.delete(self, key)


class TornWrites(FileStore):
    """Writes a value in place in two steps, 0.2 s apart."""

    @hookimpl
    def store(self, key, data):
        with open(self.path_of(key), "wb") as out:
            out.write(data[: len(data) // 2])
            out.flush()
            time.sleep(0.2)
            out.write(data[len(data) // 2 :])


class Hangs(FileStore):
    """Never returns from a store."""

    @hookimpl
    def store(self, key, data):
        time.sleep(3600)
'''


def file_store_plugin(directory: Path, kind: str = "FileStore") -> Path:
    """A Python storage plugin: class ``kind`` of :data:`FILE_STORES`, in ``directory``."""
    directory.mkdir(parents=True)
    (directory / "file_stores.py").write_text(FILE_STORES)
    manifest = directory / "plugin.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: weaviate.io/v1
            kind: Plugin
            metadata: {{name: {kind.lower()}, version: 0.1.0}}
            spec:
              type: storage
              runtime: python
              entrypoint: "file_stores:{kind}"
              config:
                path: {{type: string, required: true}}
            """
        )
    )
    return manifest


def file_entries(root: Path) -> dict[str, bytes]:
    """The raw entries of a ``FileStore`` directory: key -> file contents."""
    return {
        bytes.fromhex(path.name).decode("utf-8", "surrogatepass"): path.read_bytes()
        for path in root.iterdir()
        if path.suffix != ".tmp"
    }


QUICK: dict[str, Any] = {"first_acks": 5, "acks": (3, 5)}
"""Short rounds for these tests; the defaults (25, then 4 to 15 acks) are for plugins."""


def test_durable_store_passes_the_crash_check(tmp_path: Path) -> None:
    manifest = file_store_plugin(tmp_path / "plugin")
    root = tmp_path / "data"
    result = check_crash_durability(
        manifest,
        {"path": str(root)},
        tmp_path / "work",
        rounds=3,
        seed=11,
        raw_entries=lambda: file_entries(root),
        **QUICK,
    )
    assert isinstance(result, CrashDurabilityResult)
    assert result.seed == 11
    assert result.plugin == str(manifest)
    assert len(result.rounds) == 3
    assert result.rounds[0] == CrashRound(0, result.rounds[0].last_acked)
    assert result.rounds[0].acknowledged >= 5
    for before, after in itertools.pairwise(result.rounds):
        assert after.start == before.last_acked + 1  # each round redoes the one in flight
    assert result.operations == result.rounds[-1].last_acked + 1
    assert "3 writers killed with SIGKILL" in str(result)
    assert file_entries(root)  # the workload wrote through the plugin
    assert (tmp_path / "work" / "crash-writer.json").stat().st_mode & 0o077 == 0


def test_relative_paths_mean_the_same_to_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer runs in the caller's directory: a relative store path and work_dir
    name the same files for both."""
    file_store_plugin(tmp_path / "plugin")
    monkeypatch.chdir(tmp_path)
    result = check_crash_durability(
        "plugin/plugin.yaml",
        {"path": "data"},
        "work",
        rounds=1,
        raw_entries=lambda: file_entries(Path("data")),
        **QUICK,
    )
    assert result.operations >= 5
    assert key_of(0) in file_entries(tmp_path / "data")
    assert (tmp_path / "work" / "crash-writer.log").exists()


def test_example_file_store_passes_the_crash_check(tmp_path: Path) -> None:
    """A directory stands for its plugin.yaml; the example writes with atomic renames."""
    result = check_crash_durability(
        EXAMPLES / "python-file-storage", {"path": str(tmp_path / "data")}, tmp_path, rounds=2
    )
    assert result.operations >= 25


def test_store_acknowledging_before_writing_fails_the_crash_check(tmp_path: Path) -> None:
    manifest = file_store_plugin(tmp_path / "plugin", "AcksBeforeWriting")
    with pytest.raises(AssertionError) as info:
        check_crash_durability(
            manifest, {"path": str(tmp_path / "data")}, tmp_path, rounds=2, seed=5, **QUICK
        )
    message = str(info.value)
    assert "round 0 (seed 5)" in message
    assert "records/000000/ключ: acknowledged state 1, got nothing" in message


def test_store_writing_in_two_steps_fails_the_crash_check(tmp_path: Path) -> None:
    """The kill lands in the middle of a write (with seed 17, half-way through an
    operation's duration): the value is torn, and the plugin hands it back."""
    manifest = file_store_plugin(tmp_path / "plugin", "TornWrites")
    with pytest.raises(AssertionError, match=r"seed 17\): records/\d+/ключ: .* bytes that do not"):
        check_crash_durability(
            manifest, {"path": str(tmp_path / "data")}, tmp_path, rounds=3, seed=17, **QUICK
        )


def _with_stray_key(entries: dict[str, bytes]) -> dict[str, bytes]:
    return {**entries, "stray": b"x"}


def _without_the_first_key(entries: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in entries.items() if k != "records/000000/ключ"}


def _torn(entries: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v[:-1] for k, v in entries.items()}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_with_stray_key, r"never wrote are stored: \['stray'\]"),
        (_without_the_first_key, r"missing below the plugin: \['records/000000/ключ'\]"),
        (_torn, r"records/000000/ключ: partial record of \d+ bytes below the plugin"),
    ],
    ids=["unknown-key", "missing-key", "torn-value"],
)
def test_raw_entries_are_checked(
    tmp_path: Path, damage: Callable[[dict[str, bytes]], dict[str, bytes]], message: str
) -> None:
    """What the engine holds below the plugin is checked too: here the test damages the
    raw view of a durable store, as a plugin hiding torn values would look."""
    manifest = file_store_plugin(tmp_path / "plugin")
    root = tmp_path / "data"
    with pytest.raises(AssertionError, match=message):
        check_crash_durability(
            manifest,
            {"path": str(root)},
            tmp_path,
            rounds=1,
            raw_entries=lambda: damage(file_entries(root)),
            **QUICK,
        )


def test_raw_entries_may_fail_the_round_itself(tmp_path: Path) -> None:
    def corrupt() -> dict[str, bytes]:
        raise AssertionError("integrity_check: page 3 is never used")

    manifest = file_store_plugin(tmp_path / "plugin")
    with pytest.raises(AssertionError, match=r"round 0 \(seed 3\): integrity_check: page 3"):
        check_crash_durability(
            manifest, {"path": str(tmp_path / "d")}, tmp_path, seed=3, raw_entries=corrupt, **QUICK
        )


def test_writer_that_cannot_load_fails_with_its_stderr(tmp_path: Path) -> None:
    manifest = file_store_plugin(tmp_path / "plugin")
    with pytest.raises(AssertionError, match=r"(?s)ended with 1, not SIGKILL.*ConfigError"):
        check_crash_durability(manifest, {}, tmp_path / "work", rounds=1, **QUICK)
    with pytest.raises(AssertionError, match=r"(?s)not SIGKILL.*no-such-storage-plugin"):
        check_crash_durability("no-such-storage-plugin", {}, tmp_path / "work", rounds=1)


def test_writer_that_hangs_is_stopped(tmp_path: Path) -> None:
    manifest = file_store_plugin(tmp_path / "plugin", "Hangs")
    with pytest.raises(AssertionError, match="acknowledged 0 of 5 operations within 2.0 s"):
        check_crash_durability(
            manifest, {"path": str(tmp_path / "d")}, tmp_path, rounds=1, timeout=2.0, **QUICK
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds": 0}, "rounds must be at least 1"),
        ({"first_acks": 2}, "at least 3"),
        ({"acks": (2, 5)}, "at least 3"),
        ({"acks": (6, 5)}, "low <= high"),
    ],
)
def test_crash_check_refuses_bad_arguments(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_crash_durability("sqlite-storage", {}, tmp_path, **kwargs)


def test_plugin_target_tells_names_from_manifests(tmp_path: Path) -> None:
    assert plugin_target("sqlite-storage") == {"name": "sqlite-storage"}
    assert plugin_target("plugin.yaml") == {"manifest": str(Path.cwd() / "plugin.yaml")}
    assert plugin_target("plugins/x.yml") == {"manifest": str(Path.cwd() / "plugins/x.yml")}
    assert plugin_target(Path("relative")) == {"manifest": str(Path.cwd() / "relative")}
    assert plugin_target(tmp_path) == {"manifest": str(tmp_path / "plugin.yaml")}
    with pytest.raises(ValueError):
        plugin_target("")


def test_crash_workload_records_check_themselves() -> None:
    value = record("records/000001/ключ", 1)
    assert is_whole_record(value)
    assert value != record("records/000001/ключ", 2)
    assert not is_whole_record(value[:-1])
    assert not is_whole_record(value + b"\x00")
    flipped = bytearray(value)
    flipped[-1] ^= 1
    assert not is_whole_record(bytes(flipped))
    assert not is_whole_record(b"")
    assert expected_state(-1) == {}
    state = expected_state(19)
    assert state[key_of(2)] == 2  # op 7 overwrote it
    assert key_of(6) not in state  # op 9 deleted it
    assert state[key_of(12)] == 2  # op 17 overwrote it
    assert key_of(16) not in state  # op 19 deleted it
    assert len(state) == 14


def test_reopen_check(tmp_path: Path) -> None:
    check_reopen_durability(file_store_plugin(tmp_path / "plugin"), {"path": str(tmp_path / "d")})
    with pytest.raises(AssertionError, match=r"after reopening, 'a' is None, not b'\\x00one'"):
        check_reopen_durability(
            file_store_plugin(tmp_path / "lazy", "AcksBeforeWriting"),
            {"path": str(tmp_path / "lazy-data")},
        )


# -- transformers and generators -----------------------------------------------------------


class CountingTransformer:
    """transform_batch numbers items by batch position, transform does not."""

    @hookimpl
    def transform(self, data: Any) -> str:
        return f"0:{data}"

    @hookimpl
    def transform_batch(self, items: Sequence[Any]) -> list[str]:
        return [f"{i}:{item}" for i, item in enumerate(items)]


class UpperTransformer:
    @hookimpl
    def transform(self, data: Any) -> str:
        return str(data).upper()


class StreamDiffers:
    """Declared deterministic, but the stream and the whole answer disagree."""

    @hookimpl
    def generate(self, prompt: str, options: Mapping[str, Any]) -> str:
        return "whole answer"

    @hookimpl
    def generate_stream(self, prompt: str, options: Mapping[str, Any]) -> Iterator[str]:
        yield "streamed "
        yield "answer"


class EchoGenerator:
    @hookimpl
    def generate_stream(self, prompt: str, options: Mapping[str, Any]) -> Iterator[str]:
        for word in prompt.split(" "):
            yield word + " "


def test_transformer_batch_differing_fails(manager: PluginManager, bridge: TestBridge) -> None:
    report = check_transformer(load(manager, bridge, CountingTransformer(), "transformer"))
    assert "batch equals singles" in failed(report)


def test_good_transformer_passes(manager: PluginManager, bridge: TestBridge) -> None:
    report = check_plugin(load(manager, bridge, UpperTransformer(), "transformer"))
    assert report.ok, str(report)


def test_generator_stream_differing_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, StreamDiffers(), "generator", "deterministic: true")
    report = check_generator(handle)
    assert failed(report) == {"stream concatenation"}


def test_generator_not_declared_deterministic_only_needs_text(
    manager: PluginManager, bridge: TestBridge
) -> None:
    report = check_generator(load(manager, bridge, StreamDiffers(), "generator"))
    assert report.ok, str(report)
    report = check_generator(load(manager, bridge, EchoGenerator(), "generator", name="echo"))
    assert report.ok, str(report)


# -- auth ----------------------------------------------------------------------------------


class TokenAuth:
    @hookimpl
    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        token = credentials.get("token")
        if token is None:
            return None
        if token != "good":
            raise AuthenticationError("bad token")
        return Identity("alice", roles=["reader"])

    @hookimpl
    def authorize(self, identity: Identity, resource: str, action: str) -> bool | None:
        return True if action == "read" else None


class AcceptsAnything:
    @hookimpl
    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        return Identity("anyone")


class AcceptsWrongTokens(TokenAuth):
    @hookimpl
    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        return Identity("alice") if "token" in credentials else None


def test_auth_checks(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, TokenAuth(), "auth")
    report = check_auth(handle, {"token": "good"}, {"token": "bad"})
    assert report.ok, str(report)
    assert not any(r.skipped for r in report)
    without = check_auth(handle)
    assert without.ok
    assert without.result("valid credentials give an identity").skipped


def test_auth_that_accepts_anything_fails(manager: PluginManager, bridge: TestBridge) -> None:
    report = check_plugin(load(manager, bridge, AcceptsAnything(), "auth"))
    assert {"unknown credentials kind gives None", "empty credentials give None"} <= failed(report)


def test_auth_accepting_wrong_credentials_fails(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, AcceptsWrongTokens(), "auth")
    report = check_plugin(
        handle, valid_credentials={"token": "good"}, invalid_credentials={"token": "bad"}
    )
    assert failed(report) == {"invalid credentials raise AuthenticationError"}


# -- the report API ------------------------------------------------------------------------


def test_report_api() -> None:
    report = ConformanceReport("demo", "vectorizer")
    report.run("passes", lambda: None)
    report.run("passes with detail", lambda: "768 dims")
    report.run("raises", lambda: 1 / 0)  # type: ignore[func-returns-value]
    report.skip("skipped", "not declared")
    assert report.names == ["passes", "passes with detail", "raises", "skipped"]
    assert not report.ok
    assert not report
    assert report.failures == [
        CheckResult("raises", False, "raised ZeroDivisionError: division by zero")
    ]
    text = str(report)
    assert "vectorizer 'demo': 3 passed, 1 failed" in text
    assert "PASS passes with detail: 768 dims" in text
    assert "FAIL raises" in text
    assert "SKIP skipped: not declared" in text
    with pytest.raises(AssertionError, match=r"failed 1 of 4 .*\n  raises: raised ZeroDivision"):
        report.raise_for_failures()
    with pytest.raises(KeyError):
        report.result("unknown")


def test_check_functions_refuse_other_types(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, UpperTransformer(), "transformer")
    with pytest.raises(TypeError, match="VectorizerHandle"):
        check_vectorizer(handle)
    with pytest.raises(TypeError):
        check_plugin(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        check_plugin(handle, valid_credentials={})


def test_checks_do_not_share_state_between_runs(manager: PluginManager, bridge: TestBridge) -> None:
    handle = load(manager, bridge, DictStore(), "storage")
    first, second = check_storage(handle), check_storage(handle)
    assert first.ok and second.ok
    assert random.random() >= 0  # keeps the import honest for the random vectorizer


# -- pytest fixtures (pytester) ------------------------------------------------------------


def test_fixtures_load_and_check_an_example(pytester: pytest.Pytester) -> None:
    manifest = EXAMPLES / "python-hash-vectorizer" / "plugin.yaml"
    pytester.makepyfile(
        f"""
        from weaviate_ext import PluginManager, VectorizerHandle
        from weaviate_ext.testing import check_plugin

        MANAGERS = []

        def test_conformance(load_plugin, plugin_manager):
            handle = load_plugin({str(manifest)!r})
            assert isinstance(handle, VectorizerHandle)
            assert plugin_manager.names() == ("hash-embedder",)
            MANAGERS.append(plugin_manager)
            check_plugin(handle).raise_for_failures()

        def test_manager_was_closed(plugin_manager):
            assert isinstance(plugin_manager, PluginManager)
            assert plugin_manager is not MANAGERS[0]
            assert MANAGERS[0].names() == ()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_load_plugin_resolves_relative_paths(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "python-text-normalizer", pytester.path / "normalizer")
    tests = pytester.mkpydir("tests")
    (tests / "test_plugin.py").write_text(
        textwrap.dedent(
            """
            from weaviate_ext.testing import check_plugin

            def test_from_the_test_directory(load_plugin):
                handle = load_plugin("../normalizer/plugin.yaml", config={"lowercase": False})
                assert handle.transform("  A  B ") == "A B"

            def test_a_directory_means_its_plugin_yaml(load_plugin):
                check_plugin(load_plugin("normalizer")).raise_for_failures()
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_broken_plugin_fails_the_inner_test(pytester: pytest.Pytester) -> None:
    (pytester.path / "src").mkdir()
    (pytester.path / "src" / "broken.py").write_text(
        textwrap.dedent(
            """
            from weaviate_ext import hookimpl

            class Forgetful:
                '''Stores nothing.'''

                @hookimpl
                def store(self, key, data):
                    pass

                @hookimpl
                def retrieve(self, key):
                    return None

                @hookimpl
                def delete(self, key):
                    return False
            """
        )
    )
    (pytester.path / "plugin.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: weaviate.io/v1
            kind: Plugin
            metadata: {name: forgetful, version: 0.1.0}
            spec: {type: storage, runtime: python, entrypoint: "broken:Forgetful"}
            """
        )
    )
    pytester.makepyfile(
        """
        from weaviate_ext.testing import check_plugin

        def test_conformance(load_plugin):
            check_plugin(load_plugin("plugin.yaml")).raise_for_failures()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*storage 'forgetful' failed * conformance checks*", "*round trip*"]
    )


def test_marker_and_command_line_option(pytester: pytest.Pytester) -> None:
    normalizer = EXAMPLES / "python-text-normalizer" / "plugin.yaml"
    bm25 = EXAMPLES / "python-bm25-reranker" / "plugin.yaml"
    pytester.makepyfile(
        f"""
        import pytest
        from weaviate_ext.testing import check_plugin

        @pytest.mark.weaviate_ext_plugin({str(normalizer)!r}, config={{"lowercase": False}})
        def test_marked(weaviate_plugin):
            assert weaviate_plugin.transform("\\uff21") == "A"

        def test_from_option(weaviate_plugin):
            check_plugin(weaviate_plugin).raise_for_failures()
        """
    )
    skipped = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    skipped.assert_outcomes(passed=1, skipped=1)
    with_option = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        f"--weaviate-ext-plugin={normalizer}",
        f"--weaviate-ext-plugin={bm25}",
    )
    with_option.assert_outcomes(passed=3)
