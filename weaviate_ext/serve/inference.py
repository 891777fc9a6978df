"""The inference-container API that Weaviate's ``text2vec-transformers`` module calls.

* ``GET /.well-known/live`` -> 204 while the process serves;
* ``GET /.well-known/ready`` -> 204 once the plugins are loaded (503 with the reason
  before, or when loading failed);
* ``GET /meta`` -> the model: name, version, type, runtime, dimensions ...;
* ``POST /vectors`` (and ``/vectors/``) ``{"text": ..., "config": {...}}`` ->
  ``{"text": ..., "vector": [...], "dim": N}``; newer Weaviate versions may send
  ``{"texts": [...]}`` and get ``{"vectors": [[...]], "dim": N}``.

Weaviate sends the body without a ``Content-Type`` header and with the fields of its
own response struct (``dims``, ``vector``, ``error``), which are ignored. The same API
is served per plugin under ``/inference/{name}/``, so one server can back several
collections, each with its own ``inferenceUrl``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Security
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.responses import Response

from weaviate_ext._version import __version__
from weaviate_ext.manager import PluginManager
from weaviate_ext.serve import ops
from weaviate_ext.serve.auth import bearer_scheme
from weaviate_ext.serve.deps import State, json_response
from weaviate_ext.serve.errors import ApiError
from weaviate_ext.serve.models import RequestModel, error_responses
from weaviate_ext.serve.state import ServeState

router = APIRouter(tags=["inference container (text2vec-transformers)"])
"""Liveness, readiness, ``/meta`` and ``/vectors``, at the root and per plugin."""

protected = APIRouter(
    tags=["inference container (text2vec-transformers)"],
    dependencies=[Security(bearer_scheme)],
)


ERROR_RESPONSES = error_responses()
"""Error answers documented for every endpoint that calls a plugin."""


# ---------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------


class VectorConfig(BaseModel):
    """``config`` of a ``/vectors`` request; every key is optional."""

    model_config = ConfigDict(extra="ignore")

    pooling_strategy: StrictStr | None = Field(
        None, description="Accepted and ignored: a plugin has one way of pooling."
    )
    task_type: Literal["passage", "query", ""] | None = Field(
        None, description="What the text is (Weaviate sends passage or query); informational."
    )
    dimensions: StrictInt | None = Field(
        None,
        description="Keep the first N values of the vector (re-normalised when the plugin "
        "declares normalised output); at most the model's dimensions.",
    )


class VectorRequest(RequestModel):
    """A ``/vectors`` request: ``text`` (or ``texts``, the batch form)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"text": "hello world", "config": {"dimensions": 256}}]},
    )

    text: StrictStr | None = Field(None, description="The text to vectorize.")
    texts: list[StrictStr] | None = Field(None, description="Several texts (the batch form).")
    config: VectorConfig | None = None


class VectorResponse(BaseModel):
    """The answer to a single-text ``/vectors`` request."""

    text: str
    vector: list[float]
    dim: int
    dims: int = Field(description="The same as dim (the field name Weaviate's client reads).")


class VectorsResponse(BaseModel):
    """The answer to a batch (``texts``) ``/vectors`` request: one row per text."""

    vectors: list[list[float]]
    dim: int
    dims: int = Field(description="The same as dim.")


