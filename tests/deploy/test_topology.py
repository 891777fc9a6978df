"""The deployment topology of docs/deploy.md, simulated on one machine (issue 13, part 4).

Two ``weaviate-ext serve`` processes (two pods) share three replicas of a remote gRPC
vectorizer (a headless service's pods) that listen on 127.0.0.2, .3 and .4, one port,
**behind one name**: ``dns:///plugin.test:PORT``. The name exists only for the two
servers: each runs in a private mount namespace (``unshare --mount``) where a hosts
file listing the three addresses is bind-mounted over ``/etc/hosts``; the machine's own
``/etc/hosts`` is never touched. Where that cannot be done (not root, no namespaces) the
address falls back to ``ipv4:127.0.0.2:P,127.0.0.3:P,127.0.0.4:P``, the same three
replicas under the one ``spec.address``, and the summary says why.

Four client threads send ``/vectors`` alternately to both servers (bounded in count and
time; one new connection per request, so "refused" is unambiguous) while:

1. steady load;
2. replica 127.0.0.3 is killed (SIGKILL) mid-load;
3. it is started again on the same address, and load goes on until it has calls again;
4. server A gets SIGTERM while at least one of its requests is inside the plugin;
   the clients go on with server B alone once A refuses them (as a load balancer would),
   re-sending a refused request to B.

Asserted: every request to B, and every request to A before its SIGTERM, answered 200
with exactly the vector the plugin's model gives for that text; requests to A after the
SIGTERM either did the same or were refused without reaching any plugin — never a 5xx,
never a connection cut after the plugin saw the request; at least one request was inside
the plugin at the SIGTERM and completed; every refused request succeeded on B; the
restarted replica got ``Init`` from both servers and calls again. Run with ``-s`` for a
summary per phase.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL_SOURCE = ROOT / "examples" / "plugins" / "grpc-vectorizer" / "src" / "hashing_model.py"
NAME = "plugin.test"
REPLICA_HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
KILLED = 1
"""The index in :data:`REPLICA_HOSTS` of the replica that is killed and brought back."""
DIMENSIONS = 64
DELAY = 0.25
"""Seconds each plugin call takes, so that calls are in flight when things die."""
WORKERS = 4
MAX_REQUESTS = 2000
"""Upper bound of requests the load sends in all (it also stops on time)."""
PHASE_SECONDS = 1.5
PHASES = (
    "steady",
    "replica killed",
    "replica restarted",
    "replica back",
    "A got SIGTERM",
    "A gone",
)
"""The phases of the test, in order (a request is counted in the phase it started in)."""
WAIT = 30.0
"""The longest wait for anything (a start, a replica back, a server gone)."""

# The replica: the grpc-vectorizer example's hashing model behind the Python SDK, slowed
# down, writing one line per Init and per call (before answering) to its log.
REPLICA_SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import time

    sys.path.insert(0, os.environ["REPLICA_MODEL_DIR"])

    from hashing_model import load_model
    from weaviate_plugin_sdk import VectorizerPlugin, serve


    class SlowRecorder(VectorizerPlugin):
        def __init__(self):
            self.model = load_model(int(os.environ["REPLICA_DIMENSIONS"]))
            self.delay = float(os.environ["REPLICA_DELAY"])
            self.log = os.open(os.environ["REPLICA_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)

        def _write(self, line):
            os.write(self.log, (line + "\\n").encode())

        def setup(self, config):
            self._write("init")

        def vectorize_text(self, text):
            self._write("call " + text)
            time.sleep(self.delay)
            return self.model.encode(text)


    serve(SlowRecorder(), max_workers=16)
    """
)


