"""Dynamic batching in ``serve``: concurrent single-text requests to a batch-safe
vectorizer become one ``vectorize_batch`` call, and every caller still gets its own row,
its own error and its own deadline.

The plugin records every call it receives (hook and texts) in a file, so the tests see
the batches. No test asserts a wall-clock time: orderings only.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from plugin_factory import write_plugin
from starlette.testclient import TestClient

from weaviate_ext import PluginManager
from weaviate_ext.serve import ServeSettings, create_app, ops
from weaviate_ext.serve.errors import ApiError
from weaviate_ext.serve.state import ServeState

RECORDER = """
    import hashlib
    import json
    import os
    import time

    import numpy as np
    from weaviate_ext import InvalidInput, hookimpl

    DIMS = 8


    def vector(text):
        digest = hashlib.sha256(text.encode()).digest()
        return np.frombuffer(digest[:DIMS], dtype=np.uint8).astype(np.float32) - 127.5


    class Plugin:
        @hookimpl
        def plugin_setup(self, config, manifest):
            self.log = config.get_string("log")

        def record(self, hook, texts):
            with open(self.log, "a") as log:
                log.write(json.dumps({"hook": hook, "texts": list(texts)}) + "\\n")

        def one(self, text):
            if text == "refuse":
                raise InvalidInput("the text 'refuse' is refused")
            if text.startswith("gate:"):
                deadline = time.monotonic() + 30
                while not os.path.exists(text[5:]) and time.monotonic() < deadline:
                    time.sleep(0.01)
            return vector(text)

        @hookimpl
        def vectorize_batch(self, texts):
            self.record("vectorize_batch", texts)
            return np.stack([self.one(t) for t in texts])

        @hookimpl
        def vectorize_text(self, text):
            self.record("vectorize_text", [text])
            return self.one(text)
"""
"""A vectorizer recording its calls; it refuses ``refuse`` and waits at ``gate:<file>``."""

TEXTS = [f"text number {i}" for i in range(12)]


def expected(text: str) -> np.ndarray:
    """The recorder's vector of ``text`` (what a single call returns)."""
    import hashlib

    digest = hashlib.sha256(text.encode()).digest()
    return np.frombuffer(digest[:8], dtype=np.uint8).astype(np.float32) - 127.5


def write_recorder(root: Path, name: str, *, batch_safe: bool, timeout: float = 10) -> Path:
    capabilities: dict[str, Any] = {"dimensions": 8, "maxBatchSize": 16, "deterministic": True}
    if batch_safe:
        capabilities["batchSafe"] = True
    return write_plugin(
        root,
        name,
        "vectorizer",
        RECORDER,
        capabilities=capabilities,
        config={"log": {"type": "string", "required": True}},
        extra_spec={"timeout": timeout},
    )


def calls(log: Path) -> list[dict[str, Any]]:
    """The calls the recorder received so far (not the load-time probe's)."""
    if not log.exists():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [row for row in rows if not any("probe" in t for t in row["texts"])]


class Setup:
    """A manager with the recorder plugins and a server state in front of it."""

    def __init__(self, tmp_path: Path, *, window_ms: float = 50.0, timeout: float = 10) -> None:
        self.logs = {name: tmp_path / f"{name}.log" for name in ("safe", "unsafe")}
        plugins = tmp_path / "plugins"
        self.manager = PluginManager(
            discover=False, config={name: {"log": str(log)} for name, log in self.logs.items()}
        )
        self.manager.load(write_recorder(plugins, "safe", batch_safe=True, timeout=timeout))
        self.manager.load(write_recorder(plugins, "unsafe", batch_safe=False, timeout=timeout))
        self.settings = ServeSettings(batch_window_ms=window_ms, max_text_length=100)
        self.state = ServeState(self.settings, manager=self.manager)

    def run(self, main: Any) -> Any:
        async def body() -> Any:
            await self.state.load()
            try:
                return await main()
            finally:
                await self.state.close()

        return asyncio.run(body())

    async def one(self, name: str, text: str) -> np.ndarray:
        return (await ops.vectorize(self.state, name, [text]))[0]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    made = Setup(tmp_path)
    try:
        yield made
    finally:
        made.manager.close()


