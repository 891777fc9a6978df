"""An HTTP server on 127.0.0.1 that breaks the protocol on purpose.

It generates nothing: it is for the error paths a real server does not produce on
demand (a malformed event stream, a cut connection, an error page echoing the key).
The first path segment chooses the behaviour, e.g. ``http://127.0.0.1:PORT/bad-json/v1``
as ``base_url``. Every request is recorded (path, headers, JSON body).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _sse(*events: str) -> bytes:
    return "".join(f"{e}\n\n" for e in events).encode()


def _chunk(content: str | None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return "data: " + json.dumps({"object": "chat.completion.chunk", "choices": [choice]})


def _completion(content: str) -> bytes:
    message = {"role": "assistant", "content": content}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return json.dumps({"object": "chat.completion", "choices": [choice]}).encode()


@dataclass
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class MisbehavingServer:
    """The server, started on construction in a daemon thread; ``close()`` stops it."""

    requests: list[Recorded] = field(default_factory=list)
    dropped: int = 0

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                owner.requests.append(Recorded(self.path, dict(self.headers.items()), body))
                mode = self.path.strip("/").split("/")[0]
                # A client that gave up (the timeout tests) gets no answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    getattr(self, "mode_" + mode.replace("-", "_"), self.mode_unknown)(body)

            def send(self, status: int, content_type: str, data: bytes, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(data)

            def mode_unknown(self, body: Any) -> None:
                self.send(404, "text/plain", b"no such mode")

            def mode_ok(self, body: Any) -> None:
                """A correct server: 'Hello world' whole or as three events (CRLF, pings)."""
                if body.get("stream"):
                    events = _sse(_chunk("Hello"), ": ping", _chunk(" wor"), _chunk("ld", "stop"))
                    events = events.replace(b"\n", b"\r\n") + b"data: [DONE]\r\n\r\n"
                    self.send(200, "text/event-stream", events)
                else:
                    self.send(200, "application/json", _completion("Hello world"))

            def mode_bad_json(self, body: Any) -> None:
                self.send(200, "text/event-stream", _sse(_chunk("Hi"), "data: {not json"))

            def mode_no_choices(self, body: Any) -> None:
                self.send(200, "text/event-stream", _sse('data: {"object": "x"}'))

            def mode_truncated(self, body: Any) -> None:
                """Two chunks, then the connection ends: no finish_reason, no [DONE]."""
                self.send(200, "text/event-stream", _sse(_chunk("Once"), _chunk(" upon")))

            def mode_error_event(self, body: Any) -> None:
                error = json.dumps({"error": {"message": "model overloaded", "code": 503}})
                events = _sse(_chunk("A"), f"event: error\ndata: {error}")
                self.send(200, "text/event-stream", events)

            def mode_echo_key(self, body: Any) -> None:
                """A 500 page that repeats the request's Authorization header."""
                echoed = f"internal error handling {self.headers.get('authorization')}"
                self.send(500, "application/json", json.dumps({"detail": echoed}).encode())

            def mode_not_json(self, body: Any) -> None:
                self.send(200, "text/html", b"<html>a login page</html>")

            def mode_no_message(self, body: Any) -> None:
                self.send(200, "application/json", b'{"choices": []}')

            def mode_json_for_stream(self, body: Any) -> None:
                """Ignores "stream": true and answers with one JSON completion."""
                self.send(200, "application/json", _completion("All at once"))

            def mode_redirect(self, body: Any) -> None:
                self.send(307, "text/plain", b"", Location="http://127.0.0.1:9/elsewhere")

            def mode_cut(self, body: Any) -> None:
                """Promises 1000 bytes of events, sends one event and closes the connection."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(_sse(_chunk("Half")))
                self.close_connection = True

            def mode_drop(self, body: Any) -> None:
                """Closes the connection without an answer, every time."""
                self.close_connection = True

            def mode_drop_once(self, body: Any) -> None:
                """Closes the connection without an answer every other request."""
                owner.dropped += 1
                if owner.dropped % 2:
                    self.close_connection = True
                else:
                    self.mode_ok(body)

            def mode_slow(self, body: Any) -> None:
                time.sleep(3)
                self.send(200, "application/json", _completion("late"))

            def mode_rate_limited(self, body: Any) -> None:
                error = {"error": {"message": "You exceeded your current quota"}}
                self.send(429, "application/json", json.dumps(error).encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, mode: str) -> str:
        """The base URL whose requests get behaviour ``mode``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/{mode}/v1"

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
