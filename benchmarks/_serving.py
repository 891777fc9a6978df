"""What the serve benchmarks share: a free port, a server process run until it is
ready, its CPU time, and a nearest-rank percentile. Imported by
``benchmarks/serve_overhead.py`` and ``benchmarks/serve_throughput.py`` (the scripts'
own directory is on ``sys.path``)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used by process ``pid`` so far; ``None`` without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ready(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/.well-known/ready")
            return connection.getresponse().status == 204
        finally:
            connection.close()
    except OSError:
        return False


@contextmanager
def ready_server(argv: list[str], port: int, timeout: float = 180) -> Iterator[tuple[int, int]]:
    """Run ``argv`` (a server on 127.0.0.1:``port``, with this checkout on
    ``PYTHONPATH`` and no inherited ``WEAVIATE_EXT_SERVE_*``/``ENABLE_CACHE`` setting)
    until it answers ``/.well-known/ready``; yields the port and the process id; stops it
    (SIGTERM, SIGKILL after 20 s) afterwards."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for name in list(env):
        if name.startswith("WEAVIATE_EXT_SERVE_") or name == "ENABLE_CACHE":
            del env[name]
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while not _ready(port):
                if child.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"server exited:\n{log.read().decode(errors='replace')}")
                if time.monotonic() > deadline:
                    raise RuntimeError("server not ready")
                time.sleep(0.05)
            yield port, child.pid
        finally:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
