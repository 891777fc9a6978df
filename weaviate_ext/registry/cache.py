"""The local, content-addressed cache of pulled plugin artifacts.

Layout under the root (``~/.cache/weaviate-ext/oci``, ``$WEAVIATE_EXT_OCI_CACHE``)::

    blobs/sha256/<hex>              every blob, by digest (checked while downloaded)
    plugins/sha256-<hex>/           an unpacked plugin, by its artifact's manifest digest
    plugins/sha256-<hex>.json       what it is (reference, name, version, size)
    locks/sha256-<hex>.lock         fcntl.flock: one process fills an entry at a time
    tmp/                            work in progress

Nothing is written in place: a blob or a plugin directory is made under ``tmp/`` and
renamed into place once complete and verified, so an entry that exists is whole; what
an interrupted pull leaves in ``tmp/`` is never read (and is removed by the next
prune). Two processes pulling the same digest take the same lock; the second finds the
entry complete. The cache is bounded: :meth:`OciCache.prune` removes the least recently
used plugins (and blobs no plugin needs) until it is under its size cap.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from weaviate_ext.errors import RegistryError
from weaviate_ext.registry.reference import check_digest

CACHE_ENV = "WEAVIATE_EXT_OCI_CACHE"
"""Environment variable naming the cache directory."""
DEFAULT_MAX_SIZE = 2 * 1024 * 1024 * 1024
"""Default size cap of the cache (bytes)."""
TMP_MAX_AGE = 3600.0
"""Seconds after which a prune removes leftovers in ``tmp/`` (of pulls that died)."""


def default_root() -> Path:
    """``$WEAVIATE_EXT_OCI_CACHE``, else ``$XDG_CACHE_HOME/weaviate-ext/oci``
    (``~/.cache/weaviate-ext/oci``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "weaviate-ext" / "oci"


def _key(digest: str) -> str:
    return check_digest(digest, "cache").replace(":", "-")


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for here, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(here) / name).lstat().st_size
    return total


@attrs.frozen
class CacheEntry:
    """An unpacked plugin in the cache (a row of ``weaviate-ext cache list``)."""

    digest: str
    reference: str
    name: str
    version: str
    size: int
    last_used: float
    directory: Path


