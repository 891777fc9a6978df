"""Remote mode (``spec.address``): every replica gets ``Init``, per-replica health
checks take replicas out of rotation and put them back, a restarted replica gets
``Init`` again before it serves, and with no replica serving calls fail with
:class:`PluginUnavailable` while the host keeps serving.

The replicas are the SDK's server (:func:`weaviate_ext.sdk.server.build_server`) run in
this process on 127.0.0.x with a small recording vectorizer; the manifest lists them
(``ipv4:a:p,b:p``) or names them (``dns:///name:port`` with a fake resolver).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2
from grpc_helpers import (
    EXAMPLES,
    FAULTY,
    eventually,
    fake_dns,
    faulty_manifest,
    sdk_pythonpath,
)

from weaviate_ext import PluginLoadError, PluginManager, PluginUnavailable
from weaviate_ext.cli import cli
from weaviate_ext.grpc.remote import Target, parse_target, resolve, split_host_port
from weaviate_ext.sdk import VectorizerPlugin
from weaviate_ext.sdk.server import build_server

SECRET = "r3mote-Secret-77aa"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Recorder(VectorizerPlugin):
    """Answers ``[replica number, Inits received, 0, 0]`` and counts its calls,
    separately those that came before any ``Init``."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.inits: list[dict[str, Any]] = []
        self.calls = 0
        self.before_init = 0

    def setup(self, config: Mapping[str, Any]) -> None:
        self.inits.append(dict(config))

    def vectorize_text(self, text: str) -> Any:
        self.calls += 1
        if not self.inits:
            self.before_init += 1
        return np.array([self.number, len(self.inits), 0, 0], dtype=np.float32)


class Picky(Recorder):
    """A replica whose ``Init`` fails, quoting the key it was given."""

    def setup(self, config: Mapping[str, Any]) -> None:
        super().setup(config)
        raise ValueError(f"will not take key {config.get('apiKey')}")


class Replica:
    """One running replica: its server, plugin and health service."""

    def __init__(
        self, number: int, host: str, port: int, serving_at_once: bool, picky: bool = False
    ) -> None:
        self.number = number
        self.plugin = (Picky if picky else Recorder)(number)
        self.server, self.service = build_server(self.plugin, max_workers=4)
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        assert self.port, f"cannot listen on {host}:{port}"
        self.address = f"{host}:{self.port}"
        self.server.start()
        if serving_at_once:  # as `serve()` does standalone: SERVING before any Init
            self.health(SERVING)

    def health(self, status: int) -> None:
        self.service.health.set("", status)

    def stop(self) -> None:
        self.server.stop(grace=0).wait(5)


class Fleet:
    """Replicas started by a test, stopped after it."""

    def __init__(self) -> None:
        self.replicas: list[Replica] = []

    def start(
        self,
        number: int,
        host: str = "127.0.0.1",
        port: int = 0,
        serving_at_once: bool = False,
        picky: bool = False,
    ) -> Replica:
        replica = Replica(number, host, port, serving_at_once, picky)
        self.replicas.append(replica)
        return replica

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    started = Fleet()
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", sdk_pythonpath())
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_HEALTH_INTERVAL", "0.1")
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_RESOLVE_INTERVAL", "0.2")
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_START_TIMEOUT", "5")


@pytest.fixture
def host() -> Iterator[PluginManager]:
    """A manager with the in-process hash vectorizer loaded as a bystander."""
    with PluginManager(discover=False) as manager:
        manager.load(EXAMPLES / "python-hash-vectorizer" / "plugin.yaml")
        yield manager


def still_serving(manager: PluginManager) -> None:
    assert manager.get_vectorizer("hash-embedder").vectorize_text("ok").shape == (768,)


def remote_manifest(
    directory: Path, address: str, name: str = "remote", dimensions: int = 4
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plugin.yaml"
    path.write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\n"
        f"metadata: {{name: {name}, version: 1.0.0}}\n"
        f"spec:\n  type: vectorizer\n  runtime: grpc\n  address: {address}\n"
        f"  timeout: 10s\n  capabilities: {{dimensions: {dimensions}}}\n"
        "  config:\n    apiKey: {type: string, secret: true, required: true}\n"
    )
    return path


def listing(replicas: list[Replica]) -> str:
    return "ipv4:" + ",".join(r.address for r in replicas)


def load(manager: PluginManager, directory: Path, address: str, dimensions: int = 4) -> Any:
    manifest = remote_manifest(directory, address, dimensions=dimensions)
    manager.load(manifest, config={"apiKey": SECRET})
    return manager.registry.get_plugin("remote")


def status(plugin: Any) -> str:
    return str(plugin.runtime_status()[0])


