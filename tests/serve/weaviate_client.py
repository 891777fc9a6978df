"""Clients that call an inference container exactly as Weaviate's modules do.

They follow the Go code of Weaviate's ``text2vec-transformers`` and
``reranker-transformers`` clients: the request body is the marshalled Go struct (with
its zero-valued ``dims``, ``vector`` and ``error`` fields), sent with **no**
``Content-Type`` header; any status but 200 is an error carrying the body's ``error``;
the reranker splits documents into chunks of 32 sent concurrently and joins the
``scores`` of each chunk in order.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np

GO_HEADERS = {"User-Agent": "Go-http-client/1.1", "Accept-Encoding": "gzip"}

RERANK_CHUNK = 32
"""Documents per ``/rerank`` request (Weaviate's ``maxDocuments``)."""


class ModuleError(Exception):
    """What Weaviate's client reports for an answer that is not a 200."""


def _go_json(value: Any) -> bytes:
    """JSON as Go's encoding/json writes it (compact, no spaces)."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class Text2VecTransformers:
    """Weaviate's ``text2vec-transformers`` client for one inference URL."""

    def __init__(self, origin: str) -> None:
        self.origin = origin.rstrip("/")
        self.http = httpx.Client(headers=GO_HEADERS, timeout=30.0)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def wait_for_startup(self, timeout: float = 30.0) -> None:
        """Poll ``/.well-known/ready`` until it answers 2xx, as Weaviate does at start."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.get(f"{self.origin}/.well-known/ready", timeout=0.5)
            if response.status_code <= 299:
                return
            if time.monotonic() > deadline:
                raise ModuleError(f"not ready: status {response.status_code}")
            time.sleep(0.1)

    def meta(self) -> dict[str, Any]:
        """``GET /meta`` decoded into a map, as the module's MetaInfo does."""
        response = self.http.get(f"{self.origin}/meta")
        if not 200 <= response.status_code < 300:
            raise ModuleError(f"unexpected status code '{response.status_code}' of meta request")
        meta: dict[str, Any] = response.json()
        return meta

    def vectorize(
        self, text: str, task: str = "passage", dimensions: int | None = None
    ) -> np.ndarray:
        """``VectorizeObject`` (``task="passage"``) or ``VectorizeQuery`` (``"query"``)."""
        config: dict[str, Any] = {"pooling_strategy": "masked_mean", "task_type": task}
        if dimensions is not None:
            config["dimensions"] = dimensions
        body = {"text": text, "dims": 0, "vector": None, "error": "", "config": config}
        response = self.http.post(f"{self.origin}/vectors", content=_go_json(body))
        assert "content-type" not in response.request.headers
        decoded = response.json()
        if response.status_code != 200:
            raise ModuleError(f"fail with status {response.status_code}: {decoded['error']}")
        return np.asarray(decoded["vector"], dtype=np.float32)


class RerankerTransformers:
    """Weaviate's ``reranker-transformers`` client for one inference URL."""

    def __init__(self, origin: str) -> None:
        self.origin = origin.rstrip("/")
        self.http = httpx.Client(headers=GO_HEADERS, timeout=30.0)
        self.chunk = RERANK_CHUNK
        """Documents per request (Weaviate's is fixed at 32; tests may lower it)."""

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _perform_rank(self, query: str, documents: list[str]) -> list[dict[str, Any]]:
        body = {"query": query, "documents": documents, "property": ""}
        response = self.http.post(f"{self.origin}/rerank", content=_go_json(body))
        decoded = response.json()
        if response.status_code != 200:
            if decoded.get("error"):
                raise ModuleError(f"fail with status {response.status_code}: {decoded['error']}")
            raise ModuleError(f"fail with status {response.status_code}")
        scores: list[dict[str, Any]] = decoded["scores"]
        return scores

    def rank(self, query: str, documents: list[str]) -> list[tuple[str, float]]:
        """``(document, score)`` for every document, in the order given."""
        size = self.chunk
        chunks = [documents[i : i + size] for i in range(0, len(documents), size)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda chunk: self._perform_rank(query, chunk), chunks))
        return [(s["document"], float(s["score"])) for answer in answers for s in answer]
