"""The native API: every loaded plugin, of all six types, by name.

* ``GET /v1/plugins``: what ``weaviate-ext list --json`` shows (loaded and broken plugins);
* ``GET /v1/plugins/{name}``: one plugin's manifest summary and call statistics;
* ``POST /v1/plugins/{name}/vectorize`` | ``/transform`` | ``/rerank`` | ``/generate``
  (streamed as NDJSON by default) | ``/store`` | ``/retrieve`` | ``/delete`` |
  ``/authenticate`` | ``/authorize``.

Calling an operation of another type (``/vectorize`` on a reranker) is a 400, an unknown
plugin a 404. The OpenAPI document at ``/openapi.json`` describes every request and
answer; ``/docs`` is the interactive form of it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Security
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from weaviate_ext.cli._list import collect_rows, row_dict
from weaviate_ext.errors import AuthenticationError, WeaviateExtError
from weaviate_ext.serve import ops
from weaviate_ext.serve.auth import bearer_scheme
from weaviate_ext.serve.deps import State, json_response
from weaviate_ext.serve.errors import ApiError, error_body, from_framework
from weaviate_ext.serve.inference import ERROR_RESPONSES, plugin_meta
from weaviate_ext.serve.models import RequestModel, error_responses
from weaviate_ext.serve.state import ServeState
from weaviate_ext.types import Identity

router = APIRouter(
    prefix="/v1/plugins", tags=["native API"], dependencies=[Security(bearer_scheme)]
)
"""``/v1/plugins`` and the per-plugin operations."""


def _json_safe(value: Any, plugin: str) -> Any:
    """``value`` if JSON can carry it; a 502 naming the plugin otherwise."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ApiError(
            502, f"plugin {plugin!r} returned a value JSON cannot carry: {exc}", plugin=plugin
        ) from None
    return value


# ---------------------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------------------


@router.get("", responses=error_responses(401, 503), summary="List plugins")
async def list_plugins(state: State) -> Any:
    """Every plugin known: loaded, and broken with the reason (as ``list --json``)."""
    manager = state.require_manager()
    return json_response([row_dict(row) for row in collect_rows(manager)])


@router.get("/{name}", responses=error_responses(401, 404, 503), summary="One plugin")
async def get_plugin(name: str, state: State) -> Any:
    """A loaded plugin: name, version, type, runtime, capabilities and call stats."""
    manager = state.require_manager()
    handle = manager.get(name)
    stats = handle.stats
    info = plugin_meta(manager, name)
    info["stats"] = {
        "calls": stats.calls,
        "errors": stats.errors,
        "mean_ms": stats.mean_ms,
        "max_ms": stats.max_ms,
        "in_flight": stats.in_flight,
    }
    return json_response(info)


# ---------------------------------------------------------------------------------------
# vectorizer, transformer, reranker
# ---------------------------------------------------------------------------------------


class NativeVectorizeRequest(RequestModel):
    """``texts`` (or one ``text``) to vectorize."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"texts": ["hello", "world"]}]}
    )

    texts: list[StrictStr] | None = None
    text: StrictStr | None = None
    dimensions: StrictInt | None = Field(None, description="Keep the first N values.")


@router.post("/{name}/vectorize", responses=ERROR_RESPONSES, summary="Vectorize texts")
async def vectorize(name: str, request: NativeVectorizeRequest, state: State) -> Any:
    """``{"vectors": [[...]], "dim": N}`` (``{"vector": [...]}`` for one ``text``)."""
    if (request.texts is None) == (request.text is None):
        raise ApiError(422, "give texts or text")
    state.require_manager().get_vectorizer(name)
    if request.text is not None:
        state.check_text(request.text)
        matrix = await ops.vectorize(state, name, [request.text], dimensions=request.dimensions)
        return json_response({"plugin": name, "vector": matrix[0].tolist(), "dim": matrix.shape[1]})
    assert request.texts is not None
    state.check_texts(request.texts, "texts")
    matrix = await ops.vectorize(state, name, request.texts, dimensions=request.dimensions)
    return json_response({"plugin": name, "vectors": matrix.tolist(), "dim": matrix.shape[1]})


class NativeTransformRequest(RequestModel):
    """``data`` (one item) or ``items`` (several, one result each)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"data": "Hello"}]})

    data: Any = None
    items: list[Any] | None = None