class OciCache:
    """The cache at ``root`` (default :func:`default_root`), capped at ``max_size`` bytes."""

    def __init__(self, root: str | os.PathLike[str] | None = None, max_size: int | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.max_size = DEFAULT_MAX_SIZE if max_size is None else max_size

    def _dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot use the cache directory {path}: {exc.strerror}") from None
        return path

    # -- paths ------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where blob ``digest`` is (whether or not it is there)."""
        return self.root / "blobs" / "sha256" / check_digest(digest, "cache")[7:]

    def plugin_path(self, digest: str) -> Path:
        """Where the plugin of manifest ``digest`` is unpacked (whether or not it is)."""
        return self.root / "plugins" / _key(digest)

    def has_plugin(self, digest: str) -> bool:
        """Whether the plugin of manifest ``digest`` is in the cache, complete."""
        return self.plugin_path(digest).is_dir()

    # -- locking and writing ----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, digest: str, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the lock of ``digest`` (``fcntl.flock`` on ``locks/<digest>.lock``); yields
        whether it was taken (always, when ``blocking``)."""
        path = self._dir("locks") / f"{_key(digest)}.lock"
        with path.open("a+b") as handle:
            flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(handle.fileno(), flags)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def write_blob(self, digest: str, chunks: Iterable[bytes]) -> Path:
        """Store the blob whose bytes ``chunks`` yields (a checking iterator, see
        :func:`~weaviate_ext.registry.client.verified`): written to ``tmp/`` and renamed
        into place only when the iterator ends without an error."""
        target = self.blob_path(digest)
        if target.is_file():
            return target
        self._dir("blobs", "sha256")
        fd, tmp = tempfile.mkstemp(dir=self._dir("tmp"), prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    def install_plugin(
        self, digest: str, fill: Callable[[Path], None], info: dict[str, Any]
    ) -> Path:
        """Make the plugin directory of ``digest``: ``fill`` writes it into a fresh
        temporary directory, which is then renamed into place (with its ``info``)."""
        target = self.plugin_path(digest)
        if target.is_dir():
            self.touch(digest)
            return target
        self._dir("plugins")
        work = Path(tempfile.mkdtemp(dir=self._dir("tmp"), prefix="plugin-"))
        try:
            fill(work)
            info = {**info, "digest": digest, "size": _tree_size(work)}
            meta = target.with_name(target.name + ".json")
            meta.write_text(json.dumps(info, sort_keys=True), encoding="utf-8")
            os.rename(work, target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return target

    def record_verified(
        self,
        digest: str,
        signatures: Sequence[tuple[bytes, str]],
        manifest_name: str,
        annotations: Mapping[str, str],
    ) -> None:
        """Keep, next to the plugin of ``digest``, the signatures it was verified with and
        what loading it needs: an offline load by digest re-checks them against the
        host's policy (:func:`~weaviate_ext.registry.pull.pull`). Written atomically."""
        record = {
            "signatures": [
                [base64.b64encode(payload).decode("ascii"), signature]
                for payload, signature in signatures
            ],
            "manifest_name": manifest_name,
            "annotations": dict(annotations),
        }
        target = self.plugin_path(digest).with_name(_key(digest) + ".verified.json")
        fd, tmp = tempfile.mkstemp(dir=self._dir("tmp"), prefix="verified-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, sort_keys=True)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def verified(self, digest: str) -> tuple[list[tuple[bytes, str]], str, dict[str, str]] | None:
        """What :meth:`record_verified` kept for ``digest`` -- ``(signatures, manifest
        name, annotations)`` -- when its plugin is complete in the cache; else ``None``."""
        if not self.has_plugin(digest):
            return None
        path = self.plugin_path(digest).with_name(_key(digest) + ".verified.json")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            signatures = [
                (base64.b64decode(payload, validate=True), str(signature))
                for payload, signature in record["signatures"]
            ]
            return signatures, str(record["manifest_name"]), dict(record["annotations"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def touch(self, digest: str) -> None:
        """Mark the plugin of ``digest`` as just used (for the LRU order of :meth:`prune`)."""
        meta = self.plugin_path(digest).with_name(_key(digest) + ".json")
        with contextlib.suppress(OSError):
            os.utime(meta)

    # -- listing and pruning ----------------------------------------------------------------

    def entries(self) -> list[CacheEntry]:
        """The unpacked plugins, most recently used first."""
        plugins = self.root / "plugins"
        if not plugins.is_dir():
            return []
        found: list[CacheEntry] = []
        for directory in plugins.iterdir():
            meta = directory.with_name(directory.name + ".json")
            if not directory.is_dir() or not meta.is_file():
                continue
            try:
                info = json.loads(meta.read_text(encoding="utf-8"))
                used = meta.stat().st_mtime
            except (OSError, ValueError):
                continue
            found.append(
                CacheEntry(
                    directory.name.replace("-", ":", 1),
                    str(info.get("reference", "")),
                    str(info.get("name", "")),
                    str(info.get("version", "")),
                    int(info.get("size", 0)),
                    used,
                    directory,
                )
            )
        return sorted(found, key=lambda e: e.last_used, reverse=True)

    def blobs_needed(self, entry: CacheEntry) -> set[str]:
        """The blob digests the plugin of ``entry`` was unpacked from."""
        meta = entry.directory.with_name(entry.directory.name + ".json")
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        return {str(d) for d in info.get("blobs", [])}

    def size(self) -> int:
        """Bytes the cache takes (blobs, plugins, leftovers)."""
        return _tree_size(self.root) if self.root.is_dir() else 0

    def remove(self, entry: CacheEntry) -> bool:
        """Remove a plugin (unless another process holds its lock); whether it was."""
        with self.lock(entry.digest, blocking=False) as taken:
            if not taken:
                return False
            meta = entry.directory.with_name(entry.directory.name + ".json")
            trash = Path(tempfile.mkdtemp(dir=self._dir("tmp"), prefix="old-"))
            with contextlib.suppress(OSError):
                os.rename(entry.directory, trash / "plugin")
            with contextlib.suppress(OSError):
                meta.unlink()
            with contextlib.suppress(OSError):
                entry.directory.with_name(entry.directory.name + ".verified.json").unlink()
            shutil.rmtree(trash, ignore_errors=True)
            return True

    def prune(self, max_size: int | None = None) -> list[CacheEntry]:
        """Remove leftovers of dead pulls, then the least recently used plugins and the
        blobs no remaining plugin needs, until the cache is at most ``max_size`` bytes
        (default: its cap). Returns the plugins removed."""
        cap = self.max_size if max_size is None else max_size
        tmp = self.root / "tmp"
        if tmp.is_dir():
            now = time.time()
            for path in tmp.iterdir():
                with contextlib.suppress(OSError):
                    if now - path.lstat().st_mtime > TMP_MAX_AGE:
                        shutil.rmtree(path) if path.is_dir() else path.unlink()
        removed: list[CacheEntry] = []
        entries = self.entries()
        while entries and self.size() > cap:
            victim = entries.pop()  # the least recently used
            if self.remove(victim):
                removed.append(victim)
                self._drop_unneeded_blobs(entries)
        if self.size() > cap:
            self._drop_unneeded_blobs(entries)
        return removed

    def _drop_unneeded_blobs(self, keep: list[CacheEntry]) -> None:
        needed: set[str] = set()
        for entry in keep:
            needed |= self.blobs_needed(entry)
        blobs = self.root / "blobs" / "sha256"
        if not blobs.is_dir():
            return
        for path in blobs.iterdir():
            digest = f"sha256:{path.name}"
            if digest in needed:
                continue
            with self.lock(digest, blocking=False) as taken:
                if taken:
                    with contextlib.suppress(OSError):
                        path.unlink()
