"""Durability checks for storage plugins: a killed writer loses no acknowledged write.

The framework treats a returned ``store`` (or ``delete``) as an acknowledged write: it
must survive the process that made it. :func:`check_crash_durability` tests exactly
that, the hard way::

    from weaviate_ext.testing import check_crash_durability

    def test_sigkill_loses_no_acknowledged_write(tmp_path):
        check_crash_durability("sqlite-storage", {"path": str(tmp_path / "crash.db")}, tmp_path)

Each round starts a writer child process (``python -m weaviate_ext.testing._crash_writer``)
that loads the plugin through a :class:`~weaviate_ext.PluginManager` and performs the
operations of :func:`operation` in a loop (puts of self-checking records of up to
256 KiB, overwrites and deletes), printing each one it acknowledged. The check kills
the child with SIGKILL at a random moment within one operation's duration, so that
kills land before, inside and after the engine's write, then reopens the store through
the framework and checks that every acknowledged operation is there, byte for byte,
and that the one operation in flight shows its old or its new state, nothing else. The
next round continues at the operation that was in flight (every operation is
idempotent). :func:`check_reopen_durability` is the gentle counterpart: values written
through one manager are there, unchanged, through the next one.

Both load the plugin either by its installed name (a ``str`` such as
``"sqlite-storage"``, found through its entry point, as a host finds it) or from a
manifest (a :class:`~pathlib.Path`, or a ``str`` ending in ``.yaml``/``.yml`` or holding
a path separator; a directory stands for its ``plugin.yaml``). They use no pytest, and
fail with :class:`AssertionError` (not ``assert``: ``-O`` safe). The crash check needs
POSIX signals (SIGKILL).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

if TYPE_CHECKING:
    from weaviate_ext.handles import StorageHandle

__all__ = [
    "CrashDurabilityResult",
    "CrashRound",
    "check_crash_durability",
    "check_reopen_durability",
]

WRITER_MODULE = "weaviate_ext.testing._crash_writer"
"""The module the writer child runs (``python -m``)."""

MANIFEST_NAME = "plugin.yaml"
MIN_ACKS = 3  # the kill delay is measured over the acks after the first one

# ---------------------------------------------------------------------------------------
# the workload: what the writer does and what a whole record looks like
# ---------------------------------------------------------------------------------------

MAGIC = b"WXREC1"
HEADER = struct.Struct("<II")  # metadata length, vector length
DIGEST_SIZE = 32


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
    if not value.startswith(MAGIC) or len(value) < len(MAGIC) + DIGEST_SIZE + HEADER.size:
        return False
    digest = value[len(MAGIC) : len(MAGIC) + DIGEST_SIZE]
    body = value[len(MAGIC) + DIGEST_SIZE :]
    if hashlib.sha256(body).digest() != digest:
        return False
    meta_len, dims = HEADER.unpack_from(body)
    return bool(len(body) == HEADER.size + meta_len + 4 * dims)


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


# ---------------------------------------------------------------------------------------
# loading the plugin: by installed name or from a manifest
# ---------------------------------------------------------------------------------------


def plugin_target(plugin: str | os.PathLike[str]) -> dict[str, str]:
    """``{"name": ...}`` for an installed plugin's name, ``{"manifest": path}`` otherwise.

    A path object is a manifest; so is a ``str`` ending in ``.yaml``/``.yml`` or holding
    a path separator. A directory stands for the ``plugin.yaml`` inside it. The manifest
    path is made absolute, so a child process in another directory finds it.
    """
    if isinstance(plugin, str):
        separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
        is_path = plugin.endswith((".yaml", ".yml")) or any(s in plugin for s in separators)
        if not is_path:
            if not plugin:
                raise ValueError("the plugin name must not be empty")
            return {"name": plugin}
    path = Path(plugin).expanduser().absolute()
    if path.is_dir():
        path = path / MANIFEST_NAME
    return {"manifest": str(path)}


@contextlib.contextmanager
def open_storage(target: Mapping[str, str], config: Mapping[str, Any]) -> Iterator[StorageHandle]:
    """The storage handle of ``target`` (see :func:`plugin_target`) in a fresh manager,
    closed on exit."""
    from weaviate_ext.handles import StorageHandle
    from weaviate_ext.manager import PluginManager

    if "name" in target:
        name = target["name"]
        with PluginManager(config={name: dict(config)}) as manager:
            yield manager.get_storage(name)  # the installed plugin, found by name
        return
    with PluginManager(discover=False) as manager:
        handle = manager.load(target["manifest"], config=dict(config))
        if not isinstance(handle, StorageHandle):
            raise TypeError(
                f"{target['manifest']} is a {type(handle).__name__}, not a storage plugin"
            )
        yield handle


def _fail(message: str) -> AssertionError:
    return AssertionError(message)


# ---------------------------------------------------------------------------------------
# the gentle check: a clean close and reopen
# ---------------------------------------------------------------------------------------


def check_reopen_durability(plugin: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Values written through one manager are there through the next one.

    Loads ``plugin`` with ``config`` in a :class:`~weaviate_ext.PluginManager`, stores
    ``a`` (a value starting with NUL), stores ``b`` twice and stores then deletes ``c``,
    closes the manager, loads the plugin again in a new one and checks that ``a`` and
    ``b`` (its second value) are there and ``c`` is not. Use a store of its own: those
    keys are overwritten. Raises :class:`AssertionError` naming the lost write.
    """
    target = plugin_target(plugin)
    with open_storage(target, config) as store:
        store.store("a", b"\x00one")
        store.store("b", b"two")
        store.store("b", b"two, again")
        store.store("c", b"three")
        deleted = store.delete("c")
        if deleted is not True:
            raise _fail(f"delete of the stored key 'c' returned {deleted!r}")
    with open_storage(target, config) as store:
        want: dict[str, bytes | None] = {"a": b"\x00one", "b": b"two, again", "c": None}
        for key, value in want.items():
            got = store.retrieve(key)
            if got != value:
                raise _fail(f"after reopening, {key!r} is {got!r}, not {value!r}")