@router.post("/{name}/transform", responses=ERROR_RESPONSES, summary="Transform items")
async def transform(name: str, request: NativeTransformRequest, state: State) -> Any:
    """``{"result": ...}`` for ``data``, ``{"results": [...]}`` for ``items``."""
    handle = state.require_manager().get_transformer(name)
    timeout = state.settings.timeout
    if request.items is not None:
        items = request.items
        if len(items) > state.settings.max_batch:
            raise ApiError(413, f"items has {len(items)} entries, more than the limit")
        results = await state.call(
            handle, "transform", lambda: handle.transform_batch(items, timeout=timeout)
        )
        return json_response({"plugin": name, "results": _json_safe(results, name)})
    if "data" not in request.model_fields_set:
        raise ApiError(422, "give data or items")
    data = request.data
    if isinstance(data, str):
        state.check_text(data, "data", allow_empty=True)
    result = await state.call(handle, "transform", lambda: handle.transform(data, timeout=timeout))
    return json_response({"plugin": name, "result": _json_safe(result, name)})


class NativeRerankRequest(RequestModel):
    """A query and the documents to rank."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "red fox", "documents": ["a dog", "the fox"]}]},
    )

    query: StrictStr
    documents: list[StrictStr]
    top_k: StrictInt | None = Field(None, ge=0)


@router.post("/{name}/rerank", responses=ERROR_RESPONSES, summary="Rank documents")
async def rerank(name: str, request: NativeRerankRequest, state: State) -> Any:
    """``{"results": [{"index", "score", "document"}, ...]}``, best first."""
    state.require_manager().get_reranker(name)
    state.check_text(request.query, "query")
    if len(request.documents) > state.settings.max_batch:
        raise ApiError(413, f"documents has {len(request.documents)} texts, more than the limit")
    for i, document in enumerate(request.documents):
        state.check_text(document, f"documents[{i}]", allow_empty=True)
    ranked = await ops.rerank(state, name, request.query, request.documents)
    if request.top_k is not None:
        ranked = ranked[: request.top_k]
    results = [{"index": r.index, "score": r.score, "document": r.document} for r in ranked]
    return json_response({"plugin": name, "results": results})


# ---------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------


class NativeGenerateRequest(RequestModel):
    """A prompt, generation options, and whether to stream."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prompt": "...", "options": {"max_tokens": 20}}]},
    )

    prompt: StrictStr
    options: dict[str, Any] = Field(default_factory=dict)
    stream: StrictBool = True


@router.post(
    "/{name}/generate",
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": 'NDJSON lines `{"chunk": "..."}`, then `{"done": true, "text": ...}` '
            '(an error mid-stream is a line `{"error": ...}`); with `"stream": false` one '
            'object `{"text": ...}`.',
            "content": {"application/x-ndjson": {}, "application/json": {}},
        },
    },
    summary="Generate (streamed)",
)
async def generate(name: str, request: NativeGenerateRequest, state: State) -> Any:
    """The answer, chunk by chunk as the plugin produces it (or whole)."""
    state.check_text(request.prompt, "prompt")
    if not request.stream:
        text = await ops.generate(state, name, request.prompt, request.options)
        return json_response({"plugin": name, "text": text})
    stream = await ops.open_stream(state, name, request.prompt, request.options)

    async def lines() -> AsyncIterator[bytes]:
        parts: list[str] = []
        try:
            async for chunk in stream:
                parts.append(chunk)
                yield _line({"chunk": chunk})
            yield _line({"done": True, "text": "".join(parts)})
        except WeaviateExtError as exc:
            yield _line(error_body(f"/v1/plugins/{name}/generate", from_framework(exc)))
        finally:
            await stream.aclose()

    return StreamingResponse(
        lines(), media_type="application/x-ndjson", background=BackgroundTask(stream.aclose)
    )


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------


class StoreRequest(RequestModel):
    """A key and its value: text (stored as UTF-8) or ``base64`` bytes."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"key": "greeting", "value": "hello"}]}
    )

    key: StrictStr
    value: StrictStr | None = None
    base64: StrictStr | None = None


class KeyRequest(RequestModel):
    """A key."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"key": "greeting"}]})

    key: StrictStr


def _check_key(state: ServeState, key: str) -> None:
    state.check_text(key, "key")


@router.post("/{name}/store", responses=ERROR_RESPONSES, summary="Store a value")
async def store(name: str, request: StoreRequest, state: State) -> Any:
    """``{"key": ..., "stored": N}`` once the plugin acknowledged the write."""
    handle = state.require_manager().get_storage(name)
    _check_key(state, request.key)
    if (request.value is None) == (request.base64 is None):
        raise ApiError(422, "give value or base64")
    if request.value is not None:
        data = request.value.encode("utf-8")
    else:
        try:
            data = base64.b64decode(request.base64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "base64: not valid base64") from None
    key, timeout = request.key, state.settings.timeout
    await state.call(handle, "store", lambda: handle.store(key, data, timeout=timeout))
    return json_response({"plugin": name, "key": key, "stored": len(data)})