def _model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("topology_hashing_model", MODEL_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODEL: Any = _model().load_model(DIMENSIONS)


def expected(text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    """What the replicas' model answers for ``text``."""
    return np.asarray(MODEL.encode(text), dtype=np.float32)


def eventually(check: Callable[[], bool], timeout: float = WAIT, every: float = 0.05) -> bool:
    """Poll ``check`` every ``every`` seconds until it holds or ``timeout`` passes."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if check():
            return True
        time.sleep(every)
    return check()


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Send ``sig``, wait up to 20 s, then SIGKILL; always reaped."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait(timeout=10)


def free_shared_port() -> int:
    """A port free on all of :data:`REPLICA_HOSTS` at once."""
    for _ in range(20):
        with socket.socket() as first:
            first.bind((REPLICA_HOSTS[0], 0))
            port = int(first.getsockname()[1])
            try:
                for host in REPLICA_HOSTS[1:]:
                    with socket.socket() as other:
                        other.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free on all the replica addresses")


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


# -- one name for three addresses --------------------------------------------------------


@dataclass
class Naming:
    """How the servers reach the replicas: ``address`` (the manifest's
    ``spec.address``) and ``wrap`` (the command prefix that runs a server where the
    name resolves; empty for the ``ipv4:`` fallback)."""

    address: str
    wrap: list[str]
    note: str


def naming(directory: Path, port: int) -> Naming:
    """``dns:///plugin.test:PORT`` in a private mount namespace if this machine allows
    it (checked: ``getaddrinfo`` there gives the three addresses), else the ``ipv4:`` list."""
    listing = "ipv4:" + ",".join(f"{h}:{port}" for h in REPLICA_HOSTS)
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return Naming(listing, [], "fallback ipv4: list (needs root and unshare(1))")
    hosts = directory / "hosts"
    own = Path("/etc/hosts").read_text(encoding="utf-8", errors="replace")
    hosts.write_text(own + "".join(f"\n{h} {NAME}" for h in REPLICA_HOSTS) + "\n")
    wrap = [
        unshare,
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        str(hosts),
    ]
    probe = (
        "import socket, sys; "
        f"infos = socket.getaddrinfo({NAME!r}, {port}, type=socket.SOCK_STREAM); "
        "print(','.join(sorted({i[4][0] for i in infos})))"
    )
    try:
        done = subprocess.run(
            [*wrap, sys.executable, "-c", probe], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Naming(listing, [], f"fallback ipv4: list (namespace probe failed: {exc})")
    found = done.stdout.strip()
    if done.returncode != 0 or found != ",".join(REPLICA_HOSTS):
        why = (done.stderr.strip().splitlines() or [found or "no output"])[-1]
        return Naming(listing, [], f"fallback ipv4: list (namespace probe: {why})")
    return Naming(
        f"dns:///{NAME}:{port}", wrap, f"{NAME} -> {found} in the servers' mount namespace"
    )


# -- replicas and servers ----------------------------------------------------------------


class Replica:
    """One replica process on ``host:port``; each start logs to a new file."""

    def __init__(self, host: str, port: int, directory: Path, script: Path) -> None:
        self.host = host
        self.port = port
        self.directory = directory
        self.script = script
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    @property
    def log(self) -> Path:
        """The log of the current (last) start."""
        return self.logs[-1]

    def lines(self, start: int = -1) -> list[str]:
        """The lines the replica wrote in start number ``start`` (default: the last)."""
        try:
            return self.logs[start].read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def calls(self, start: int = -1) -> set[str]:
        """The texts the replica was called with in start number ``start``."""
        return {line[5:] for line in self.lines(start) if line.startswith("call ")}

    def start(self) -> None:
        """Start it and wait until it listens."""
        log = self.directory / f"replica-{self.host}-{len(self.logs)}.log"
        self.logs.append(log)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            "REPLICA_MODEL_DIR": str(MODEL_SOURCE.parent),
            "REPLICA_DIMENSIONS": str(DIMENSIONS),
            "REPLICA_DELAY": str(DELAY),
            "REPLICA_LOG": str(log),
        }
        with (self.directory / f"replica-{self.host}.out").open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(self.script), "--address", f"{self.host}:{self.port}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

        def listening() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"replica {self.host} exited: {self.output()}")
            with socket.socket() as probe:
                return probe.connect_ex((self.host, self.port)) == 0

        if not eventually(listening):
            raise RuntimeError(f"replica {self.host} does not listen: {self.output()}")

    def output(self) -> str:
        """What the replica printed."""
        path = self.directory / f"replica-{self.host}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the replica dies mid-call."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop it if it runs."""
        if self.process is not None:
            stop_process(self.process)


class Server:
    """One ``weaviate-ext serve`` process on 127.0.0.1 (in the naming's namespace)."""

    def __init__(self, label: str, directory: Path, plugins: Path, wrap: list[str]) -> None:
        self.label = label
        self.plugins = plugins
        self.wrap = wrap
        self.log = directory / f"serve-{label}.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """What it logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self, port: int) -> None:
        """Start it on ``port`` (no waiting)."""
        self.port = port
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("AUTHENTICATION_ALLOWED_TOKENS", "ENABLE_CACHE", "WEAVIATE_EXT_PLUGINS")
            and not k.startswith(("WEAVIATE_EXT_SERVE_", "WEAVIATE_EXT_GRPC_"))
        }
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        env["WEAVIATE_EXT_GRPC_HEALTH_INTERVAL"] = "0.2"
        env["WEAVIATE_EXT_GRPC_START_TIMEOUT"] = "10"
        argv = [
            *self.wrap,
            sys.executable,
            "-m",
            "weaviate_ext",
            "--no-discover",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--plugins",
            str(self.plugins),
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
            )

    def wait_ready(self) -> None:
        """Wait until ``/.well-known/ready`` answers 204."""

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.label} exited:\n{self.output()}")
            try:
                response = httpx.get(f"{self.url}/.well-known/ready", timeout=2)
            except httpx.TransportError:
                return False
            if "failed" in response.text:  # it will not get ready: say why now
                raise RuntimeError(f"server {self.label}: {response.text}\n{self.output()}")
            return response.status_code == 204

        if not eventually(ready, timeout=60):
            raise RuntimeError(f"server {self.label} not ready:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 20 s) if it runs."""
        if self.process is not None:
            stop_process(self.process)


@dataclass
class Topology:
    """Everything the test started."""

    naming: Naming
    replicas: list[Replica]
    servers: list[Server]

    def calls(self) -> set[str]:
        """Every text any replica (any start of it) was called with."""
        return {
            line[5:]
            for replica in self.replicas
            for start in range(len(replica.logs))
            for line in replica.lines(start)
            if line.startswith("call ")
        }


def manifest(directory: Path, address: str) -> Path:
    """The remote vectorizer's plugin directory."""
    plugin = directory / "plugins" / "remote-embedder"
    plugin.mkdir(parents=True)
    (plugin / "plugin.yaml").write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\n"
        "metadata: {name: remote-embedder, version: 1.0.0}\n"
        f"spec:\n  type: vectorizer\n  runtime: grpc\n  address: {address}\n"
        f"  timeout: 20s\n  capabilities: {{dimensions: {DIMENSIONS}}}\n"
    )
    return plugin.parent


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    """Three replicas behind one name and two servers using them; all stopped after."""
    port = free_shared_port()
    named = naming(tmp_path, port)
    script = tmp_path / "replica.py"
    script.write_text(REPLICA_SCRIPT)
    replicas = [Replica(host, port, tmp_path, script) for host in REPLICA_HOSTS]
    plugins = manifest(tmp_path, named.address)
    servers = [Server(label, tmp_path, plugins, named.wrap) for label in ("A", "B")]
    try:
        for replica in replicas:
            replica.start()
        for server, server_port in zip(servers, free_ports(len(servers)), strict=True):
            server.start(server_port)
        for server in servers:
            server.wait_ready()
        # both servers sent Init to every replica (they join the rotation after it)
        assert eventually(lambda: all(r.lines().count("init") == 2 for r in replicas)), [
            r.lines() for r in replicas
        ]
        yield Topology(named, replicas, servers)
    finally:
        for server in servers:
            server.stop()
        for replica in replicas:
            replica.stop()


