"""A writer killed with SIGKILL mid-loop loses no acknowledged write and leaves no partial one.

The test kit's :func:`~weaviate_ext.testing.check_crash_durability` runs six rounds on one
environment: each starts a writer process that loads the installed plugin by name, kills
it with SIGKILL at a random moment within one operation (before, inside or after the
LMDB commit), then opens the environment through the plugin and checks every
acknowledged operation. Below the plugin, :func:`entries` hands the kit every entry of
the environment, each of which must be a whole record.
"""

from __future__ import annotations

from pathlib import Path

import lmdb

from weaviate_ext.testing import check_crash_durability

PLUGIN = "lmdb-storage"


def entries(env_dir: Path) -> dict[str, bytes]:
    """Every entry of the environment, read with ``lmdb`` directly."""
    env = lmdb.open(str(env_dir), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            found = list(txn.cursor())
    finally:
        env.close()
    hashed = [key for key, _ in found if key[:1] != b"k"]
    if hashed:  # every workload key is short: stored directly, after the b"k" prefix
        raise AssertionError(f"keys not stored directly: {hashed[:3]}")
    return {key[1:].decode("utf-8", "surrogatepass"): value for key, value in found}


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    env_dir = tmp_path / "crash-env"
    result = check_crash_durability(
        PLUGIN, {"path": str(env_dir)}, tmp_path, rounds=6, raw_entries=lambda: entries(env_dir)
    )
    assert len(result.rounds) == 6
