"""OpenAI-compatible endpoints, for ``text2vec-openai`` / ``generative-openai`` with a
custom base URL, and for any OpenAI client library.

* ``POST /v1/embeddings``: ``input`` a string or a list of strings, ``dimensions``,
  ``encoding_format`` ``float`` or ``base64`` (little-endian float32, as OpenAI sends);
* ``POST /v1/chat/completions``: the messages' text is the prompt; ``stream: true``
  answers server-sent events (``chat.completion.chunk`` objects, then ``[DONE]``);
* ``GET /v1/models`` (and ``/v1/models/{id}``): the loaded vectorizers, rerankers and
  generators.

``model`` names a loaded plugin; any other name (clients always send one, such as
``text-embedding-3-small``) means the default plugin of the type. Token counts in
``usage`` are whitespace-separated words. Errors have OpenAI's shape.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Security
from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.background import BackgroundTask

from weaviate_ext.errors import WeaviateExtError
from weaviate_ext.serve import ops
from weaviate_ext.serve.auth import bearer_scheme
from weaviate_ext.serve.deps import State, json_response
from weaviate_ext.serve.errors import ApiError, error_body, from_framework
from weaviate_ext.serve.models import RequestModel, error_responses

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], dependencies=[Security(bearer_scheme)])
"""``/v1/embeddings``, ``/v1/chat/completions`` and ``/v1/models``."""

OPENAI_ERRORS = error_responses(openai=True)
"""Error answers of the endpoints that call a plugin, in OpenAI's shape."""

LISTED_TYPES = ("vectorizer", "reranker", "generator")
"""Plugin types listed as models."""


# ---------------------------------------------------------------------------------------
# embeddings
# ---------------------------------------------------------------------------------------


class OpenAIEmbeddingsRequest(RequestModel):
    """An OpenAI embeddings request."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"model": "hash-embedder", "input": ["hello", "world"]}]},
    )

    input: StrictStr | list[StrictStr] = Field(
        description="A text or a list of texts (token-id arrays are not supported)."
    )
    model: StrictStr | None = Field(None, description="A loaded vectorizer; else the default.")
    dimensions: StrictInt | None = Field(
        None, description="Keep the first N values (re-normalised if the plugin normalises)."
    )
    encoding_format: Literal["float", "base64"] = "float"
    user: StrictStr | None = None


def _encode(vector: Any, encoding: str) -> Any:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


@router.post("/embeddings", responses=OPENAI_ERRORS, summary="Create embeddings")
async def embeddings(request: OpenAIEmbeddingsRequest, state: State) -> Any:
    """Vectors of the input texts, in OpenAI's ``list`` of ``embedding`` objects."""
    texts = [request.input] if isinstance(request.input, str) else request.input
    state.check_texts(texts, "input")
    name = state.pick("vectorizer", request.model)
    matrix = await ops.vectorize(state, name, texts, dimensions=request.dimensions)
    tokens = ops.word_count(*texts)
    return json_response(
        {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": _encode(row, request.encoding_format),
                }
                for i, row in enumerate(matrix)
            ],
            "model": name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


# ---------------------------------------------------------------------------------------
# chat completions
# ---------------------------------------------------------------------------------------


class OpenAIContentPart(BaseModel):
    """One part of a message's content; only ``text`` parts are supported."""

    model_config = ConfigDict(extra="ignore")

    type: StrictStr
    text: StrictStr | None = None


class OpenAIChatMessage(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="ignore")

    role: StrictStr
    content: StrictStr | list[OpenAIContentPart] | None = None


class OpenAIStreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a last chunk with the token counts."""

    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool = False


class OpenAIChatRequest(RequestModel):
    """An OpenAI chat completions request."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "extractive-summarizer",
                    "messages": [{"role": "user", "content": "Summarise: ..."}],
                    "stream": True,
                }
            ]
        },
    )

    messages: list[OpenAIChatMessage] = Field(min_length=1)
    model: StrictStr | None = Field(None, description="A loaded generator; else the default.")
    stream: StrictBool = False
    stream_options: OpenAIStreamOptions | None = None
    max_tokens: StrictInt | None = Field(None, ge=0)
    max_completion_tokens: StrictInt | None = Field(None, ge=0)
    temperature: StrictFloat | None = None
    top_p: StrictFloat | None = None
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    n: StrictInt | None = Field(None, ge=1)


