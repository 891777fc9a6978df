"""The artifact cache: concurrent pulls from two processes, interrupted pulls, pruning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Registry
from helpers import plugin_copy, settings_for

from weaviate_ext.errors import RegistryError
from weaviate_ext.registry import pull as pull_module
from weaviate_ext.registry.cache import TMP_MAX_AGE, OciCache
from weaviate_ext.registry.pull import pull
from weaviate_ext.registry.push import push_plugin

pytestmark = pytest.mark.registry

PULL_SCRIPT = """
import sys, time
from pathlib import Path
from weaviate_ext.registry import pull as pull_module
from weaviate_ext.registry.settings import RegistrySettings

reference, cache, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "hang":  # stop for good after the first file: the parent kills us
    original = pull_module._write_layer
    def slow(*args):
        original(*args)
        print("WROTE", flush=True)
        time.sleep(60)
    pull_module._write_layer = slow
policy = {"repositories": [{"match": "*", "allowUnsigned": True}]}
settings = RegistrySettings.from_data({"policy": policy, "cache": {"dir": cache}}, Path("."))
print(pull_module.pull(reference, settings=settings).directory, flush=True)
"""


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _spawn(reference: str, cache: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PULL_SCRIPT, reference, str(cache), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_pulls_from_two_processes(
    registry: Registry, cache_dir: Path, tmp_path: Path
) -> None:
    source = plugin_copy("c-vectorizer", tmp_path / "p", "concurrent")
    reference = registry.ref("cache/concurrent", "1")
    pushed = push_plugin(source, reference)
    procs = [_spawn(reference, cache_dir, "normal") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    directories = {out.strip() for out, _ in outputs}
    assert directories == {str(OciCache(cache_dir).plugin_path(pushed.digest))}
    entries = OciCache(cache_dir).entries()
    assert [e.digest for e in entries] == [pushed.digest]
    assert _tree(entries[0].directory) == {
        rel: (source / rel).read_bytes() for rel in _tree(entries[0].directory)
    }
    assert not list((cache_dir / "tmp").iterdir())


def test_killed_pull_leaves_nothing_taken_as_complete(
    registry: Registry, cache_dir: Path, tmp_path: Path
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "p", "killed")
    reference = registry.ref("cache/killed", "1")
    pushed = push_plugin(source, reference)
    proc = _spawn(reference, cache_dir, "hang")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the child sleeps 60 s at most
        assert line.strip() == "WROTE"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    cache = OciCache(cache_dir)
    assert not cache.has_plugin(pushed.digest)
    assert list((cache_dir / "tmp").iterdir())  # the half-made directory is only in tmp/
    # a new pull makes a complete one (the lock died with the process)
    settings = settings_for(tmp_path, cache_dir, unsigned=True)
    pulled = pull(reference, settings=settings)
    assert _tree(pulled.directory) == {
        rel: (source / rel).read_bytes() for rel in _tree(pulled.directory)
    }
    assert set(_tree(pulled.directory)) >= {"plugin.yaml", "NOTICE.txt", "src/hash_embedder.py"}
    # leftovers of dead pulls go with the next prune once they are old
    old = time.time() - TMP_MAX_AGE - 10
    for leftover in (cache_dir / "tmp").iterdir():
        os.utime(leftover, (old, old))
    cache.prune()
    assert not list((cache_dir / "tmp").iterdir())
    assert cache.has_plugin(pushed.digest)


def test_failing_stream_leaves_nothing(
    registry: Registry, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = plugin_copy("python-hash-vectorizer", tmp_path / "p", "failing")
    reference = registry.ref("cache/failing", "1")
    pushed = push_plugin(source, reference)
    real = pull_module.verified
    calls = []

    def broken(chunks: Iterator[bytes], *args: object, **kwargs: object) -> Iterator[bytes]:
        calls.append(1)
        if len(calls) == 3:  # the third blob breaks off after its first chunk
            yield next(iter(chunks))
            raise httpx.ReadError("connection reset by peer")
        yield from real(chunks, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pull_module, "verified", broken)
    settings = settings_for(tmp_path, cache_dir, unsigned=True)
    with pytest.raises(RegistryError, match="cannot reach the registry"):
        pull(reference, settings=settings)
    cache = OciCache(cache_dir)
    assert not cache.has_plugin(pushed.digest)
    assert not list((cache_dir / "tmp").iterdir())
    blobs = list((cache_dir / "blobs" / "sha256").iterdir())
    assert len(blobs) == 2  # the two whole blobs are kept (verified); the broken one is not
    monkeypatch.setattr(pull_module, "verified", real)
    assert pull(reference, settings=settings).manifest_path.is_file()


def test_prune_is_least_recently_used_first(
    registry: Registry, cache_dir: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, cache_dir, unsigned=True)
    pulled = []
    for index in range(3):
        source = plugin_copy("python-hash-vectorizer", tmp_path / f"p{index}", f"lru-{index}")
        reference = registry.ref("cache/lru", str(index))
        push_plugin(source, reference)
        pulled.append(pull(reference, settings=settings))
    cache = OciCache(cache_dir)
    now = time.time()
    for age, item in zip((300, 100, 200), pulled, strict=True):  # 0 oldest, then 2, then 1
        meta = item.directory.with_name(item.directory.name + ".json")
        os.utime(meta, (now - age, now - age))
    assert [e.digest for e in cache.entries()] == [pulled[i].digest for i in (1, 2, 0)]
    size = cache.size()
    removed = cache.prune(size - 1)
    assert [e.digest for e in removed] == [pulled[0].digest]
    assert {e.digest for e in cache.entries()} == {pulled[1].digest, pulled[2].digest}
    assert cache.size() < size
    cache.prune(0)
    assert cache.entries() == []
    assert not list((cache_dir / "blobs" / "sha256").iterdir())