# -- the load ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request: where it went, when, and what came back."""

    text: str
    server: str
    phase: str
    started: float
    ended: float = 0.0
    status: int | None = None
    error: str = ""
    refused: bool = False
    """The connection was refused: the server no longer listens."""
    correct: bool = False
    """200 with exactly the expected vector."""
    resent: Outcome | None = None
    """The request sent again to the other server after this one was refused (its text
    marked ``resent``, to tell which server's request reached a plugin)."""

    @property
    def kind(self) -> str:
        """``200``, ``503``..., ``refused`` or the transport error's name."""
        if self.status is not None:
            return str(self.status) if self.correct or self.status != 200 else "200 wrong vector"
        return "refused" if self.refused else self.error.partition(":")[0]


@dataclass
class Load:
    """Client threads sending ``/vectors`` alternately to both servers."""

    servers: dict[str, str]
    phase: str = "steady"
    outcomes: list[Outcome] = field(default_factory=list)
    in_flight: dict[str, str] = field(default_factory=dict)
    """Text -> server of the requests waiting for an answer."""
    avoid: set[str] = field(default_factory=set)
    """Servers that refused a connection: the clients stop sending to them."""
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start the client threads."""
        for number in range(WORKERS):
            thread = threading.Thread(target=self._work, args=(number,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def finish(self) -> None:
        """Stop the threads (each finishes its request in flight)."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=WAIT)
        assert not any(t.is_alive() for t in self.threads), "a client thread hangs"

    def pending(self, server: str | None = None) -> set[str]:
        """The texts of requests (to ``server``, or to any) waiting for an answer."""
        with self.lock:
            return {t for t, where in self.in_flight.items() if server in (None, where)}

    def _work(self, number: int) -> None:
        labels = sorted(self.servers)
        # one new connection per request: a refusal is then a refused connect
        limits = httpx.Limits(max_keepalive_connections=0)
        clients = {
            label: httpx.Client(base_url=url, timeout=WAIT, limits=limits)
            for label, url in self.servers.items()
        }
        try:
            for sent in itertools.count():
                if self.stop.is_set():
                    return
                with self.lock:
                    if len(self.outcomes) >= MAX_REQUESTS:
                        return
                    usable = [label for label in labels if label not in self.avoid]
                if not usable:
                    return
                label = usable[(number + sent) % len(usable)]
                text = f"worker {number} request {sent} via {label} ({self.phase})"
                outcome = self._send(clients[label], label, text)
                if outcome.status is None:  # no answer: send it to the other server
                    with self.lock:
                        if outcome.refused:
                            self.avoid.add(label)
                        others = [x for x in labels if x not in self.avoid and x != label]
                    if others:
                        outcome.resent = self._send(clients[others[0]], others[0], text + " resent")
        finally:
            for client in clients.values():
                client.close()

    def _send(self, client: httpx.Client, label: str, text: str) -> Outcome:
        outcome = Outcome(text, label, self.phase, time.monotonic())
        with self.lock:
            self.in_flight[text] = label
        try:
            response = client.post("/vectors", json={"text": text})
        except httpx.ConnectError as exc:
            outcome.refused = True
            outcome.error = f"{type(exc).__name__}: {exc}"
        except httpx.TransportError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        else:
            outcome.status = response.status_code
            if response.status_code == 200:
                vector = np.asarray(response.json()["vector"], dtype=np.float32)
                outcome.correct = bool(np.array_equal(vector, expected(text)))
            else:
                outcome.error = response.text[:300]
        outcome.ended = time.monotonic()
        with self.lock:
            del self.in_flight[text]
            self.outcomes.append(outcome)
        return outcome


