"""The reranker API that Weaviate's ``reranker-transformers`` module calls.

``POST /rerank`` with ``{"query": ..., "documents": [...], "property": ""}`` answers
``{"query": ..., "property": null, "score": null, "scores": [{"document": ..., "score":
...}, ...]}``: one entry per document, **in input order** (Weaviate sorts them itself).
The older single form, ``{"query": ..., "property": "text"}`` without ``documents``,
answers ``{"query": ..., "property": "text", "score": ...}``. Also served per plugin
as ``/inference/{name}/rerank``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from weaviate_ext.serve import ops
from weaviate_ext.serve.auth import bearer_scheme
from weaviate_ext.serve.deps import State, json_response
from weaviate_ext.serve.errors import ApiError
from weaviate_ext.serve.inference import ERROR_RESPONSES
from weaviate_ext.serve.models import RequestModel
from weaviate_ext.serve.state import ServeState

router = APIRouter(
    tags=["reranker (reranker-transformers)"], dependencies=[Security(bearer_scheme)]
)
"""``/rerank`` at the root and per plugin."""


class RerankRequest(RequestModel):
    """A ``/rerank`` request: a query and the documents (or one ``property`` text)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"query": "red fox", "documents": ["a dog", "the red fox"], "property": ""}
            ]
        },
    )

    query: StrictStr = Field(description="The query the documents are scored against.")
    documents: list[StrictStr] | None = Field(
        None, description="The documents; the answer scores each, in this order."
    )
    property: StrictStr | None = Field(
        None, description="Without documents: the one text to score (the older form)."
    )


class DocumentScore(BaseModel):
    """One document's score."""

    document: str
    score: float


class RerankResponse(BaseModel):
    """The answer: ``scores`` in input order (batch form) or ``score`` (single form)."""

    query: str
    property: str | None = None
    score: float | None = None
    scores: list[DocumentScore] | None = None


async def rerank(state: ServeState, name: str | None, request: RerankRequest) -> Any:
    """Answer a ``/rerank`` request with reranker ``name`` (``None``: the default)."""
    plugin = name if name is not None else state.default_name("reranker")
    state.check_text(request.query, "query")
    if request.documents is not None:
        documents = request.documents
        if len(documents) > state.settings.max_batch:
            limit = state.settings.max_batch
            raise ApiError(
                413, f"documents has {len(documents)} texts, more than the limit of {limit}"
            )
        for i, document in enumerate(documents):
            state.check_text(document, f"documents[{i}]", allow_empty=True)
        scores = await ops.scores_in_input_order(state, plugin, request.query, documents)
        return json_response(
            {
                "query": request.query,
                "property": None,
                "score": None,
                "scores": [
                    {"document": d, "score": s} for d, s in zip(documents, scores, strict=True)
                ],
            }
        )
    if request.property is None:
        raise ApiError(422, "invalid request: give documents (or property, the single form)")
    state.check_text(request.property, "property", allow_empty=True)
    (score,) = await ops.scores_in_input_order(state, plugin, request.query, [request.property])
    return json_response({"query": request.query, "property": request.property, "score": score})


@router.post(
    "/rerank",
    response_model=RerankResponse,
    responses=ERROR_RESPONSES,
    summary="Score documents for a query",
)
async def post_rerank(request: RerankRequest, state: State) -> Any:
    """Scores of the documents for the query from the default reranker (``--reranker``)."""
    return await rerank(state, None, request)


@router.post(
    "/inference/{name}/rerank",
    response_model=RerankResponse,
    responses=ERROR_RESPONSES,
    summary="Score documents with a named plugin",
)
async def post_rerank_of(name: str, request: RerankRequest, state: State) -> Any:
    """Scores of the documents for the query from reranker ``name``."""
    return await rerank(state, name, request)