def _message_text(message: OpenAIChatMessage, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise ApiError(422, f"messages[{index}]: only text content is supported")
        texts.append(part.text)
    return "".join(texts)


def chat_prompt(messages: list[OpenAIChatMessage]) -> str:
    """The prompt of a conversation: the messages' texts in order, a blank line apart."""
    texts = [_message_text(m, i) for i, m in enumerate(messages)]
    return "\n\n".join(t for t in texts if t)


def _options(request: OpenAIChatRequest) -> dict[str, Any]:
    max_tokens = request.max_completion_tokens
    if max_tokens is None:
        max_tokens = request.max_tokens
    return {
        "max_tokens": max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "stop": [request.stop] if isinstance(request.stop, str) else request.stop,
    }


@router.post(
    "/chat/completions",
    responses={
        **OPENAI_ERRORS,
        200: {
            "description": "A `chat.completion` object; with `stream: true` server-sent "
            "events, `chat.completion.chunk` objects then `[DONE]`.",
            "content": {"application/json": {}, "text/event-stream": {}},
        },
    },
    summary="Chat completion",
)
async def chat_completions(request: OpenAIChatRequest, state: State) -> Any:
    """The generator's answer as a ``chat.completion`` (or a stream of chunks)."""
    if request.n not in (None, 1):
        raise ApiError(422, "n: only 1 choice is supported")
    prompt = chat_prompt(request.messages)
    state.check_text(prompt, "messages")
    name = state.pick("generator", request.model)
    options = _options(request)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    prompt_tokens = ops.word_count(prompt)
    if not request.stream:
        text = await ops.generate(state, name, prompt, options)
        completion_tokens = ops.word_count(text)
        return json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )
    stream = await ops.open_stream(state, name, prompt, options)
    include_usage = bool(request.stream_options and request.stream_options.include_usage)

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": name,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return format_sse_event(data_str=json.dumps(body, ensure_ascii=False))

    async def events() -> AsyncIterator[bytes]:
        words: list[str] = []
        try:
            yield chunk({"role": "assistant", "content": ""}, None)
            async for text in stream:
                words.append(text)
                yield chunk({"content": text}, None)
            yield chunk({}, "stop")
            if include_usage:
                completion_tokens = ops.word_count("".join(words))
                usage = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": name,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
                yield format_sse_event(data_str=json.dumps(usage))
            yield format_sse_event(data_str="[DONE]")
        except WeaviateExtError as exc:
            body = error_body("/v1/chat/completions", from_framework(exc))
            yield format_sse_event(data_str=json.dumps(body))
        finally:
            await stream.aclose()

    return EventSourceResponse(
        events(),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(stream.aclose),
    )


# ---------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------


def _model(name: str, plugin_type: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": f"weaviate-ext:{plugin_type}"}


@router.get("/models", responses=error_responses(401, 503, openai=True), summary="List models")
async def models(state: State) -> Any:
    """The loaded vectorizers, rerankers and generators, as OpenAI models."""
    manager = state.require_manager()
    data = [_model(n, t) for t in LISTED_TYPES for n in manager.names(t)]
    return json_response({"object": "list", "data": data})


@router.get(
    "/models/{model_id}", responses=error_responses(401, 404, 503, openai=True), summary="One model"
)
async def model(model_id: str, state: State) -> Any:
    """One loaded plugin as an OpenAI model (404 if it is not loaded)."""
    manager = state.require_manager()
    for plugin_type in LISTED_TYPES:
        if model_id in manager.names(plugin_type):
            return json_response(_model(model_id, plugin_type))
    raise ApiError(404, f"model {model_id!r} not found")
