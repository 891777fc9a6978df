"""A writer killed with SIGKILL mid-loop loses no acknowledged write and leaves no partial one.

Each round starts a writer process (``crash_writer.py``), lets it acknowledge some
operations, then kills it with SIGKILL at a random moment within one operation's
duration, so that kills land before, inside and after the LMDB commit. After every
kill the environment is opened through the plugin and checked; the next round continues
at the operation that was in flight.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
from crash_writer import expected_state, is_whole_record, key_of, operation, record

from weaviate_ext import PluginManager

PLUGIN = "lmdb-storage"
WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = 6


def run_and_kill(db_path: Path, start: int, acks: int, rng: random.Random, log: Path) -> int:
    """Start a writer at operation ``start``; SIGKILL it after ``acks`` acks plus a random
    part of an operation's duration. Returns the last acknowledged operation."""
    with log.open("ab") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(WRITER), str(db_path), str(start)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=WRITER.parent,
        )
    assert child.stdout is not None
    acked = start - 1
    seen: list[int] = []
    times: list[float] = []
    try:
        for line in child.stdout:
            if not line.startswith(b"ack "):
                continue
            acked = int(line.split()[1])
            seen.append(acked)
            times.append(time.monotonic())
            if len(seen) >= acks:
                per_op = (times[-1] - times[1]) / (len(times) - 2)
                time.sleep(rng.uniform(0, per_op))
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        rest = child.stdout.read()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, (
        f"the writer ended with {child.returncode}, not SIGKILL: {log.read_text()[-2000:]}"
    )
    # acks printed before the kill but not read yet count too; a torn last line does not
    for line in rest.split(b"\n"):
        if line.startswith(b"ack ") and line[4:].isdigit():
            acked = int(line[4:])
            seen.append(acked)
    assert seen == list(range(start, acked + 1)), "acks came out of order"
    return acked


def check_database(db_path: Path, last: int) -> None:
    """Every operation up to ``last`` is there; ``last + 1`` is all there or not at all."""
    acknowledged = expected_state(last)
    with_in_flight = expected_state(last + 1)  # the operation the kill interrupted
    in_flight_key = operation(last + 1)[1]
    touched = {key_of(i) for i in range(last + 2)} | {in_flight_key}

    with PluginManager(config={PLUGIN: {"path": str(db_path)}}) as manager:
        storage = manager.get_storage(PLUGIN)  # the installed plugin, found by name
        for key in sorted(touched):
            got = storage.retrieve(key)
            want = acknowledged.get(key)
            allowed = {None if want is None else record(key, want)}
            if key == in_flight_key:
                after = with_in_flight.get(key)
                allowed.add(None if after is None else record(key, after))
            assert got in allowed, (
                f"{key}: acknowledged state {want}, got "
                f"{'nothing' if got is None else f'{len(got)} bytes that do not match'}"
            )

    # below the plugin: every entry in the environment is a whole record under a written key
    env = lmdb.open(str(db_path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            rows = list(txn.cursor())
    finally:
        env.close()
    assert all(key[:1] == b"k" for key, _ in rows)  # every test key is short: stored directly
    stored = {key[1:].decode("utf-8", "surrogatepass"): value for key, value in rows}
    assert set(stored) <= touched
    assert set(acknowledged) <= set(stored) | {in_flight_key}
    for key, value in stored.items():
        assert is_whole_record(value), f"{key}: partial record of {len(value)} bytes"


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db_path = tmp_path / "crash-env"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    start = 0
    for round_number in range(ROUNDS):
        acks = 25 if round_number == 0 else rng.randint(4, 15)
        last = run_and_kill(db_path, start, acks, rng, tmp_path / "writer.log")
        assert last >= start + acks - 1
        try:
            check_database(db_path, last)
        except AssertionError as exc:
            raise AssertionError(f"round {round_number} (seed {seed}): {exc}") from exc
        start = last + 1  # redo the operation that was in flight: it is idempotent
