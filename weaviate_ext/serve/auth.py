"""Optional bearer-token authentication, before a request reaches any endpoint.

With tokens configured (``--auth-token``, ``AUTHENTICATION_ALLOWED_TOKENS=a,b``), a
request needs ``Authorization: Bearer <one of them>``; with ``--auth-plugins`` the loaded
auth plugins may recognise the token instead (``manager.authenticate`` with the
credentials ``{"authorization": "Bearer <t>", "token": <t>, "api_key": <t>}``). Anything
else is a 401 ``{"error": "Unauthorized"}``, checked before the body is read.

Liveness and readiness of the server, and the API description (``/openapi.json``,
``/docs``, ``/redoc``, which show no data) stay open; the per-plugin ones
(``/inference/{name}/.well-known/...``) need a token, so that only a caller with one
learns whether a plugin name exists (an unknown one is a 404 after the token check).
"""

from __future__ import annotations

import hmac
import logging
import re

import anyio.to_thread
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from weaviate_ext.errors import AuthenticationError, WeaviateExtError
from weaviate_ext.serve.errors import error_response, unauthorized
from weaviate_ext.serve.state import ServeState

log = logging.getLogger("weaviate_ext.serve")

OPEN_PATHS = re.compile(
    r"^/\.well-known/(live|ready)$|^/(openapi\.json|docs|docs/oauth2-redirect|redoc)$"
)
"""Paths answered without a token. (Not the per-plugin ``/inference/{name}/.well-known/``
ones: they would tell anybody which plugin names exist.)"""

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A token of AUTHENTICATION_ALLOWED_TOKENS / --auth-token, or one an auth "
    "plugin recognises (--auth-plugins). Needed only when the server is started with one.",
)
"""Declares the bearer scheme in the OpenAPI document (the middleware enforces it)."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class BearerAuthMiddleware:
    """Refuses requests without a valid bearer token when authentication is on."""

    def __init__(self, app: ASGIApp, state: ServeState) -> None:
        self.app = app
        self.state = state
        self._tokens = tuple(t.encode("utf-8") for t in state.settings.tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token, then pass the request on (or answer 401)."""
        if (
            scope["type"] != "http"
            or not self.state.settings.auth_enabled
            or OPEN_PATHS.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope).get("authorization"))
        if token is not None and await self.accepts(token):
            await self.app(scope, receive, send)
            return
        response = error_response(scope["path"], unauthorized())
        await response(scope, receive, send)

    async def accepts(self, token: str) -> bool:
        """Whether ``token`` is a configured one, or one an auth plugin recognises."""
        raw = token.encode("utf-8")
        # compare with every token, without stopping at the first match
        matches = [hmac.compare_digest(raw, known) for known in self._tokens]
        if any(matches):
            return True
        if not self.state.settings.auth_plugins or not self.state.ready:
            return False
        manager = self.state.manager
        if manager is None:
            return False
        credentials = {"authorization": f"Bearer {token}", "token": token, "api_key": token}
        try:
            identity = await anyio.to_thread.run_sync(
                manager.authenticate, credentials, limiter=self.state.limiter
            )
        except AuthenticationError:
            return False
        except WeaviateExtError as exc:
            log.warning("auth plugins could not check a token: %s", exc)
            return False
        return identity is not None
