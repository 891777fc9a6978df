"""``spec.resources``: what each runtime enforces, and saying so when it cannot.

* gRPC ``cpu`` pinning spreads plugin processes over the host's CPUs (the allocator of
  :mod:`weaviate_ext.grpc.cpus`) and gives CPUs back when a plugin is closed;
* the wasm instance pool has ``ceil(cpu)`` instances (2 without ``cpu``): as many calls
  run at once, and no more;
* a runtime that cannot enforce a field says so in exactly one warning per load naming
  it (python, native, remote gRPC); wasm and local gRPC, which enforce both, say nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cabi.helpers import build_faults, fault_manifest
from grpc_health.v1 import health_pb2
from grpc_helpers import EXAMPLES, eventually, faulty_manifest, sdk_pythonpath

from weaviate_ext import DeadlineExceeded, PluginLoadError, PluginManager
from weaviate_ext.grpc import cpus
from weaviate_ext.grpc.cpus import CpuAllocator
from weaviate_ext.sdk import VectorizerPlugin
from weaviate_ext.sdk.server import build_server


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("PYTHONPATH", sdk_pythonpath())
    monkeypatch.setenv("WEAVIATE_EXT_GRPC_STOP_GRACE", "0.5")
    monkeypatch.setenv("WEAVIATE_EXT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "wasm"))


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C fault plugin of tests/cabi, as faults.wasm and faults.so."""
    return build_faults(tmp_path_factory.mktemp("cabi-limits"))


@pytest.fixture
def host() -> Iterator[PluginManager]:
    with PluginManager(discover=False) as manager:
        yield manager


# -- the CPU allocator -----------------------------------------------------------------------


def test_the_allocator_spreads_over_the_least_loaded_cpus() -> None:
    allocator = CpuAllocator(lambda: [0, 1, 2, 3])
    assert [allocator.allocate(1) for _ in range(4)] == [{0}, {1}, {2}, {3}]
    assert allocator.allocate(0.5) == {0}  # every CPU has one: the lowest
    assert allocator.load() == {0: 2, 1: 1, 2: 1, 3: 1}
    assert allocator.allocate(2) == {1, 2}
    allocator.release({0})
    allocator.release({0})
    assert allocator.load() == {1: 2, 2: 2, 3: 1}
    assert allocator.allocate(1.5) == {0, 3}


def test_the_allocator_does_not_pin_without_cpu_or_with_every_cpu() -> None:
    allocator = CpuAllocator(lambda: [0, 1, 2, 3])
    assert allocator.allocate(None) is None
    assert allocator.allocate(4) is None
    assert allocator.allocate(3.5) is None
    assert allocator.allocate(3) == {0, 1, 2}
    allocator.release(None)
    assert allocator.load() == {0: 1, 1: 1, 2: 1}


def test_the_allocator_only_hands_out_cpus_the_host_may_run_on() -> None:
    allocator = CpuAllocator(lambda: [2, 5, 7])
    assert [allocator.allocate(1) for _ in range(4)] == [{2}, {5}, {7}, {2}]
    host = CpuAllocator()
    chosen = host.allocate(1)
    if len(os.sched_getaffinity(0)) > 1:
        assert chosen is not None and chosen <= os.sched_getaffinity(0)