def test_concurrent_requests_get_their_own_rows_in_one_batch(setup: Setup) -> None:
    async def main() -> list[np.ndarray]:
        return list(await asyncio.gather(*(setup.one("safe", t) for t in TEXTS)))

    rows = setup.run(main)
    for text, row in zip(TEXTS, rows, strict=True):
        np.testing.assert_array_equal(row, expected(text))
    received = calls(setup.logs["safe"])
    assert sorted(t for c in received for t in c["texts"]) == sorted(TEXTS)  # each text once
    assert any(c["hook"] == "vectorize_batch" and len(c["texts"]) > 1 for c in received)
    assert len(received) < len(TEXTS)
    metrics = setup.state.metrics
    batches = metrics.batches.labels("safe")._value.get()
    assert batches == len(received)
    assert metrics.plugin_calls.labels("safe", "vectorize")._value.get() == len(received)


def test_a_bad_text_fails_only_its_own_request(setup: Setup) -> None:
    texts = [*TEXTS[:5], "refuse", *TEXTS[5:9], "bad \ud800 surrogate", *TEXTS[9:]]

    async def main() -> list[Any]:
        return list(
            await asyncio.gather(*(setup.one("safe", t) for t in texts), return_exceptions=True)
        )

    results = setup.run(main)
    for text, result in zip(texts, results, strict=True):
        if text == "refuse" or "\ud800" in text:
            assert isinstance(result, ApiError), result
            assert result.status == 422
        else:
            assert isinstance(result, np.ndarray), result
            np.testing.assert_array_equal(result, expected(text))
    received = calls(setup.logs["safe"])
    assert not any("\ud800" in t for c in received for t in c["texts"])  # refused before
    # the batch holding 'refuse' was refused as a whole, then retried text by text
    assert any("refuse" in c["texts"] and len(c["texts"]) > 1 for c in received)
    assert {"hook": "vectorize_text", "texts": ["refuse"]} in received


def test_window_zero_makes_one_call_per_request(tmp_path: Path) -> None:
    made = Setup(tmp_path, window_ms=0)
    try:

        async def main() -> list[np.ndarray]:
            return list(await asyncio.gather(*(made.one("safe", t) for t in TEXTS)))

        rows = made.run(main)
        for text, row in zip(TEXTS, rows, strict=True):
            np.testing.assert_array_equal(row, expected(text))
        received = calls(made.logs["safe"])
        assert len(received) == len(TEXTS)
        assert all(c["hook"] == "vectorize_text" for c in received)
        assert made.state.metrics.batches.labels("safe")._value.get() == 0
    finally:
        made.manager.close()


def test_a_plugin_that_is_not_batch_safe_is_never_batched(setup: Setup) -> None:
    async def main() -> list[np.ndarray]:
        return list(await asyncio.gather(*(setup.one("unsafe", t) for t in TEXTS)))

    rows = setup.run(main)
    for text, row in zip(TEXTS, rows, strict=True):
        np.testing.assert_array_equal(row, expected(text))
    received = calls(setup.logs["unsafe"])
    assert len(received) == len(TEXTS)
    assert all(len(c["texts"]) == 1 for c in received)