def summary(
    load: Load, topology: Topology, cut: set[str], inside_texts: set[str], notes: list[str]
) -> str:
    """Requests per phase and server, by outcome."""
    table: dict[tuple[str, str], Counter[str]] = {}
    for outcome in load.outcomes:
        table.setdefault((outcome.phase, outcome.server), Counter())[outcome.kind] += 1
    lines = [f"topology: {topology.naming.note}; address {topology.naming.address}"]
    for phase in PHASES:
        parts = [
            f"{server}: " + ", ".join(f"{k} x{n}" for k, n in sorted(table[phase, server].items()))
            for server in ("A", "B")
            if (phase, server) in table
        ]
        lines.append(f"  {phase:<22} " + "; ".join(parts))
    inside = [o for o in load.outcomes if o.text in inside_texts]
    lines.append(
        f"  inside the plugin through A at its SIGTERM: {len(inside)} "
        f"({', '.join(o.kind for o in inside)})"
    )
    lines.append(f"  calls cut by the SIGKILL (made again elsewhere): {len(cut)}")
    for replica in topology.replicas:
        counts = [
            sum(line.startswith("call ") for line in replica.lines(n))
            for n in range(len(replica.logs))
        ]
        lines.append(f"  replica {replica.host}: calls per start {counts}")
    return "\n".join([*lines, *notes])


# -- the test ----------------------------------------------------------------------------


