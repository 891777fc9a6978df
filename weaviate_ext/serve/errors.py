"""Errors as JSON: every failure a client sees is a status code and a JSON body.

The inference-container, reranker, Ollama and native APIs answer ``{"error": "..."}``
(plus ``"plugin"`` when a plugin is to blame), which is what Weaviate's modules read.
The OpenAI-compatible endpoints answer OpenAI's shape,
``{"error": {"message": ..., "type": ..., "param": null, "code": ...}}``, which OpenAI
client libraries turn into readable exceptions. No body ever holds a traceback: an
unexpected exception is logged on the server and answered with a one-line 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from weaviate_ext.errors import (
    AuthenticationError,
    DeadlineExceeded,
    InvalidInput,
    PluginBusy,
    PluginCallError,
    PluginNotFound,
    PluginNotLoaded,
    PluginTypeError,
    PluginUnavailable,
    ResourceLimitExceeded,
    WeaviateExtError,
)
from weaviate_ext.serve.models import BODY_ERRORS

log = logging.getLogger("weaviate_ext.serve")

OPENAI_PREFIXES = ("/v1/embeddings", "/v1/chat/", "/v1/models", "/v1/completions")
"""Paths answered with OpenAI's error shape."""

MAX_VALIDATION_PROBLEMS = 3
"""Validation problems listed in one error message."""


class ApiError(Exception):
    """An error answer: HTTP ``status``, a one-line ``message``, optionally a plugin.

    :param kind: OpenAI's error ``type`` for the OpenAI-compatible endpoints
        (``invalid_request_error``, ``authentication_error``, ``not_found_error``,
        ``server_error``, ``timeout_error``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        plugin: str | None = None,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.plugin = plugin
        self.kind = kind or _kind_of(status)
        self.headers = dict(headers or {})
        self.cause: BaseException | None = None
        """The framework error this answer stands for (a failed plugin call), if any."""


def _kind_of(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 504:
        return "timeout_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def unauthorized() -> ApiError:
    """The 401 answer for a missing or wrong bearer token."""
    return ApiError(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})


def from_framework(exc: WeaviateExtError) -> ApiError:
    """The HTTP answer for an error of the framework (a plugin call, a lookup)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    plugin = exc.plugin
    if isinstance(exc, InvalidInput):
        return ApiError(422, message, plugin=plugin)
    if isinstance(exc, PluginNotFound):
        return ApiError(404, message)
    if isinstance(exc, PluginTypeError):
        return ApiError(400, message, plugin=plugin)
    if isinstance(exc, AuthenticationError):
        return ApiError(401, message)
    if isinstance(exc, PluginNotLoaded):
        return ApiError(503, message, plugin=plugin)
    if isinstance(exc, DeadlineExceeded):
        return ApiError(504, message, plugin=plugin)
    if isinstance(exc, PluginBusy):
        # every slot of its bulkhead stayed taken: the plugin is overloaded or hung
        retry = str(max(1, math.ceil(exc.retry_after)))
        return ApiError(503, message, plugin=plugin, headers={"Retry-After": retry})
    if isinstance(exc, ResourceLimitExceeded | PluginUnavailable):
        # the plugin is overloaded or no replica is serving: worth retrying later
        return ApiError(503, message, plugin=plugin)
    if isinstance(exc, PluginCallError):
        return ApiError(502, message, plugin=plugin)
    return ApiError(500, message, plugin=plugin)


def is_openai_path(path: str) -> bool:
    """Whether ``path`` belongs to the OpenAI-compatible endpoints."""
    return path.startswith(OPENAI_PREFIXES)


def error_body(path: str, error: ApiError) -> dict[str, Any]:
    """The JSON body of ``error`` in the shape the API under ``path`` uses."""
    if is_openai_path(path):
        return {
            "error": {
                "message": error.message,
                "type": error.kind,
                "param": None,
                "code": None,
            }
        }
    body: dict[str, Any] = {"error": error.message}
    if error.plugin:
        body["plugin"] = error.plugin
    return body


def error_response(path: str, error: ApiError) -> JSONResponse:
    """``error`` as a JSON response for a request to ``path``."""
    return JSONResponse(error_body(path, error), status_code=error.status, headers=error.headers)


def describe_validation(errors: Sequence[Any]) -> tuple[int, str]:
    """Status and one line for pydantic's validation errors of a request.

    Malformed JSON is a 400; a body that parses but does not fit is a 422 naming the
    fields (``text: Input should be a valid string``).
    """
    for error in errors:
        if error.get("type") == "json_invalid":
            detail = (error.get("ctx") or {}).get("error", "")
            where = error.get("loc", ("body", 0))[-1]
            return 400, f"malformed JSON: {detail} (at character {where})".replace(" : ", ": ")
    for error in errors:
        if error.get("type") in BODY_ERRORS:  # names its place in the body itself
            return 422, f"invalid request: {error.get('msg', 'invalid')}"
    for error in errors:
        if tuple(error.get("loc", ())) == ("body",) and error.get("type") in (
            "model_attributes_type",
            "dict_type",
        ):
            return 422, (
                "the body must be a JSON object (sent without a Content-Type, or as "
                "application/json)"
            )
    parts = []
    for error in errors[:MAX_VALIDATION_PROBLEMS]:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    if len(errors) > MAX_VALIDATION_PROBLEMS:
        parts.append(f"... {len(errors) - MAX_VALIDATION_PROBLEMS} more")
    return 422, "invalid request: " + "; ".join(parts)


class ContentLengthLimitMiddleware:
    """Answers a request whose declared ``Content-Length`` is over the limit with a JSON
    413 before anything reads it. (FastAPI's ``max_body_size`` enforces the limit while a
    body is read, which covers chunked bodies, but answers declared ones in plain text.)"""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a too large declared body; pass everything else on."""
        if scope["type"] == "http":
            declared = Headers(scope=scope).get("content-length", "")
            if declared.isdigit() and int(declared) > self.limit:
                message = (
                    f"the request body is {declared} bytes, more than the limit of {self.limit}"
                )
                response = error_response(scope["path"], ApiError(413, message))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a JSON answer."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        """An :class:`ApiError` as it is."""
        assert isinstance(exc, ApiError)
        return error_response(request.url.path, exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        """A body that does not parse (400) or does not fit (422)."""
        assert isinstance(exc, RequestValidationError)
        status, message = describe_validation(list(exc.errors()))
        return error_response(request.url.path, ApiError(status, message))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        """Starlette's and FastAPI's own errors (404, 405, 413, ...)."""
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "malformed JSON: the body could not be decoded"
        if exc.status_code == 413:
            message = "the request body is larger than the limit (--max-body-bytes)"
        headers = dict(exc.headers or {})
        return error_response(request.url.path, ApiError(exc.status_code, message, headers=headers))

    async def framework_error(request: Request, exc: Exception) -> JSONResponse:
        """An error of the framework outside a plugin call (a lookup, a bad input)."""
        assert isinstance(exc, WeaviateExtError)
        error = from_framework(exc)
        if error.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, error.message)
        return error_response(request.url.path, error)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Anything else: logged with its traceback, answered with one line."""
        log.error("%s %s: internal error", request.method, request.url.path, exc_info=exc)
        error = ApiError(500, f"internal error: {type(exc).__name__}")
        return error_response(request.url.path, error)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(WeaviateExtError, framework_error)
    app.add_exception_handler(Exception, unexpected)
