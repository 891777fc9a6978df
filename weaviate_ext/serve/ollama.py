"""Ollama-compatible endpoints, for ``text2vec-ollama`` / ``generative-ollama`` (their
``apiEndpoint`` set to this server) and any Ollama client.

* ``POST /api/embed``: ``input`` a string or a list -> ``{"embeddings": [[...]]}``;
  ``POST /api/embeddings`` (the older form): ``prompt`` -> ``{"embedding": [...]}``;
* ``POST /api/generate``: ``prompt`` (and ``system``) -> the answer, streamed as NDJSON
  by default (``{"response": chunk, "done": false}`` lines, then a ``done: true`` line),
  or one object with ``"stream": false`` (what Weaviate sends);
* ``POST /api/chat``: ``messages`` -> the same, with ``message`` objects;
* ``GET /api/tags`` and ``GET /api/version``.

``model`` names a loaded plugin, any other name the default one. An empty ``prompt``
answers at once with ``done_reason: "load"``, as Ollama does when asked to load a model.
Options: ``num_predict`` becomes ``max_tokens``; ``temperature``, ``top_p``, ``top_k``,
``seed`` and ``stop`` are passed on.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Security
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from weaviate_ext._version import __version__
from weaviate_ext.errors import WeaviateExtError
from weaviate_ext.serve import ops
from weaviate_ext.serve.auth import bearer_scheme
from weaviate_ext.serve.deps import State, json_response
from weaviate_ext.serve.errors import error_body, from_framework
from weaviate_ext.serve.inference import ERROR_RESPONSES
from weaviate_ext.serve.models import RequestModel, error_responses
from weaviate_ext.serve.state import ServeState

router = APIRouter(
    prefix="/api", tags=["Ollama-compatible"], dependencies=[Security(bearer_scheme)]
)
"""``/api/embed``, ``/api/embeddings``, ``/api/generate``, ``/api/chat``, ``/api/tags``."""

NDJSON = "application/x-ndjson"

PASSED_OPTIONS = ("temperature", "top_p", "top_k", "seed", "stop")

STREAMED: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    200: {
        "description": "NDJSON lines (`done: false`, then one with `done: true`); with "
        '`"stream": false` one object.',
        "content": {"application/json": {}, NDJSON: {}},
    },
}
"""The answers of ``/api/generate`` and ``/api/chat``."""


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8")


def _options(options: dict[str, Any] | None) -> dict[str, Any]:
    given = options or {}
    mapped = {key: given[key] for key in PASSED_OPTIONS if key in given}
    num_predict = given.get("num_predict")
    if isinstance(num_predict, int) and not isinstance(num_predict, bool) and num_predict >= 0:
        mapped["max_tokens"] = num_predict
    return mapped


# ---------------------------------------------------------------------------------------
# embeddings
# ---------------------------------------------------------------------------------------


class OllamaEmbedRequest(RequestModel):
    """An Ollama ``/api/embed`` request."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"model": "hash-embedder", "input": ["hello", "world"]}]},
    )

    input: StrictStr | list[StrictStr]
    model: StrictStr | None = None
    dimensions: StrictInt | None = None
    truncate: StrictBool = True


class OllamaEmbeddingsRequest(RequestModel):
    """An Ollama ``/api/embeddings`` request (the older, single-text form)."""

    model_config = ConfigDict(extra="ignore")

    prompt: StrictStr
    model: StrictStr | None = None


@router.post("/embed", responses=ERROR_RESPONSES, summary="Embed texts")
async def embed(request: OllamaEmbedRequest, state: State) -> Any:
    """Vectors of the input texts."""
    started = time.perf_counter_ns()
    texts = [request.input] if isinstance(request.input, str) else request.input
    state.check_texts(texts, "input")
    name = state.pick("vectorizer", request.model)
    matrix = await ops.vectorize(state, name, texts, dimensions=request.dimensions)
    return json_response(
        {
            "model": name,
            "embeddings": matrix.tolist(),
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": 0,
            "prompt_eval_count": ops.word_count(*texts),
        }
    )


@router.post("/embeddings", responses=ERROR_RESPONSES, summary="Embed one text (older form)")
async def embeddings(request: OllamaEmbeddingsRequest, state: State) -> Any:
    """The vector of ``prompt``."""
    state.check_text(request.prompt, "prompt")
    name = state.pick("vectorizer", request.model)
    matrix = await ops.vectorize(state, name, [request.prompt])
    return json_response({"embedding": matrix[0].tolist()})


