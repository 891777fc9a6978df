"""What every request body must be, whatever the endpoint: the base of the request models.

JSON can spell values that no plugin can take: a lone surrogate (``"\\ud800"``, valid
JSON syntax but not Unicode text, which UTF-8 cannot encode, so no wasm, native or
gRPC plugin can receive it and no answer can echo it), and ``NaN``, ``Infinity`` or
``1e999`` (not JSON at all, but Python's parser and clients produce them). Every request
model derives from :class:`RequestModel`, whose validator walks the parsed body once,
before any field is validated and so before any plugin is called, and refuses such a
value with a 422 naming where it is (``input[3]``, ``messages[0].content``,
``options.temperature``) -- also inside free-form fields (``options``, ``data``,
``claims``), and also in fields the model ignores.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from weaviate_ext.inputs import lone_surrogate

TEXT_ERROR = "unencodable_text"
"""pydantic error type of a string UTF-8 cannot encode."""

NUMBER_ERROR = "non_finite_number"
"""pydantic error type of NaN or an infinite number."""

BODY_ERRORS = frozenset({TEXT_ERROR, NUMBER_ERROR})
"""Error types whose ``ctx["where"]`` names the offending value in the body."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _member(where: str, key: str) -> str:
    if _NAME.match(key):
        return f"{where}.{key}" if where else key
    return f"{where}[{key!r}]"


def unfit_value(body: Any) -> tuple[str, str, str] | None:
    """The first value in ``body`` (parsed JSON) that no plugin can take:
    ``(error type, where, problem)``, or ``None`` when everything fits.

    Iterative, so a deeply nested body cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            position = lone_surrogate(value)
            if position is not None:
                problem = (
                    f"not valid Unicode text: a lone surrogate (U+{ord(value[position]):04X}) "
                    f"at position {position} cannot be encoded as UTF-8"
                )
                return TEXT_ERROR, where or "body", problem
        elif isinstance(value, float):
            if not math.isfinite(value):
                return NUMBER_ERROR, where or "body", f"{value} is not a finite number"
        elif isinstance(value, dict):
            items = list(value.items())
            for key, _ in items:
                if isinstance(key, str) and lone_surrogate(key) is not None:
                    return (
                        TEXT_ERROR,
                        where or "body",
                        "a key is not valid Unicode text (a lone surrogate cannot be "
                        "encoded as UTF-8)",
                    )
            stack.extend((_member(where, str(key)), item) for key, item in reversed(items))
        elif isinstance(value, list | tuple):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


class RequestModel(BaseModel):
    """Base of every request body: refuses text UTF-8 cannot encode and non-finite
    numbers anywhere in it, with a 422 naming the field (see the module)."""

    @model_validator(mode="before")
    @classmethod
    def _encodable_and_finite(cls, data: Any) -> Any:
        found = unfit_value(data) if isinstance(data, dict) else None
        if found is not None:
            kind, where, problem = found
            raise PydanticCustomError(
                kind, "{where}: {problem}", {"where": where, "problem": problem}
            )
        return data


# ---------------------------------------------------------------------------------------
# error answers, as the OpenAPI document declares them
# ---------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """An error answer of the inference-container, reranker, Ollama and native APIs."""

    error: str = Field(description="What went wrong, in one line.")
    plugin: str | None = Field(None, description="The plugin to blame, when there is one.")


class OpenAIErrorDetail(BaseModel):
    """The ``error`` object of an OpenAI-shaped error answer."""

    message: str
    type: str = Field(
        description="invalid_request_error, authentication_error, not_found_error, "
        "server_error or timeout_error"
    )
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """An error answer of the OpenAI-compatible endpoints (OpenAI's shape)."""

    error: OpenAIErrorDetail


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON; an operation of another plugin type; a model of the wrong type",
    401: "Authentication is on and the bearer token is missing or wrong (`Unauthorized`)",
    404: "No such plugin, model or key; no plugin of the type is loaded",
    409: "Several plugins of the type are loaded and none is the default",
    413: "A text longer than the limit, too many texts, or a body larger than the limit",
    422: "A request that does not fit: wrong types, missing fields, empty text, text that "
    "cannot be encoded as UTF-8, NaN or an infinite number, input the plugin refused",
    502: "The plugin failed",
    503: "Not ready (the plugins are loading, or loading failed); the plugin is busy or "
    "over a resource limit (retry later, see `Retry-After`)",
    504: "The plugin did not answer in time",
}
"""What each error status means, for the OpenAPI document."""

PLUGIN_CALL_ERRORS = (400, 401, 404, 409, 413, 422, 502, 503, 504)
"""The error answers of an endpoint that calls a plugin."""


def error_responses(*statuses: int, openai: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring the error answers ``statuses`` (default: those of
    an endpoint that calls a plugin), in OpenAI's shape with ``openai``."""
    model = OpenAIErrorBody if openai else ErrorBody
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses or PLUGIN_CALL_ERRORS:
        entry: dict[str, Any] = {"model": model, "description": ERROR_DESCRIPTIONS[status]}
        if status == 503:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait, when the plugin is busy",
                    "schema": {"type": "integer"},
                }
            }
        declared[status] = entry
    return declared