def answered_by(manager: PluginManager, calls: int) -> Counter[int]:
    handle = manager.get_vectorizer("remote")
    return Counter(int(handle.vectorize_text(f"text {i}")[0]) for i in range(calls))


# -- every replica gets Init; calls go round robin ---------------------------------------


def test_init_reaches_every_replica_and_calls_go_round_robin(
    host: PluginManager, fleet: Fleet, tmp_path: Path
) -> None:
    replicas = [fleet.start(n) for n in (1, 2, 3)]
    plugin = load(host, tmp_path, listing(replicas))
    assert eventually(lambda: status(plugin) == "serving"), plugin.runtime_status()
    for replica in replicas:
        assert replica.plugin.inits == [{"apiKey": SECRET}]  # once each, secret included
    counts = answered_by(host, 30)
    assert set(counts) == {1, 2, 3}
    assert all(count >= 8 for count in counts.values()), counts
    assert all(r.plugin.before_init == 0 for r in replicas)
    assert plugin.plugin_health() is True
    still_serving(host)


def test_a_replica_whose_init_fails_stays_out_and_says_why_without_the_secret(
    host: PluginManager, fleet: Fleet, tmp_path: Path
) -> None:
    good, picky = fleet.start(1), fleet.start(2, picky=True)
    plugin = load(host, tmp_path, listing([good, picky]))
    assert eventually(lambda: "Init failed" in str(plugin.runtime_status()[1]))
    state, reason = plugin.runtime_status()
    assert state == "degraded"
    assert f"{picky.address}: Init failed: ValueError: will not take key" in str(reason)
    assert SECRET not in str(reason)
    assert answered_by(host, 10) == Counter({1: 10})
    assert picky.plugin.calls == 0


# -- health: out of rotation and back ------------------------------------------------------


def test_unhealthy_replica_leaves_the_rotation_and_comes_back(
    host: PluginManager, fleet: Fleet, tmp_path: Path
) -> None:
    first, second = fleet.start(1), fleet.start(2)
    plugin = load(host, tmp_path, listing([first, second]))
    assert eventually(lambda: status(plugin) == "serving")
    second.health(NOT_SERVING)
    assert eventually(lambda: status(plugin) == "degraded")
    reason = plugin.runtime_status()[1]
    assert reason is not None
    assert f"1 of 2 replicas serving; out: {second.address}: " in reason
    assert "NOT_SERVING" in reason
    row = {r.name: r for r in host.plugins()}["remote"]
    assert row.status == "degraded" and row.reason == reason
    before = second.plugin.calls
    assert answered_by(host, 20) == Counter({1: 20})
    assert second.plugin.calls == before
    second.health(SERVING)
    assert eventually(lambda: status(plugin) == "serving")
    assert set(answered_by(host, 20)) == {1, 2}
    assert second.plugin.inits == [{"apiKey": SECRET}]  # same connection: no new Init
    still_serving(host)


def test_no_replica_serving_is_plugin_unavailable_and_the_host_keeps_serving(
    host: PluginManager, fleet: Fleet, tmp_path: Path
) -> None:
    first, second = fleet.start(1), fleet.start(2)
    plugin = load(host, tmp_path, listing([first, second]))
    assert eventually(lambda: status(plugin) == "serving")
    first.health(NOT_SERVING)
    second.health(NOT_SERVING)
    assert eventually(lambda: status(plugin) == "unavailable")
    handle = host.get_vectorizer("remote")
    with pytest.raises(PluginUnavailable) as caught:
        handle.vectorize_text("anyone?")
    message = str(caught.value)
    assert "plugin 'remote' vectorize_text: the service at ipv4:" in message
    assert "none of its 2 replicas is serving" in message
    assert first.address in message and second.address in message
    assert "NOT_SERVING" in message and "Traceback" not in message
    row = {r.name: r for r in host.plugins()}["remote"]
    assert row.status == "unavailable" and "none of its 2 replicas" in str(row.reason)
    assert plugin.plugin_health() is False
    still_serving(host)
    first.health(SERVING)
    assert eventually(lambda: status(plugin) == "degraded")
    assert handle.vectorize_text("back")[0] == 1


# -- a replica that goes away and comes back ---------------------------------------------