def test_the_allocator_is_thread_safe() -> None:
    allocator = CpuAllocator(lambda: range(4))
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(200):
            allocator.release(allocator.allocate(1))
        for _ in range(5):
            allocator.allocate(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allocator.load() == {0: 10, 1: 10, 2: 10, 3: 10}


def test_grpc_plugins_with_one_cpu_each_are_spread_and_give_it_back(
    host: PluginManager, tmp_path: Path
) -> None:
    """Two plugins with ``cpu: 1`` on a host with two CPUs or more run on different
    CPUs (before: both on the first); unloading one frees its CPU for the next."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    before = cpus.load()
    extra = "  resources:\n    cpu: 1\n"

    def load(name: str) -> set[int]:
        host.load(faulty_manifest(tmp_path / name, name=name, extra=extra))
        plugin: Any = host.registry.get_plugin(name)
        return set(os.sched_getaffinity(plugin.connection.supervisor.pid))

    first, second = load("first"), load("second")
    assert len(first) == len(second) == 1
    assert first != second
    host.unload("first")
    assert load("third") == first
    host.unload("second")
    host.unload("third")
    assert cpus.load() == before


def test_a_plugin_that_fails_to_start_gives_its_cpus_back(
    host: PluginManager, tmp_path: Path
) -> None:
    before = cpus.load()
    (tmp_path / "server").write_text("#!/bin/sh\n")  # not executable
    (tmp_path / "plugin.yaml").write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\n"
        "metadata: {name: not-executable, version: 1.0.0}\n"
        "spec:\n  type: vectorizer\n  runtime: grpc\n  command: ./server\n"
        "  resources: {cpu: 1}\n"
    )
    with pytest.raises(PluginLoadError):
        host.load(tmp_path / "plugin.yaml")
    assert cpus.load() == before


# -- the wasm instance pool ------------------------------------------------------------------


@pytest.mark.parametrize(("cpu", "size"), [("3", 3), (None, 2)])
def test_the_wasm_pool_runs_as_many_calls_at_once_as_cpu_says(
    host: PluginManager, faults: Path, tmp_path: Path, cpu: str | None, size: int
) -> None:
    """``size`` calls that never return run at once: each is interrupted at its deadline
    (a call that found no free instance says so instead); while they run, one more call
    finds no instance free. No timing is asserted."""
    name = host.load(
        fault_manifest(tmp_path, faults / "faults.wasm", runtime="wasm", cpu=cpu, timeout=5.0)
    ).name
    handle = host.get_vectorizer(name)
    barrier = threading.Barrier(size)
    outcomes: list[str] = []

    def hold() -> None:
        barrier.wait()
        try:
            handle.vectorize_text("loop", timeout=3.0)
        except DeadlineExceeded as exc:
            outcomes.append(str(exc))

    holders = [threading.Thread(target=hold) for _ in range(size)]
    for thread in holders:
        thread.start()
    try:
        assert eventually(lambda: handle.stats.in_flight == size, 10)
        time.sleep(0.3)  # let every holder take its instance (nothing is timed)
        with pytest.raises(DeadlineExceeded, match="no instance became free"):
            handle.vectorize_text("loop", timeout=0.5)
    finally:
        for thread in holders:
            thread.join()
    assert len(outcomes) == size
    for outcome in outcomes:
        assert "interrupted at its deadline of 3s" in outcome, outcomes
    assert np.asarray(handle.vectorize_text("fine")).shape == (16,)


# -- warnings about what is not enforced -----------------------------------------------------


def resource_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "spec.resources" in r.getMessage()
    ]


RESOURCES = {
    "both": ({"memory": "256Mi", "cpu": "1"}, ["memory", "cpu"]),
    "memory": ({"memory": "256Mi"}, ["memory"]),
    "cpu": ({"cpu": "500m"}, ["cpu"]),
}


def check_one_warning(messages: list[str], name: str, fields: list[str]) -> None:
    assert len(messages) == 1, messages
    message = messages[0]
    assert f"plugin {name}:" in message
    for field in ("memory", "cpu"):
        assert (f"spec.resources.{field}" in message) == (field in fields), message
    assert "not enforced" in message


def python_plugin(directory: Path, resources: Mapping[str, str]) -> Path:
    shutil.copytree(
        EXAMPLES / "python-hash-vectorizer",
        directory,
        ignore=shutil.ignore_patterns("__pycache__"),
        dirs_exist_ok=True,
    )
    manifest = directory / "plugin.yaml"
    lines = "".join(f'    {key}: "{value}"\n' for key, value in resources.items())
    text = manifest.read_text()
    assert "  runtime: python\n" in text
    runtime = "  runtime: python\n"
    manifest.write_text(text.replace(runtime, f"{runtime}  resources:\n{lines}"))
    return manifest


@pytest.mark.parametrize("case", sorted(RESOURCES))
def test_python_warns_once_naming_what_it_cannot_enforce(
    host: PluginManager, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    resources, fields = RESOURCES[case]
    with caplog.at_level(logging.WARNING):
        host.load(python_plugin(tmp_path / "p", resources))
    check_one_warning(resource_warnings(caplog), "hash-embedder", fields)
    assert "python runtime runs in the host process" in resource_warnings(caplog)[0]


def test_python_without_resources_does_not_warn(
    host: PluginManager, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        host.load(EXAMPLES / "python-hash-vectorizer" / "plugin.yaml")
    assert resource_warnings(caplog) == []


@pytest.mark.parametrize("case", sorted(RESOURCES))
def test_native_warns_once_naming_what_it_cannot_enforce(
    host: PluginManager,
    faults: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    resources, fields = RESOURCES[case]
    manifest = fault_manifest(
        tmp_path,
        faults / "faults.so",
        runtime="native",
        memory=resources.get("memory"),
        cpu=resources.get("cpu"),
    )
    with caplog.at_level(logging.WARNING):
        host.load(manifest)
    check_one_warning(resource_warnings(caplog), "faults", fields)


class Answers(VectorizerPlugin):
    plugin_name = "answers"

    def setup(self, config: Mapping[str, Any]) -> None:
        pass

    def vectorize_text(self, text: str) -> Any:
        return np.zeros(4, dtype=np.float32)


@pytest.fixture
def service() -> Iterator[str]:
    """A running gRPC service (the SDK's server in this process) on 127.0.0.1."""
    server, plugin_service = build_server(Answers(), max_workers=2)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    plugin_service.health.set("", health_pb2.HealthCheckResponse.SERVING)
    yield f"127.0.0.1:{port}"
    server.stop(grace=0).wait(5)


@pytest.mark.parametrize("case", sorted(RESOURCES))
def test_remote_grpc_warns_once_naming_what_the_service_manages(
    host: PluginManager,
    service: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    resources, fields = RESOURCES[case]
    lines = "".join(f'    {key}: "{value}"\n' for key, value in resources.items())
    (tmp_path / "plugin.yaml").write_text(
        "apiVersion: weaviate.io/v1\nkind: Plugin\n"
        "metadata: {name: remote, version: 1.0.0}\n"
        f"spec:\n  type: vectorizer\n  runtime: grpc\n  address: {service}\n"
        "  capabilities: {dimensions: 4}\n"
        f"  resources:\n{lines}"
    )
    with caplog.at_level(logging.WARNING):
        host.load(tmp_path / "plugin.yaml")
    check_one_warning(resource_warnings(caplog), "remote", fields)
    assert f"the service at spec.address ({service})" in resource_warnings(caplog)[0]
    assert host.get_vectorizer("remote").vectorize_text("x").shape == (4,)


def test_wasm_and_local_grpc_enforce_both_and_do_not_warn(
    host: PluginManager, faults: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "wasm").mkdir()
    wasm = fault_manifest(
        tmp_path / "wasm", faults / "faults.wasm", runtime="wasm", memory="64Mi", cpu="2"
    )
    local = faulty_manifest(
        tmp_path / "grpc", extra='  resources:\n    memory: "600Mi"\n    cpu: 1\n'
    )
    with caplog.at_level(logging.WARNING):
        host.load(wasm)
        host.load(local)
    assert resource_warnings(caplog) == []
    assert not [r for r in caplog.records if "not enforced" in r.getMessage()]