# ---------------------------------------------------------------------------------------
# the hard check: SIGKILL mid-write
# ---------------------------------------------------------------------------------------


@attrs.frozen
class CrashRound:
    """One round of :func:`check_crash_durability`: the writer started at operation
    ``start`` and had acknowledged up to ``last_acked`` when it was killed."""

    start: int
    last_acked: int

    @property
    def acknowledged(self) -> int:
        """How many operations the writer acknowledged in this round."""
        return self.last_acked - self.start + 1


@attrs.frozen
class CrashDurabilityResult:
    """What :func:`check_crash_durability` did, when every round passed.

    ``seed`` reproduces the kill points and ack counts (pass it back as ``seed=``);
    ``rounds`` lists each writer's first and last acknowledged operation.
    """

    plugin: str
    seed: int
    rounds: tuple[CrashRound, ...]

    @property
    def operations(self) -> int:
        """Acknowledged operations over every round."""
        return sum(r.acknowledged for r in self.rounds)

    def __str__(self) -> str:
        return (
            f"{self.plugin}: {len(self.rounds)} writers killed with SIGKILL after "
            f"{self.operations} acknowledged operations, none lost (seed {self.seed})"
        )


RawEntries = Callable[[], Mapping[str, bytes]]
"""The type of ``raw_entries``: every key and value the engine holds, below the plugin."""


def check_crash_durability(
    plugin: str | os.PathLike[str],
    config: Mapping[str, Any],
    work_dir: str | os.PathLike[str],
    *,
    rounds: int = 6,
    first_acks: int = 25,
    acks: tuple[int, int] = (4, 15),
    seed: int | None = None,
    raw_entries: RawEntries | None = None,
    timeout: float | None = 600.0,
) -> CrashDurabilityResult:
    """Kill a writer with SIGKILL mid-write ``rounds`` times; no acknowledged write is lost.

    :param plugin: the installed plugin's name, or its manifest (see the module's doc).
    :param config: the plugin's config, JSON-serialisable; it must name a store of its
        own (a fresh database file, directory, key prefix ...) that survives the writer.
        It is handed to the child in a file of ``work_dir`` readable by the owner only.
    :param work_dir: a directory for that file and the writers' stderr
        (``crash-writer.log``, quoted when a writer fails).
    :param rounds: how many writers to start and kill, each continuing on the same store
        where the last was killed.
    :param first_acks: the first writer is killed after this many acknowledged
        operations plus a random part of one operation's duration ...
    :param acks: ... and each later one after ``random.randint(*acks)`` of them (at
        least 3 each: the kill delay is measured over the acks).
    :param seed: seeds the ack counts and kill delays (random by default; the seed is in
        the result and in every failure).
    :param raw_entries: optional, called after each round once the plugin is closed:
        every key and value the engine holds below the plugin, as ``{key: value}`` with
        the key as the handle was given it (e.g. the rows of an SQLite table). The check
        then also requires that no other key is there, that every acknowledged key is
        there (bar the one in flight) and that every value is a whole record, not a torn
        one the plugin would hide. Engine-specific checks (SQLite's ``integrity_check``,
        ...) can go in it too: an :class:`AssertionError` it raises fails the round.
    :param timeout: seconds a writer may take to reach its acks before it is killed and
        the check fails (``None``: wait forever). A guard against hangs, not a speed test.
    :returns: a :class:`CrashDurabilityResult` (its ``str`` is a one-line summary).
    :raises AssertionError: naming the round, the seed and what was lost, torn or
        unexpected, or why a writer did not run (with its stderr).

    After every kill the store is opened through the plugin in a new manager; every key
    the workload touched must hold exactly its acknowledged value (or nothing, if it was
    deleted or never written), except the key of the operation in flight, which may also
    hold its new state.
    """
    if not hasattr(signal, "SIGKILL"):
        raise RuntimeError("check_crash_durability needs POSIX signals (SIGKILL)")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    low, high = acks
    if min(first_acks, low) < MIN_ACKS or low > high:
        raise ValueError(
            f"first_acks and acks must be at least {MIN_ACKS} (and acks low <= high), "
            f"got first_acks={first_acks}, acks={acks}"
        )
    target = plugin_target(plugin)
    label = target.get("name") or target["manifest"]
    work = Path(work_dir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "crash-writer.json"
    fd = os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"target": target, "config": dict(config)}, out)
    log = work / "crash-writer.log"

    seed = random.randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    done: list[CrashRound] = []
    start = 0
    for round_number in range(rounds):
        want = first_acks if round_number == 0 else rng.randint(low, high)
        try:
            last = _run_and_kill(spec, start, want, rng, log, timeout)
            _check_store(target, config, last, raw_entries)
        except AssertionError as exc:
            raise AssertionError(f"{label}, round {round_number} (seed {seed}): {exc}") from exc
        done.append(CrashRound(start, last))
        start = last + 1  # redo the operation that was in flight: it is idempotent
    return CrashDurabilityResult(label, seed, tuple(done))


