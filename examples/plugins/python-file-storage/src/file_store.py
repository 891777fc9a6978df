"""``file-store``: a storage plugin keeping each key in its own file under ``path``.

Keys never become paths. A key's file name is ``k-`` followed by the lower-case
base32 of its UTF-8 bytes (no padding), so ``../x``, ``/etc/passwd`` or ``a/b`` are just
names inside the directory, distinct keys never share a file, and the names stay
distinct on case-insensitive file systems. A key whose name would be longer than 200
characters is stored as ``h-`` plus the SHA-256 of its bytes.

A write goes to a temporary file in the same directory (``.tmp-*``), which is flushed
and ``fsync``-ed, then renamed over the key's file with ``os.replace`` (atomic), and the
directory is ``fsync``-ed so the rename survives a crash: a reader sees the old value
or the new one, never a mix, and a returned ``store`` is durable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from weaviate_ext import Manifest, PluginConfig, hookimpl

MAX_NAME = 200
TEMP_PREFIX = ".tmp-"


def file_name(key: str) -> str:
    """The file name that holds ``key``: never a path, never ``.`` or ``..``."""
    raw = key.encode("utf-8", "surrogatepass")
    encoded = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    if len(encoded) + 2 <= MAX_NAME:
        return "k-" + encoded
    return "h-" + hashlib.sha256(raw).hexdigest()


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (where the OS allows it)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class FileStore:
    """The plugin object: ``store``, ``retrieve`` and ``delete``."""

    def __init__(self) -> None:
        self.root: Path | None = None

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Read ``path`` (relative paths are relative to the plugin's directory)."""
        path = Path(config.get_string("path")).expanduser()
        if not path.is_absolute():
            path = manifest.directory / path
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(f"{path} is not writable")
        self.root = path.resolve()
        for stale in self.root.glob(TEMP_PREFIX + "*"):  # left by a crash mid-write
            with contextlib.suppress(OSError):
                stale.unlink()

    def path_of(self, key: str) -> Path:
        """The file of ``key``, always directly inside the storage directory."""
        if self.root is None:
            raise RuntimeError("file-store is not set up")
        return self.root / file_name(key)

    @hookimpl
    def store(self, key: str, data: bytes) -> None:
        """Write ``data`` atomically and durably under ``key``."""
        target = self.path_of(key)
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _fsync_directory(target.parent)

    @hookimpl
    def retrieve(self, key: str) -> bytes | None:
        """The bytes under ``key``, or ``None``."""
        try:
            return self.path_of(key).read_bytes()
        except FileNotFoundError:
            return None

    @hookimpl
    def delete(self, key: str) -> bool:
        """Remove ``key``'s file; ``True`` if it existed."""
        target = self.path_of(key)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(target.parent)
        return True
