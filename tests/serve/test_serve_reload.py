"""``--reload`` under load: editing a plugin's files swaps the new version in while
clients keep calling, no request fails, and no old answer is served after the swap
(the result cache is on)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Server, running
from plugin_factory import write_plugin

SOURCE = """
import numpy as np
from weaviate_ext import hookimpl

VERSION = {version}
# {padding}


class Plugin:
    @hookimpl
    def vectorize_text(self, text):
        return np.array([VERSION, 1.0, 0.0, 0.0], dtype=np.float32)
"""


def write_version(root: Path, version: int) -> Path:
    """The ``live-embedder`` plugin answering ``[version, 1, 0, 0]``, as version N.0.0.

    The padding changes the source's size too, so Python never reuses the bytecode of
    the previous version (it checks a source's mtime in whole seconds, and its size).
    """
    return write_plugin(
        root,
        "live-embedder",
        "vectorizer",
        SOURCE.format(version=version, padding="x" * version),
        version=f"{version}.0.0",
        capabilities={"dimensions": 4, "deterministic": True},
    )


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reload") / "plugins"
    write_version(root, 1)
    return root


@pytest.fixture(scope="module")
def server(plugins: Path) -> Iterator[Server]:
    """One server for the module's tests, which run in order: v1 -> v2 (under load) ->
    a broken edit -> v3 -> a second plugin."""
    args = ["--plugins", str(plugins), "--reload", "--cache"]
    with running(args, plugins.parent / "server.log") as started:
        yield started


def first_value(server: Server) -> float:
    with server.client() as http:
        return float(http.post("/vectors", content=b'{"text": "probe"}').json()["vector"][0])


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_reload_under_load_loses_no_request(server: Server, plugins: Path) -> None:
    stop = threading.Event()
    seen: dict[int, list[tuple[int, float]]] = {i: [] for i in range(8)}

    def load(i: int) -> None:
        with server.client() as http:
            n = 0
            while not stop.is_set():
                body = json.dumps({"text": f"text {n % 3}"}).encode()  # repeats: cache hits
                response = http.post("/vectors", content=body)
                value = response.json()["vector"][0] if response.status_code == 200 else -1.0
                seen[i].append((response.status_code, value))
                n += 1

    threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(len(s) for s in seen.values()) >= 80)
        write_version(plugins, 2)
        wait_for(lambda: any(v == 2.0 for s in seen.values() for _, v in s))
        served = sum(len(s) for s in seen.values())
        wait_for(lambda: sum(len(s) for s in seen.values()) >= served + 80)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    answers = [answer for s in seen.values() for answer in s]
    assert {status for status, _ in answers} == {200}, "no request failed during the reload"
    assert {value for _, value in answers} == {1.0, 2.0}
    for values in seen.values():
        # each client calls in turn: once it got the new version, never the old again
        firsts = [v for _, v in values]
        if 2.0 in firsts:
            assert 1.0 not in firsts[firsts.index(2.0) :]
    with server.client() as http:
        assert http.get("/meta").json()["version"] == "2.0.0"
    assert "reloaded plugin live-embedder 2.0.0" in server.logs()


def test_a_broken_edit_keeps_the_old_version_serving(server: Server, plugins: Path) -> None:
    source = plugins / "live-embedder" / "src" / "plugin.py"
    before = first_value(server)
    source.write_text("this is not python (\n")
    wait_for(lambda: "reload of live-embedder failed" in server.logs())
    assert first_value(server) == before
    with server.client() as http:
        assert http.get("/.well-known/ready").status_code == 204
    write_version(plugins, 3)
    wait_for(lambda: first_value(server) == 3.0)


def test_a_new_plugin_directory_is_loaded(server: Server, plugins: Path) -> None:
    write_plugin(
        plugins,
        "second-embedder",
        "vectorizer",
        SOURCE.format(version=7, padding=""),
        capabilities={"dimensions": 4},
    )

    def listed() -> bool:
        with server.client() as http:
            names = {row["name"] for row in http.get("/v1/plugins").json()}
            return "second-embedder" in names

    wait_for(listed)
    with server.client() as http:
        body = b'{"text": "x"}'
        answer = http.post("/inference/second-embedder/vectors", content=body).json()
        assert answer["vector"][0] == 7.0
        # two vectorizers now, none named: the default endpoint says so
        ambiguous = http.post("/vectors", content=body)
        assert ambiguous.status_code == 409
        assert "--vectorizer" in ambiguous.json()["error"]