def _writer_env() -> dict[str, str]:
    """The environment of the child: this one, plus this ``weaviate_ext`` on the path
    when it is not imported from an installed location (a source checkout)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    if not {"site-packages", "dist-packages"} & set(Path(root).parts):
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return env


def _tail(log: Path, size: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _run_and_kill(
    spec: Path, start: int, acks: int, rng: random.Random, log: Path, timeout: float | None
) -> int:
    """Start a writer at operation ``start``; SIGKILL it after ``acks`` acks plus a random
    part of an operation's duration. Returns the last acknowledged operation."""
    with log.open("ab") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", WRITER_MODULE, str(spec), str(start)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_writer_env(),  # and this working directory: relative config paths agree
        )
    assert child.stdout is not None  # for mypy: stdout=PIPE
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        with contextlib.suppress(OSError):
            child.kill()

    watchdog = threading.Timer(timeout, on_timeout) if timeout is not None else None
    if watchdog is not None:
        watchdog.daemon = True
        watchdog.start()
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
        if watchdog is not None:
            watchdog.cancel()
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        rest = child.stdout.read()
        child.stdout.close()
    if timed_out.is_set():
        raise _fail(
            f"the writer acknowledged {len(seen)} of {acks} operations within {timeout} s "
            f"and was stopped: {_tail(log)}"
        )
    if child.returncode != -signal.SIGKILL:
        raise _fail(f"the writer ended with {child.returncode}, not SIGKILL: {_tail(log)}")
    # acks printed before the kill but not read yet count too; a torn last line does not
    for line in rest.split(b"\n"):
        if line.startswith(b"ack ") and line[4:].isdigit():
            acked = int(line[4:])
            seen.append(acked)
    if seen != list(range(start, acked + 1)):
        raise _fail(f"acks came out of order: {seen}")
    if acked < start + acks - 1:
        raise _fail(f"the writer acknowledged up to {acked}, expected {start + acks - 1}")
    return acked


def _describe(value: bytes | None) -> str:
    if value is None:
        return "nothing"
    return f"{len(value)} bytes that do not match"


def _check_store(
    target: Mapping[str, str], config: Mapping[str, Any], last: int, raw: RawEntries | None
) -> None:
    """Every operation up to ``last`` is there; ``last + 1`` is all there or not at all."""
    acknowledged = expected_state(last)
    with_in_flight = expected_state(last + 1)  # the operation the kill interrupted
    in_flight_key = operation(last + 1)[1]
    touched = {key_of(i) for i in range(last + 2)} | {in_flight_key}

    with open_storage(target, config) as storage:
        for key in sorted(touched):
            got = storage.retrieve(key)
            want = acknowledged.get(key)
            allowed = {None if want is None else record(key, want)}
            if key == in_flight_key:
                after = with_in_flight.get(key)
                allowed.add(None if after is None else record(key, after))
            if got not in allowed:
                raise _fail(f"{key}: acknowledged state {want}, got {_describe(got)}")

    if raw is None:
        return
    # below the plugin: every entry is a whole record under a key the workload wrote
    stored = dict(raw())
    unknown = sorted(set(stored) - touched)
    if unknown:
        raise _fail(f"keys the workload never wrote are stored: {unknown[:5]}")
    missing = sorted(set(acknowledged) - set(stored) - {in_flight_key})
    if missing:
        raise _fail(f"acknowledged keys are missing below the plugin: {missing[:5]}")
    for key, value in sorted(stored.items()):
        if not is_whole_record(value):
            raise _fail(f"{key}: partial record of {len(value)} bytes below the plugin")
