"""A writer killed with SIGKILL mid-loop loses no acknowledged write and leaves no partial one.

The test kit's :func:`~weaviate_ext.testing.check_crash_durability` runs six rounds on one
database: each starts a writer process that loads the installed plugin by name, kills it
with SIGKILL at a random moment within one operation (before, inside or after the
commit), then opens the database through the plugin and checks every acknowledged
operation. Below the plugin, :func:`rows` adds SQLite's ``integrity_check`` and hands
the kit every row of the table, each of which must be a whole record.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from weaviate_ext.testing import check_crash_durability

PLUGIN = "sqlite-storage"


def rows(db_path: Path) -> dict[str, bytes]:
    """Every row of the plugin's table, read with ``sqlite3`` after an integrity check."""
    conn = sqlite3.connect(db_path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            raise AssertionError(f"PRAGMA integrity_check: {integrity}")
        found = conn.execute("SELECT key, value FROM weaviate_ext_kv").fetchall()
    finally:
        conn.close()
    return {key.decode("utf-8", "surrogatepass"): value for key, value in found}


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db_path = tmp_path / "crash.db"
    result = check_crash_durability(
        PLUGIN, {"path": str(db_path)}, tmp_path, rounds=6, raw_entries=lambda: rows(db_path)
    )
    assert len(result.rounds) == 6
