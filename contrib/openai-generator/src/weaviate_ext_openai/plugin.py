"""``openai-generator``: generation through an OpenAI-compatible chat completions API.

Each call is one ``POST {base_url}/chat/completions`` with the prompt as the user
message (after the configured system message, if any). ``generate`` asks for the whole
answer; ``generate_stream`` sets ``"stream": true`` and yields each ``delta.content``
of the server-sent events until ``data: [DONE]``.

Per-call options (all optional; others are ignored): ``max_tokens`` (int >= 1),
``temperature`` (0 to 2), ``seed`` (int), ``stop`` (a string or a list of up to 4),
``top_p`` (0 to 1), ``presence_penalty`` and ``frequency_penalty`` (-2 to 2). Each
is checked before anything is sent and passed through under the same name.

Errors are framework errors that never contain the API key: a refused connection, a
timeout, an HTTP error status, a body that is not the expected JSON, or a malformed
event stream is a :class:`~weaviate_ext.PluginCallError` (a timeout caused by the
call's deadline is :class:`~weaviate_ext.DeadlineExceeded`); a request the server
rejects as invalid (HTTP 400, 413, 422; a prompt longer than the model's context, for
example) is :class:`~weaviate_ext.InvalidInput`, as are bad options.

HTTP is done with ``httpx``: one connection-pooling :class:`httpx.Client` per plugin
instance, shared by all threads (it is thread-safe), redirects not followed (so the
Authorization header is never sent to another host).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

import httpx

from weaviate_ext import (
    ConfigError,
    Deadline,
    DeadlineExceeded,
    InvalidInput,
    Manifest,
    PluginCallError,
    PluginConfig,
    Secret,
    hookimpl,
)
from weaviate_ext_openai.sse import parse_events

__all__ = ["OpenAIGenerator", "request_options"]

USER_AGENT = "weaviate-ext-openai-generator/0.1.0"
DETAIL_LIMIT = 300
"""At most this many characters of a server's error message go into an error."""
INVALID_REQUEST = frozenset({400, 413, 422})


def _number(options: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"option {name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise InvalidInput(f"option {name} must be from {low:g} to {high:g}, got {value:g}")
    return float(value)


def _integer(options: Mapping[str, Any], name: str, low: int) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"option {name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise InvalidInput(f"option {name} must be >= {low}, got {value}")
    return value


def _stop(options: Mapping[str, Any]) -> list[str] | None:
    value = options.get("stop")
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list | tuple)
        or not 1 <= len(items) <= 4
        or not all(isinstance(s, str) and s for s in items)
    ):
        raise InvalidInput("option stop must be a non-empty string or a list of 1 to 4 of them")
    return list(items)