# ---------------------------------------------------------------------------------------
# generate and chat
# ---------------------------------------------------------------------------------------


class OllamaGenerateRequest(RequestModel):
    """An Ollama ``/api/generate`` request."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"model": "extractive-summarizer", "prompt": "...", "stream": False}]
        },
    )

    prompt: StrictStr = ""
    model: StrictStr | None = None
    system: StrictStr | None = None
    stream: StrictBool = True
    options: dict[str, Any] | None = None


class OllamaMessage(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="ignore")

    role: StrictStr
    content: StrictStr = ""


class OllamaChatRequest(RequestModel):
    """An Ollama ``/api/chat`` request."""

    model_config = ConfigDict(extra="ignore")

    messages: list[OllamaMessage] = Field(min_length=1)
    model: StrictStr | None = None
    stream: StrictBool = True
    options: dict[str, Any] | None = None


async def _answer(
    state: ServeState,
    name: str,
    prompt: str,
    options: dict[str, Any],
    stream: bool,
    piece: Callable[[str], dict[str, Any]],
) -> Any:
    """The generator's answer in Ollama's form: ``piece(text)`` is the part of a line
    that carries text (``response`` or ``message``)."""
    started = time.perf_counter_ns()
    prompt_count = ops.word_count(prompt)

    def final(chunks: int) -> dict[str, Any]:
        return {
            "done": True,
            "done_reason": "stop",
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": 0,
            "prompt_eval_count": prompt_count,
            "eval_count": chunks,
        }

    if not stream:
        text = await ops.generate(state, name, prompt, options)
        return json_response(
            {"model": name, "created_at": _now(), **piece(text), **final(ops.word_count(text))}
        )
    chunks = await ops.open_stream(state, name, prompt, options)

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for text in chunks:
                yield _line({"model": name, "created_at": _now(), **piece(text), "done": False})
            yield _line({"model": name, "created_at": _now(), **piece(""), **final(chunks.chunks)})
        except WeaviateExtError as exc:
            yield _line(error_body("/api/generate", from_framework(exc)))
        finally:
            await chunks.aclose()

    return StreamingResponse(lines(), media_type=NDJSON, background=BackgroundTask(chunks.aclose))


@router.post("/generate", responses=STREAMED, summary="Generate a completion")
async def generate(request: OllamaGenerateRequest, state: State) -> Any:
    """The answer for ``prompt``: NDJSON lines by default, one object without streaming."""
    name = state.pick("generator", request.model)
    if not request.prompt:
        return json_response(
            {
                "model": name,
                "created_at": _now(),
                "response": "",
                "done": True,
                "done_reason": "load",
            }
        )
    prompt = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
    state.check_text(prompt, "prompt")
    return await _answer(
        state,
        name,
        prompt,
        _options(request.options),
        request.stream,
        lambda text: {"response": text},
    )


@router.post("/chat", responses=STREAMED, summary="Chat")
async def chat(request: OllamaChatRequest, state: State) -> Any:
    """The answer to the conversation (its messages' texts are the prompt)."""
    name = state.pick("generator", request.model)
    prompt = "\n\n".join(m.content for m in request.messages if m.content)
    state.check_text(prompt, "messages")
    return await _answer(
        state,
        name,
        prompt,
        _options(request.options),
        request.stream,
        lambda text: {"message": {"role": "assistant", "content": text}},
    )


# ---------------------------------------------------------------------------------------
# tags and version
# ---------------------------------------------------------------------------------------


@router.get("/tags", responses=error_responses(401, 503), summary="List models")
async def tags(state: State) -> Any:
    """The loaded vectorizers and generators, as Ollama models."""
    manager = state.require_manager()
    models = []
    for plugin_type in ("vectorizer", "generator"):
        for name in manager.names(plugin_type):
            manifest = manager.manifest(name)
            models.append(
                {
                    "name": name,
                    "model": name,
                    "modified_at": _now(),
                    "size": 0,
                    "digest": "",
                    "details": {
                        "format": manifest.spec.runtime,
                        "family": plugin_type,
                        "parameter_size": "",
                        "quantization_level": "",
                    },
                }
            )
    return json_response({"models": models})


@router.get("/version", responses=error_responses(401), summary="Server version")
async def version() -> Any:
    """This server's version."""
    return json_response({"version": __version__})