def test_two_servers_three_replicas_lose_no_request(topology: Topology) -> None:
    """A replica killed and brought back, a server stopped with SIGTERM: nothing lost."""
    server_a, server_b = topology.servers
    killed = topology.replicas[KILLED]
    load = Load({"A": server_a.url, "B": server_b.url})
    notes: list[str] = []
    sigterm_at = float("inf")
    cut: set[str] = set()
    inside: set[str] = set()
    try:
        load.start()
        time.sleep(PHASE_SECONDS)

        # SIGKILL the replica while requests wait on it: right after a call started
        # there (checked every 10 ms; a call lasts DELAY)
        before = killed.calls()

        def busy() -> bool:
            return bool((killed.calls() - before) & load.pending())

        assert eventually(busy, timeout=10, every=0.01), "no call reached the replica"
        load.phase = "replica killed"
        killed.kill()
        cut = load.pending() & killed.calls(0)
        time.sleep(PHASE_SECONDS)

        load.phase = "replica restarted"
        killed.start()
        assert eventually(lambda: any(x.startswith("call ") for x in killed.lines())), (
            "the restarted replica got no call: "
            f"{killed.lines()}\n{server_a.output()[-3000:]}\n{server_b.output()[-3000:]}"
        )
        load.phase = "replica back"
        time.sleep(PHASE_SECONDS / 2)

        # SIGTERM to A right after one of its requests reached the plugin
        assert server_a.process is not None
        seen = topology.calls()

        def inside_plugin() -> bool:
            nonlocal inside
            inside = (topology.calls() - seen) & load.pending("A")
            return bool(inside)

        assert eventually(inside_plugin, timeout=10, every=0.01), "no request to A got in"
        sigterm_at = time.monotonic()
        server_a.process.send_signal(signal.SIGTERM)
        load.phase = "A got SIGTERM"
        server_a.process.wait(timeout=WAIT)
        notes.append(f"  A exited with {server_a.process.returncode}")
        load.phase = "A gone"
        time.sleep(PHASE_SECONDS)
    finally:
        load.finish()
    print("\n" + summary(load, topology, cut, inside, notes))

    outcomes = load.outcomes
    reached = topology.calls()
    assert len(outcomes) < MAX_REQUESTS, "the load hit its bound: the phases were not seen"
    phases = {o.phase for o in outcomes}
    assert set(PHASES) - {"A got SIGTERM"} <= phases, phases

    # B: every request answered, with the right vector
    for outcome in outcomes:
        if outcome.server == "B":
            assert outcome.correct, f"lost: {outcome}"
    # A: the same, except requests its SIGTERM kept out: refused at connect (or, in the
    # instant the listener closes, a connection closed before the request was read),
    # never seen by any plugin, and answered by B when sent there
    for outcome in outcomes:
        if outcome.server == "A" and not outcome.correct:
            assert outcome.status is None, f"A failed a request: {outcome}"
            assert outcome.ended >= sigterm_at, f"A failed a request before SIGTERM: {outcome}"
            assert outcome.text not in reached, f"A cut a request a plugin saw: {outcome}"
            assert outcome.resent is not None and outcome.resent.correct, outcome
            assert outcome.resent.server == "B", outcome
    assert any(o.refused for o in outcomes), "A was never seen to refuse"

    # the requests inside the plugin when A got SIGTERM finished, with their answers
    assert inside, "no request was inside the plugin at the SIGTERM"
    assert all(o.correct for o in outcomes if o.text in inside), inside
    assert any(o.ended > sigterm_at for o in outcomes if o.text in inside), "none in flight"

    # the calls the SIGKILL cut were made again on another replica and answered
    others = set().union(*(r.calls() for r in topology.replicas if r is not killed))
    assert cut & others, f"no call cut by the kill was retried elsewhere: {cut}"
    assert all(o.correct for o in outcomes if o.text in cut)

    # the killed replica: both servers sent Init to it again when it came back, and it
    # took calls again
    assert killed.lines().count("init") == 2, killed.lines()
    assert any(x.startswith("call ") for x in killed.lines())
    served_after = {o.text for o in outcomes if o.phase in ("replica back", "A gone")}
    assert any(x[5:] in served_after for x in killed.lines() if x.startswith("call "))