@router.post("/{name}/retrieve", responses=ERROR_RESPONSES, summary="Read a value")
async def retrieve(name: str, request: KeyRequest, state: State) -> Any:
    """``{"key", "value" (text, or null if not UTF-8), "base64", "size"}``; 404 if absent."""
    handle = state.require_manager().get_storage(name)
    _check_key(state, request.key)
    key, timeout = request.key, state.settings.timeout
    data = await state.call(handle, "retrieve", lambda: handle.retrieve(key, timeout=timeout))
    if data is None:
        raise ApiError(404, f"no such key {key!r} in {name!r}", plugin=name)
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return json_response(
        {
            "plugin": name,
            "key": key,
            "value": text,
            "base64": base64.b64encode(data).decode("ascii"),
            "size": len(data),
        }
    )


@router.post("/{name}/delete", responses=ERROR_RESPONSES, summary="Delete a key")
async def delete(name: str, request: KeyRequest, state: State) -> Any:
    """``{"key": ..., "deleted": true}`` if it existed, ``false`` if not."""
    handle = state.require_manager().get_storage(name)
    _check_key(state, request.key)
    key, timeout = request.key, state.settings.timeout
    existed = await state.call(handle, "delete", lambda: handle.delete(key, timeout=timeout))
    return json_response({"plugin": name, "key": key, "deleted": bool(existed)})


# ---------------------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------------------


class AuthenticateRequest(RequestModel):
    """Credentials, as the auth plugin expects them (``{"api_key": ...}``)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"credentials": {"api_key": "..."}}]}
    )

    credentials: dict[str, StrictStr]


class IdentityModel(BaseModel):
    """An identity, as ``/authenticate`` returns it."""

    model_config = ConfigDict(extra="forbid")

    subject: StrictStr
    roles: list[StrictStr] = Field(default_factory=list)
    claims: dict[str, Any] = Field(default_factory=dict)


class AuthorizeRequest(RequestModel):
    """Who (``credentials``, checked first, or an ``identity``) wants to do what."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"credentials": {"api_key": "..."}, "resource": "docs", "action": "read"}]
        },
    )

    resource: StrictStr
    action: StrictStr
    credentials: dict[str, StrictStr] | None = None
    identity: IdentityModel | None = None


def _identity(identity: Identity | None) -> dict[str, Any] | None:
    if identity is None:
        return None
    return {
        "subject": identity.subject,
        "roles": list(identity.roles),
        "claims": dict(identity.claims),
        "plugin": identity.plugin,
    }


@router.post("/{name}/authenticate", responses=ERROR_RESPONSES, summary="Check credentials")
async def authenticate(name: str, request: AuthenticateRequest, state: State) -> Any:
    """``{"identity": {...}}`` if recognised, ``{"identity": null}`` if not; credentials
    the plugin recognises and rejects also give ``null``, with ``"rejected": reason``."""
    handle = state.require_manager().get_auth(name)
    credentials, timeout = request.credentials, state.settings.timeout
    try:
        identity = await state.call(
            handle, "authenticate", lambda: handle.authenticate(credentials, timeout=timeout)
        )
    except AuthenticationError as exc:
        return json_response({"plugin": name, "identity": None, "rejected": str(exc)})
    return json_response({"plugin": name, "identity": _json_safe(_identity(identity), name)})


@router.post("/{name}/authorize", responses=ERROR_RESPONSES, summary="Check a permission")
async def authorize(name: str, request: AuthorizeRequest, state: State) -> Any:
    """``{"decision": "allow" | "deny" | "abstain"}`` (``"unauthenticated"`` when the
    credentials are not recognised)."""
    handle = state.require_manager().get_auth(name)
    timeout = state.settings.timeout
    if (request.credentials is None) == (request.identity is None):
        raise ApiError(422, "give credentials or identity")
    if request.credentials is not None:
        credentials = request.credentials
        try:
            identity = await state.call(
                handle, "authenticate", lambda: handle.authenticate(credentials, timeout=timeout)
            )
        except AuthenticationError as exc:
            return json_response(
                {"plugin": name, "decision": "unauthenticated", "reason": str(exc)}
            )
        if identity is None:
            return json_response({"plugin": name, "decision": "unauthenticated"})
    else:
        assert request.identity is not None
        given = request.identity
        identity = Identity(given.subject, given.roles, given.claims)
    resource, action = request.resource, request.action
    decision = await state.call(
        handle,
        "authorize",
        lambda: handle.authorize(identity, resource, action, timeout=timeout),
    )
    word = {True: "allow", False: "deny", None: "abstain"}[decision]
    return json_response({"plugin": name, "decision": word, "subject": identity.subject})