def test_each_caller_has_its_own_deadline(tmp_path: Path) -> None:
    """The first caller's text hangs in the plugin; its deadline passes while a later
    caller, queued behind it, still waits within its own and gets its row."""
    made = Setup(tmp_path, timeout=1.0)
    gate = tmp_path / "gate"
    try:

        async def main() -> tuple[Any, Any]:
            first = asyncio.ensure_future(made.one("safe", f"gate:{gate}"))
            await asyncio.sleep(1.0)  # the later caller's deadline is a second later
            second = asyncio.ensure_future(made.one("safe", "later"))
            results = await asyncio.gather(first, second, return_exceptions=True)
            return results[0], results[1]

        try:
            first, second = made.run(main)
        finally:
            gate.touch()  # let the abandoned plugin call end
        assert isinstance(first, ApiError) and first.status == 504, first
        assert isinstance(second, np.ndarray), second
        np.testing.assert_array_equal(second, expected("later"))
    finally:
        made.manager.close()


def test_stopping_answers_every_queued_request(tmp_path: Path, monkeypatch: Any) -> None:
    """A batch that hangs and requests queued behind it: closing the state answers all of
    them (503 or a row), none is left waiting."""
    from weaviate_ext.serve import batcher

    monkeypatch.setattr(batcher, "CLOSE_WAIT", 0.2)
    made = Setup(tmp_path)
    gate = tmp_path / "gate"
    try:

        async def main() -> list[Any]:
            await made.state.load()
            tasks = [asyncio.ensure_future(made.one("safe", f"gate:{gate}"))]
            await asyncio.sleep(0.2)
            tasks += [asyncio.ensure_future(made.one("safe", t)) for t in TEXTS[:3]]
            await asyncio.sleep(0.05)
            await made.state.close()
            return list(await asyncio.gather(*tasks, return_exceptions=True))

        try:
            results = asyncio.run(main())
        finally:
            gate.touch()
        assert len(results) == 4
        for result in results:
            assert isinstance(result, np.ndarray) or (
                isinstance(result, ApiError) and result.status == 503
            ), result
    finally:
        made.manager.close()


def test_every_route_is_batched_and_answered_in_order(tmp_path: Path) -> None:
    """Concurrent requests on all the vectorizer routes of the app: the right row each,
    one over the length limit refused alone, and the plugin saw batches."""
    log = tmp_path / "safe.log"
    manifest = write_recorder(tmp_path / "plugins", "safe", batch_safe=True)
    settings = ServeSettings(
        plugin_files=(str(manifest),),
        config={"safe": {"log": str(log)}},
        batch_window_ms=50,
        max_text_length=100,
    )
    routes = [
        ("/vectors", lambda t: {"text": t}, lambda b: b["vector"]),
        ("/inference/safe/vectors", lambda t: {"text": t}, lambda b: b["vector"]),
        ("/v1/embeddings", lambda t: {"input": t}, lambda b: b["data"][0]["embedding"]),
        ("/api/embed", lambda t: {"input": t}, lambda b: b["embeddings"][0]),
        ("/api/embeddings", lambda t: {"prompt": t}, lambda b: b["embedding"]),
        ("/v1/plugins/safe/vectorize", lambda t: {"text": t}, lambda b: b["vector"]),
    ]
    texts = [f"route text {i}" for i in range(24)]
    texts[7] = "x" * 101  # over --max-text-length
    results: list[Any] = [None] * len(texts)
    with TestClient(create_app(settings)) as client:
        for _ in range(600):
            if client.get("/.well-known/ready").status_code == 204:
                break
            threading.Event().wait(0.05)

        def send(i: int) -> None:
            path, body, pick = routes[i % len(routes)]
            response = client.post(path, json=body(texts[i]))
            results[i] = (
                response.status_code,
                pick(response.json()) if response.is_success else None,
            )

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics = client.get("/metrics").text
    for i, text in enumerate(texts):
        status, vector = results[i]
        if i == 7:
            assert status == 413
            continue
        assert status == 200, (i, status)
        np.testing.assert_allclose(vector, expected(text))
    received = calls(log)
    assert sorted(t for c in received for t in c["texts"]) == sorted(
        t for i, t in enumerate(texts) if i != 7
    )
    assert 'weaviate_ext_serve_batches_total{plugin="safe"}' in metrics
    assert "weaviate_ext_serve_batch_size_bucket" in metrics