def request_options(options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling fields of a request: ``defaults`` overridden by the known ``options``.

    Raises :class:`~weaviate_ext.InvalidInput` naming the first bad option; fields with
    no value are left out (the server's default applies).
    """
    fields: dict[str, Any] = {
        "max_tokens": _integer(options, "max_tokens", 1),
        "temperature": _number(options, "temperature", 0, 2),
        "seed": _integer(options, "seed", -(2**63)),
        "stop": _stop(options),
        "top_p": _number(options, "top_p", 0, 1),
        "presence_penalty": _number(options, "presence_penalty", -2, 2),
        "frequency_penalty": _number(options, "frequency_penalty", -2, 2),
    }
    merged = dict(defaults)
    merged.update({k: v for k, v in fields.items() if v is not None})
    return merged


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 3] + "..."


class OpenAIGenerator:
    """The plugin object: ``generate`` and ``generate_stream`` over HTTP."""

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._url = ""
        self._where = ""
        self._model = ""
        self._api_key: Secret | None = None
        self._timeout = 60.0
        self._defaults: dict[str, Any] = {}
        self._system_prompt = ""

    def __repr__(self) -> str:
        return f"<OpenAIGenerator {self._where or 'not set up'} model={self._model!r}>"

    # -- lifecycle -----------------------------------------------------------------------

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check the config and open the HTTP client (nothing is sent yet)."""
        base = config.get_string("base_url").strip()
        try:
            url = httpx.URL(base)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ConfigError(f"config key 'base_url': not a URL ({exc})") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                "config key 'base_url' must be an http:// or https:// URL with a host, "
                "like https://api.openai.com/v1"
            )
        # Errors show where the server is, never credentials written into the URL.
        self._where = str(url.copy_with(username=None, password=None)).rstrip("/")
        self._url = base.rstrip("/") + "/chat/completions"
        self._model = config.get_string("model").strip()
        self._api_key = None
        if "api_key" in config and config.reveal("api_key"):
            self._api_key = config["api_key"]
        self._timeout = config.get_float("timeout")
        if not math.isfinite(self._timeout) or self._timeout <= 0:
            raise ConfigError(f"config key 'timeout' must be more than 0, got {self._timeout:g}")
        max_tokens = config.get_int("max_tokens")
        if max_tokens < 1:
            raise ConfigError(f"config key 'max_tokens' must be at least 1, got {max_tokens}")
        self._defaults = {"max_tokens": max_tokens}
        if "temperature" in config:
            temperature = config.get_float("temperature")
            if not 0 <= temperature <= 2:
                raise ConfigError(
                    f"config key 'temperature' must be from 0 to 2, got {temperature:g}"
                )
            self._defaults["temperature"] = temperature
        self._system_prompt = config.get_string("system_prompt")
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    @hookimpl
    def plugin_health(self) -> bool:
        """Healthy once set up (the server is not asked: it may start later)."""
        return self._client is not None

    @hookimpl
    def plugin_close(self) -> None:
        """Close the HTTP client and its connections."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- generation ----------------------------------------------------------------------

    @hookimpl
    def generate(self, prompt: str, options: Mapping[str, Any], deadline: Deadline) -> str:
        """The whole answer, from one non-streaming request."""
        body = self._body(prompt, options, stream=False)
        timeout, by_deadline = self._limit(deadline)
        response = self._send(body, deadline, timeout, by_deadline, stream=False)
        if response.status_code >= 300:
            self._status_error(response, deadline)
        return self._message_content(self._json(response, deadline), deadline)

    @hookimpl
    def generate_stream(
        self, prompt: str, options: Mapping[str, Any], deadline: Deadline
    ) -> Iterator[str]:
        """The answer's ``delta.content`` pieces, from one streaming request."""
        body = self._body(prompt, options, stream=True)
        return self._stream(body, deadline)

    def _stream(self, body: dict[str, Any], deadline: Deadline) -> Iterator[str]:
        timeout, by_deadline = self._limit(deadline)
        response = self._send(body, deadline, timeout, by_deadline, stream=True)
        try:
            if response.status_code >= 300:
                self._read(response, deadline, timeout, by_deadline)
                self._status_error(response, deadline)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                # A server that ignores "stream": the whole answer as one chunk.
                self._read(response, deadline, timeout, by_deadline)
                answer = self._message_content(self._json(response, deadline), deadline)
                if answer:
                    yield answer
                return
            yield from self._events(response, deadline, timeout, by_deadline)
        finally:
            response.close()

    def _events(
        self, response: httpx.Response, deadline: Deadline, timeout: float, by_deadline: bool
    ) -> Iterator[str]:
        finished = False
        events = 0
        try:
            for event in parse_events(response.iter_lines()):
                events += 1
                if event.data.strip() == "[DONE]":
                    return
                chunk = self._event_json(event.data, deadline)
                if event.event == "error" or chunk.get("error"):
                    detail = self._error_detail(chunk.get("error", chunk))
                    self._fail(deadline, f"the server reported an error in the stream: {detail}")
                choices = chunk.get("choices")
                if not isinstance(choices, list):
                    self._malformed(deadline, "an event has no 'choices' list", event.data)
                if not choices:  # e.g. a usage-only chunk
                    continue
                choice = choices[0]
                if not isinstance(choice, dict):
                    self._malformed(deadline, "a choice is not an object", event.data)
                delta = choice.get("delta") or {}
                content = delta.get("content") if isinstance(delta, dict) else None
                if content is not None and not isinstance(content, str):
                    self._malformed(deadline, "delta.content is not a string", event.data)
                if content:
                    yield content
                if choice.get("finish_reason"):
                    finished = True
                deadline.check()
        except httpx.HTTPError as exc:
            self._transport_error(exc, deadline, timeout, by_deadline)
        if not events:
            self._fail(
                deadline,
                "malformed event stream: it ended without any event (the server may have "
                "failed after it started to answer; see its log)",
            )
        if not finished:
            self._fail(
                deadline,
                "malformed event stream: it ended before the answer was finished "
                "(no finish_reason and no 'data: [DONE]')",
            )

    # -- helpers -------------------------------------------------------------------------

    def _send(
        self,
        body: dict[str, Any],
        deadline: Deadline,
        timeout: float,
        by_deadline: bool,
        *,
        stream: bool,
    ) -> httpx.Response:
        """POST ``body``; the response's headers have arrived when this returns.

        A server may close a keep-alive connection just as the pool reuses it; the
        request then fails before any answer arrives ("Server disconnected without
        sending a response", "Connection reset by peer"). Such a request is sent once
        more, on a new connection, as OpenAI's own client does.
        """
        client = self._require_client(deadline)
        request = client.build_request(
            "POST", self._url, json=body, headers=self._headers(), timeout=timeout
        )
        for attempt in (1, 2):
            try:
                return client.send(request, stream=stream)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt == 2:
                    self._transport_error(exc, deadline, timeout, by_deadline)
                deadline.check()
            except httpx.HTTPError as exc:
                self._transport_error(exc, deadline, timeout, by_deadline)
        raise AssertionError("unreachable")

    def _body(self, prompt: str, options: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
        if not isinstance(prompt, str):
            raise InvalidInput(f"prompt must be a str, got {type(prompt).__name__}")
        messages = []
        if self._system_prompt:
            messages.append({"role": "system", "content": self._system_prompt})
        messages.append({"role": "user", "content": prompt})
        body: dict[str, Any] = {"messages": messages}
        if self._model:
            body["model"] = self._model
        body.update(request_options(options, self._defaults))
        body["stream"] = stream
        return body

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
        return headers

    def _require_client(self, deadline: Deadline) -> httpx.Client:
        if self._client is None:
            self._fail(deadline, "the plugin is closed")
        return self._client

    def _limit(self, deadline: Deadline) -> tuple[float, bool]:
        """The HTTP timeout of a request: ``timeout``, or the deadline if that is sooner."""
        deadline.check()
        remaining = deadline.remaining()
        if remaining < self._timeout:
            return max(remaining, 0.001), True
        return self._timeout, False

    def _scrub(self, text: str) -> str:
        if self._api_key is not None:
            key = self._api_key.reveal()
            if key:
                text = text.replace(key, "**********")
        return text

    def _fail(self, deadline: Deadline, message: str) -> NoReturn:
        raise PluginCallError(deadline.plugin, deadline.hook, self._scrub(message))

    def _malformed(self, deadline: Deadline, what: str, data: str) -> NoReturn:
        self._fail(deadline, f"malformed event stream: {what}: {_shorten(data)!r}")

    def _transport_error(
        self, exc: httpx.HTTPError, deadline: Deadline, timeout: float, by_deadline: bool
    ) -> NoReturn:
        if isinstance(exc, httpx.TimeoutException):
            if by_deadline:
                raise DeadlineExceeded(
                    deadline.plugin,
                    deadline.hook,
                    f"deadline of {deadline.timeout or 0:g}s exceeded waiting for {self._where}",
                ) from None
            self._fail(
                deadline,
                f"{self._where} did not answer within {timeout:g}s (config timeout)",
            )
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            self._fail(deadline, f"cannot connect to {self._where}: {reason}")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            self._fail(deadline, f"the connection to {self._where} broke: {reason}")
        self._fail(deadline, f"request to {self._where} failed: {type(exc).__name__}: {reason}")

    def _read(
        self, response: httpx.Response, deadline: Deadline, timeout: float, by_deadline: bool
    ) -> None:
        try:
            response.read()
        except httpx.HTTPError as exc:
            self._transport_error(exc, deadline, timeout, by_deadline)

    @staticmethod
    def _error_detail(error: Any) -> str:
        """The readable part of an error body: OpenAI's ``error.message``, FastAPI's
        ``detail``, or the JSON itself."""
        if isinstance(error, dict):
            for key in ("message", "detail", "error"):
                value = error.get(key)
                if isinstance(value, str) and value:
                    return _shorten(value)
                if isinstance(value, dict):
                    return OpenAIGenerator._error_detail(value)
        if isinstance(error, str):
            return _shorten(error)
        return _shorten(json.dumps(error, ensure_ascii=False, default=str))

    def _status_error(self, response: httpx.Response, deadline: Deadline) -> NoReturn:
        code = response.status_code
        try:
            detail = self._error_detail(response.json())
        except ValueError:
            detail = _shorten(response.text) or response.reason_phrase
        status = f"HTTP {code} {response.reason_phrase}".rstrip()
        if code in INVALID_REQUEST:
            raise InvalidInput(
                self._scrub(f"{self._where} refused the request ({status}): {detail}")
            )
        if code in (401, 403):
            hint = "check api_key" if self._api_key is not None else "api_key is not set"
            self._fail(deadline, f"authentication failed ({status}): {detail} ({hint})")
        if code == 404:
            self._fail(
                deadline,
                f"not found ({status}) at {self._url}: {detail} (check base_url and model)",
            )
        if code == 429:
            self._fail(deadline, f"rate limited or out of quota ({status}): {detail}")
        if 300 <= code < 400:
            where = response.headers.get("location", "?")
            self._fail(deadline, f"{status}: redirected to {where} (not followed; fix base_url)")
        self._fail(deadline, f"{self._where} answered {status}: {detail}")

    def _json(self, response: httpx.Response, deadline: Deadline) -> Any:
        try:
            return response.json()
        except ValueError:
            self._fail(
                deadline, f"the answer from {self._where} is not JSON: {_shorten(response.text)!r}"
            )

    def _event_json(self, data: str, deadline: Deadline) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError:
            self._malformed(deadline, "an event's data is not JSON", data)
        if not isinstance(chunk, dict):
            self._malformed(deadline, "an event's data is not a JSON object", data)
        return chunk

    def _message_content(self, data: Any, deadline: Deadline) -> str:
        if isinstance(data, dict) and data.get("error"):
            detail = self._error_detail(data["error"])
            self._fail(deadline, f"the server reported an error: {detail}")
        try:
            content = data["choices"][0]["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            self._fail(
                deadline,
                "the answer has no choices[0].message: "
                f"{_shorten(json.dumps(data, ensure_ascii=False, default=str))!r}",
            )
        if content is None:  # e.g. a refusal or a tool call: no text
            return ""
        if not isinstance(content, str):
            self._fail(deadline, f"choices[0].message.content is {type(content).__name__}")
        return content
