"""FastAPI dependencies and the JSON response every endpoint returns."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from fastapi import Depends, Request
from starlette.responses import JSONResponse

from weaviate_ext.serve.state import ServeState


async def get_state(request: Request) -> ServeState:
    """The :class:`ServeState` of the app serving ``request`` (async: FastAPI would run a
    plain function in a worker thread)."""
    state: ServeState = request.app.state.serve
    return state


State = Annotated[ServeState, Depends(get_state)]
"""An endpoint parameter receiving the app's state."""


class FastJSONResponse(JSONResponse):
    """JSON rendered by pydantic-core (FastAPI's own serializer, in Rust).

    Vectors are long lists of floats: the standard library's ``json.dumps`` spends about
    1 µs per float formatting them, pydantic-core a tenth of that.
    """

    def render(self, content: Any) -> bytes:
        """``content`` as compact UTF-8 JSON."""
        return pydantic_core.to_json(content)


def json_response(content: Any, status_code: int = 200) -> JSONResponse:
    """``content`` as JSON, skipping FastAPI's response-model pass (vectors are big)."""
    return FastJSONResponse(content, status_code=status_code)