class MetaResponse(BaseModel):
    """What ``/meta`` says about the plugin behind the API."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    type: str
    runtime: str
    dimensions: int | None = None


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def plugin_meta(manager: PluginManager, name: str) -> dict[str, Any]:
    """A JSON description of loaded plugin ``name``: what ``/meta`` answers."""
    manifest = manager.manifest(name)
    spec = manifest.spec
    caps = spec.capabilities
    meta: dict[str, Any] = {
        "name": manifest.name,
        "version": manifest.version,
        "type": spec.type,
        "runtime": spec.runtime,
        "description": manifest.metadata.description or None,
        "dimensions": caps.dimensions,
        "maxBatchSize": caps.max_batch_size,
        "normalized": caps.normalized,
        "deterministic": caps.deterministic,
        "server": f"weaviate-ext {__version__}",
    }
    return meta


def _ready_response(state: ServeState, name: str | None = None) -> Response:
    """204 when ready (and plugin ``name`` serves); 503 while loading, or for a plugin
    that failed to load; 404 for a name the server does not know. (The per-plugin
    endpoints need a token when authentication is on, so only a caller with one learns
    which names exist.)"""
    manager = state.require_manager()
    if name is not None:
        row = next((r for r in manager.plugins() if r.name == name), None)
        if row is None:
            raise ApiError(404, f"no plugin named {name!r}")
        if row.status != "loaded" or name not in manager.names():
            raise ApiError(503, f"plugin {name!r} is {row.status}: {row.reason}", plugin=name)
    return Response(status_code=204)


def _meta_name(state: ServeState) -> str:
    """The plugin ``/meta`` describes: the default vectorizer, else the default reranker."""
    manager = state.require_manager()
    if manager.names("vectorizer") or state.settings.vectorizer:
        return state.default_name("vectorizer")
    if manager.names("reranker") or state.settings.reranker:
        return state.default_name("reranker")
    raise ApiError(404, "no vectorizer or reranker plugin is loaded")


async def vectors(state: ServeState, name: str | None, request: VectorRequest) -> Any:
    """Answer a ``/vectors`` request with vectorizer ``name`` (``None``: the default)."""
    plugin = name if name is not None else state.default_name("vectorizer")
    dimensions = request.config.dimensions if request.config else None
    if request.text is not None and request.texts is not None:
        raise ApiError(422, "give text or texts, not both")
    if request.texts is not None:
        state.check_texts(request.texts, "texts")
        matrix = await ops.vectorize(state, plugin, request.texts, dimensions=dimensions)
        dim = int(matrix.shape[1])
        return json_response({"vectors": matrix.tolist(), "dim": dim, "dims": dim})
    if request.text is None:
        raise ApiError(422, "invalid request: text: Field required")
    state.check_text(request.text)
    vector = (await ops.vectorize(state, plugin, [request.text], dimensions=dimensions))[0]
    dim = int(vector.shape[0])
    return json_response({"text": request.text, "vector": vector.tolist(), "dim": dim, "dims": dim})


# ---------------------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------------------


@router.get("/.well-known/live", status_code=204, summary="Liveness")
async def live() -> Response:
    """204 while the server process answers (also while the plugins load)."""
    return Response(status_code=204)


@router.get(
    "/.well-known/ready",
    status_code=204,
    summary="Readiness",
    responses=error_responses(503),
)
async def ready(state: State) -> Response:
    """204 once the plugins are loaded; 503 with the reason before."""
    return _ready_response(state)


@protected.get(
    "/inference/{name}/.well-known/live",
    status_code=204,
    responses=error_responses(401, 404),
    summary="Liveness",
)
async def live_of(name: str, state: State) -> Response:
    """204 while the server process answers; 404 once the plugins are loaded if none is
    named ``name``."""
    manager = state.manager if state.ready else None
    if manager is not None and name not in {row.name for row in manager.plugins()}:
        raise ApiError(404, f"no plugin named {name!r}")
    return Response(status_code=204)


@protected.get(
    "/inference/{name}/.well-known/ready",
    status_code=204,
    responses=error_responses(401, 404, 503),
    summary="Plugin readiness",
)
async def ready_of(name: str, state: State) -> Response:
    """204 once plugin ``name`` is loaded and its runtime serves."""
    return _ready_response(state, name)


@protected.get(
    "/meta",
    response_model=MetaResponse,
    responses=error_responses(401, 404, 409, 503),
    summary="The model",
)
async def meta(state: State) -> Any:
    """The plugin behind ``/vectors`` (else behind ``/rerank``): name, version, runtime,
    dimensions and capabilities."""
    return json_response(plugin_meta(state.require_manager(), _meta_name(state)))


@protected.get(
    "/inference/{name}/meta",
    response_model=MetaResponse,
    responses=error_responses(401, 404, 503),
    summary="A plugin",
)
async def meta_of(name: str, state: State) -> Any:
    """Plugin ``name``: name, version, runtime, dimensions and capabilities."""
    manager = state.require_manager()
    manager.get(name)
    return json_response(plugin_meta(manager, name))


@protected.post(
    "/vectors",
    response_model=VectorResponse | VectorsResponse,
    responses=ERROR_RESPONSES,
    summary="Vectorize a text",
)
async def post_vectors(request: VectorRequest, state: State) -> Any:
    """The vector of ``text`` from the default vectorizer (``--vectorizer``)."""
    return await vectors(state, None, request)


@protected.post("/vectors/", include_in_schema=False)
async def post_vectors_slash(request: VectorRequest, state: State) -> Any:
    """``/vectors`` with a trailing slash, as some clients send it."""
    return await vectors(state, None, request)


@protected.post(
    "/inference/{name}/vectors",
    response_model=VectorResponse | VectorsResponse,
    responses=ERROR_RESPONSES,
    summary="Vectorize a text with a named plugin",
)
async def post_vectors_of(name: str, request: VectorRequest, state: State) -> Any:
    """The vector of ``text`` from vectorizer ``name``."""
    return await vectors(state, name, request)


@protected.post("/inference/{name}/vectors/", include_in_schema=False)
async def post_vectors_of_slash(name: str, request: VectorRequest, state: State) -> Any:
    """``/inference/{name}/vectors`` with a trailing slash."""
    return await vectors(state, name, request)