def test_restarted_replica_gets_init_again_before_it_serves(
    host: PluginManager, fleet: Fleet, tmp_path: Path
) -> None:
    first, second = fleet.start(1), fleet.start(2)
    plugin = load(host, tmp_path, listing([first, second]))
    assert eventually(lambda: status(plugin) == "serving")
    handle = host.get_vectorizer("remote")
    errors: list[Exception] = []
    answers: Counter[int] = Counter()
    stop = threading.Event()

    def keep_calling() -> None:  # calls all along: while it is down and as it comes back
        while not stop.is_set():
            try:
                answers[int(handle.vectorize_text("busy")[0])] += 1
            except Exception as exc:
                errors.append(exc)

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        second.stop()
        # calls right after the replica went away still succeed: another one answers
        assert answered_by(host, 20) == Counter({1: 20})
        assert eventually(lambda: status(plugin) == "degraded")
        reason = str(plugin.runtime_status()[1])
        assert second.address in reason
        # it comes back as a new process that says SERVING before any Init, as a
        # standalone `serve()` does: the host must Init it before sending it calls
        again = fleet.start(2, port=second.port, serving_at_once=True)
        assert eventually(lambda: status(plugin) == "serving"), plugin.runtime_status()
        assert eventually(lambda: again.plugin.calls >= 10)
    finally:
        stop.set()
        caller.join(30)
    assert errors == []
    assert again.plugin.inits == [{"apiKey": SECRET}]
    assert again.plugin.before_init == 0
    assert answers[1] > 0 and answers[2] > 0
    counts = answered_by(host, 30)
    assert counts[2] >= 8, counts
    still_serving(host)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def standalone(port: int) -> subprocess.Popen[bytes]:
    """``faulty.py`` served standalone on 127.0.0.1:port (SERVING before any Init)."""
    env = {**os.environ, "PYTHONPATH": sdk_pythonpath()}
    env.pop("WEAVIATE_EXT_GRPC_SOCKET", None)
    return subprocess.Popen(
        [sys.executable, str(FAULTY), "--mode", "normal", "--address", f"127.0.0.1:{port}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_killed_replica_process_gets_init_again_when_it_is_back(
    host: PluginManager, tmp_path: Path
) -> None:
    port = free_port()
    replica = standalone(port)
    try:
        plugin = load(host, tmp_path, f"ipv4:127.0.0.1:{port}", dimensions=8)
        handle = host.get_vectorizer("remote")
        assert handle.vectorize_text("secret")[0] == len(SECRET)  # Init delivered it
        replica.kill()
        replica.wait(10)
        assert eventually(lambda: status(plugin) == "unavailable")
        with pytest.raises(PluginUnavailable, match=r"its replica is not serving"):
            handle.vectorize_text("x")
        still_serving(host)
        replica = standalone(port)  # a new process: it knows no configuration yet
        assert eventually(lambda: status(plugin) == "serving"), plugin.runtime_status()
        assert handle.vectorize_text("secret")[0] == len(SECRET)  # Init sent again
    finally:
        replica.kill()
        replica.wait(10)


def test_a_replica_down_at_load_joins_when_it_starts(
    host: PluginManager, fleet: Fleet, tmp_path: Path
) -> None:
    first = fleet.start(1)
    port = free_port()  # nothing listens there yet
    plugin = load(host, tmp_path, f"ipv4:{first.address},127.0.0.1:{port}")
    state, reason = plugin.runtime_status()
    assert state == "degraded" and f"127.0.0.1:{port}: " in str(reason)
    assert answered_by(host, 5) == Counter({1: 5})
    late = fleet.start(2, port=port)
    assert eventually(lambda: status(plugin) == "serving"), plugin.runtime_status()
    assert late.plugin.inits == [{"apiKey": SECRET}]
    assert set(answered_by(host, 20)) == {1, 2}


def test_no_replica_reachable_at_load_is_a_load_error(
    host: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_START_TIMEOUT", "1")
    ports = [free_port(), free_port()]
    address = f"ipv4:127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    with pytest.raises(PluginLoadError) as caught:
        load(host, tmp_path, address)
    message = str(caught.value)
    assert f"service at {address}: 127.0.0.1:{ports[0]}: accepted no connection" in message
    assert f"; 127.0.0.1:{ports[1]}: accepted no connection within 1s" in message
    assert "remote" not in host.names()
    still_serving(host)


# -- DNS: replicas appear and disappear ---------------------------------------------------


def test_dns_name_replicas_join_and_leave_as_the_name_resolves(
    host: PluginManager, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fleet.start(1, host="127.0.0.1")
    try:
        second = fleet.start(2, host="127.0.0.2", port=first.port)
    except AssertionError:
        pytest.skip("cannot listen on 127.0.0.2 here")
    table = {"embedder.plugins.test": ["127.0.0.1"]}
    fake_dns(monkeypatch, table)
    plugin = load(host, tmp_path, f"dns:///embedder.plugins.test:{first.port}")
    assert [r.address for r in plugin.connection.service.replicas] == [first.address]
    assert answered_by(host, 5) == Counter({1: 5})
    table["embedder.plugins.test"] = ["127.0.0.1", "127.0.0.2"]  # scaled out
    assert eventually(lambda: len(plugin.connection.service.rotation) == 2)
    assert second.plugin.inits == [{"apiKey": SECRET}]
    assert set(answered_by(host, 20)) == {1, 2}
    table["embedder.plugins.test"] = ["127.0.0.2"]  # scaled in
    assert eventually(lambda: plugin.connection.service.count == 1)
    assert answered_by(host, 10) == Counter({2: 10})
    assert status(plugin) == "serving"


# -- the listing ---------------------------------------------------------------------------


def test_list_shows_process_isolation_for_both_kinds_of_grpc_plugin(
    fleet: Fleet, tmp_path: Path
) -> None:
    replica = fleet.start(1)
    remote_manifest(tmp_path / "plugins" / "remote", listing([replica]))
    faulty_manifest(tmp_path / "plugins" / "faulty")
    args = ["--no-discover", "--plugins", str(tmp_path / "plugins")]
    config = ["--config", f"remote.apiKey={SECRET}"]
    result = CliRunner().invoke(cli, [*args, *config, "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0].split()
    column = header.index("ISOLATION")
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["remote"][column] == "process"
    assert rows["faulty"][column] == "process+landlock(fs,tcp)+netns"
    assert rows["remote"][header.index("STATUS")] == "loaded"
    result = CliRunner().invoke(cli, [*args, *config, "list", "--json"])
    by_name = {row["name"]: row for row in json.loads(result.stdout)}
    assert by_name["remote"]["isolation"].startswith("process: a separate gRPC service")
    assert by_name["faulty"]["isolation"].startswith("process+landlock(fs,tcp)+netns: own")
    assert SECRET not in result.output


# -- parsing addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind", "host_port", "replicas"),
    [
        ("unix:///run/p.sock", "static", None, [("unix:///run/p.sock", "unix:/run/p.sock")]),
        ("unix:/run/p.sock", "static", None, [("unix:/run/p.sock", "unix:/run/p.sock")]),
        (
            "ipv4:10.0.0.1:5,10.0.0.2:6",
            "static",
            None,
            [("10.0.0.1:5", "ipv4:10.0.0.1:5"), ("10.0.0.2:6", "ipv4:10.0.0.2:6")],
        ),
        ("ipv6:[::1]:7", "static", None, [("[::1]:7", "ipv6:[::1]:7")]),
        ("dns:///svc.local:50051", "dns", ("svc.local", 50051), []),
        ("dns:svc.local:50051", "dns", ("svc.local", 50051), []),
        ("svc.local:50051", "dns", ("svc.local", 50051), []),
        ("localhost:9", "dns", ("localhost", 9), []),
        ("[::1]:9", "dns", ("::1", 9), []),
        ("svc.local", "dns", ("svc.local", 443), []),
        ("dns://8.8.8.8/svc.local:1", "opaque", None, [("dns://8.8.8.8/svc.local:1",) * 2]),
        ("xds:///svc", "opaque", None, [("xds:///svc", "xds:///svc")]),
    ],
)
def test_parse_target(
    address: str, kind: str, host_port: tuple[str, int] | None, replicas: list[Any]
) -> None:
    target = parse_target(address)
    assert target.kind == kind
    if host_port is not None:
        assert (target.host, target.port) == host_port
    assert [tuple(r) for r in target.replicas] == [tuple(r) for r in replicas]


def test_resolve_and_bad_ports() -> None:
    found = resolve(Target("dns:///127.0.0.1:5", "dns", host="127.0.0.1", port=5))
    assert found == {"127.0.0.1:5": "ipv4:127.0.0.1:5"}
    with pytest.raises(ValueError):
        split_host_port("host:port")


def test_unresolvable_name_is_a_load_error(host: PluginManager, tmp_path: Path) -> None:
    with pytest.raises(
        Exception, match=r"service at dns:///no-such-host\.invalid:1: cannot resolve"
    ):
        load(host, tmp_path, "dns:///no-such-host.invalid:1")
    still_serving(host)


def test_calls_fail_fast_while_the_channel_is_closed(
    host: PluginManager, fleet: Fleet, tmp_path: Path
) -> None:
    replica = fleet.start(1)
    plugin = load(host, tmp_path, listing([replica]))
    handle = host.get_vectorizer("remote")
    host.unload("remote")
    assert status(plugin) == "failed"
    with pytest.raises(Exception) as caught:
        handle.vectorize_text("x")
    assert not isinstance(caught.value, grpc.RpcError)
