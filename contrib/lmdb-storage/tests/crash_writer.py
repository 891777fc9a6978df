"""The writer of the SIGKILL test, and the operations it performs (shared with the test).

Run as a script, it loads ``lmdb-storage`` through the framework (a
``PluginManager`` finding the installed package by its entry point), then performs
:func:`operation` START, START+1, ... forever, printing ``ack <i>`` (flushed) after each
one returned: an acknowledged write. The test kills it with SIGKILL mid-loop, checks the
environment against :func:`expected_state`, and starts the next writer at the operation
that was in flight (operations are idempotent, so redoing it is harmless).

    python crash_writer.py ENV_DIR START
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys

import numpy as np

PLUGIN = "lmdb-storage"
MAGIC = b"WXREC1"
HEADER = struct.Struct("<II")  # metadata length, vector length


def key_of(i: int) -> str:
    """The key written by operation ``i`` (odd characters on purpose)."""
    return f"records/{i:06d}/ключ"


def operation(i: int) -> tuple[str, str, int]:
    """Operation ``i``: ``("put", key, version)`` or ``("delete", key, 0)``.

    Most operations write a new key (version 1); every tenth overwrites an earlier key
    with version 2, and every tenth deletes an earlier key.
    """
    if i % 10 == 7:
        return ("put", key_of(i - 5), 2)
    if i % 10 == 9:
        return ("delete", key_of(i - 3), 0)
    return ("put", key_of(i), 1)


def record(key: str, version: int) -> bytes:
    """The value stored for ``key`` at ``version``: a float32 vector and JSON metadata.

    Sizes vary from a few hundred bytes to about 256 KiB, so an interrupted write would
    leave a visibly partial value. A SHA-256 of the body makes every record self-checking.
    """
    seed = hashlib.sha256(f"{key}\0{version}".encode()).digest()
    dims = 16 + int.from_bytes(seed[:4], "little") % 65536
    vector = np.random.default_rng(list(seed)).random(dims, dtype=np.float32)
    meta = json.dumps({"key": key, "version": version, "dims": dims}).encode()
    body = HEADER.pack(len(meta), dims) + meta + vector.astype("<f4").tobytes()
    return MAGIC + hashlib.sha256(body).digest() + body


def is_whole_record(value: bytes) -> bool:
    """Whether ``value`` is a complete, self-consistent record (no truncation, no mix)."""
    if not value.startswith(MAGIC) or len(value) < len(MAGIC) + 32 + HEADER.size:
        return False
    digest, body = value[len(MAGIC) : len(MAGIC) + 32], value[len(MAGIC) + 32 :]
    if hashlib.sha256(body).digest() != digest:
        return False
    meta_len, dims = HEADER.unpack_from(body)
    return len(body) == HEADER.size + meta_len + 4 * dims


def expected_state(last_acked: int) -> dict[str, int]:
    """Key -> version after operations ``0..last_acked`` (``-1``: none) all applied."""
    state: dict[str, int] = {}
    for i in range(last_acked + 1):
        kind, key, version = operation(i)
        if kind == "put":
            state[key] = version
        else:
            state.pop(key, None)
    return state


def main(db_path: str, start: int) -> None:
    """Write forever from operation ``start``, printing ``ack <i>`` after each one."""
    from weaviate_ext import PluginManager

    manager = PluginManager(config={PLUGIN: {"path": db_path}})
    storage = manager.get_storage(PLUGIN)
    print("ready", flush=True)
    i = start
    while True:
        kind, key, version = operation(i)
        if kind == "put":
            storage.store(key, record(key, version))
        else:
            storage.delete(key)
        print(f"ack {i}", flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
