"""A channel to a plugin's services, with the start checks every plugin goes through.

:class:`Stubs` bundles the stubs of one channel. :func:`open_plugin` runs the sequence
that makes a plugin count as loaded: channel ready, ``Info`` (protocol version and
type), ``Init`` with the configuration, and the health status SERVING.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from weaviate_ext.grpc import weaviate_plugin_pb2 as pb
from weaviate_ext.grpc import weaviate_plugin_pb2_grpc as pb_grpc
from weaviate_ext.grpc.protocol import CHANNEL_OPTIONS, PROTOCOL_VERSION, SERVICES


class StartError(Exception):
    """The plugin did not pass a start check; the message says which and why."""


class Stubs:
    """The stubs of one channel: the plugin's type service, ``Plugin`` and health."""

    __slots__ = ("channel", "health", "plugin", "service")

    def __init__(self, channel: grpc.Channel, plugin_type: str) -> None:
        self.channel = channel
        self.service: Any = getattr(pb_grpc, f"{SERVICES[plugin_type]}Stub")(channel)
        self.plugin = pb_grpc.PluginStub(channel)  # type: ignore[no-untyped-call]  # generated
        self.health = health_pb2_grpc.HealthStub(channel)

    def healthy(self, timeout: float) -> bool:
        """Whether the health service says SERVING."""
        try:
            reply = self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def make_channel(
    target: str,
    extra: Sequence[tuple[str, Any]] = (),
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.Channel:
    """A channel to ``target`` with the framework's message size limits: TLS with
    ``credentials``, plaintext without."""
    options = [*CHANNEL_OPTIONS, *extra]
    if credentials is not None:
        return grpc.secure_channel(target, credentials, options=options)
    return grpc.insecure_channel(target, options=options)


def close_channel(channel: grpc.Channel) -> None:
    """Close ``channel`` once gRPC's connectivity-polling thread has let go of it.

    grpcio polls a channel's state in a thread while something watches it
    (``subscribe``, ``channel_ready_future``) and for up to ~0.2 s after the last
    unsubscribe; a channel closed under that thread makes it die with "Cannot invoke
    RPC: Channel closed!" and a traceback on stderr. So: closed at once when nothing
    polls it, else by a daemon thread once the polling stopped (at most 2 s later).
    """
    state = getattr(channel, "_connectivity_state", None)
    if not getattr(state, "polling", False):
        channel.close()
        return

    def close_later() -> None:
        until = time.monotonic() + 2.0
        while getattr(state, "polling", False) and time.monotonic() < until:
            time.sleep(0.05)
        channel.close()

    threading.Thread(target=close_later, name="wvx-close-channel", daemon=True).start()


_TLS_FAILURE = re.compile(
    r"handshake|ssl|tls|certificate|hostname verification|verify", re.IGNORECASE
)
"""What gRPC's connection errors say when TLS refused the connection: no use waiting."""


def wait_ready(
    stubs: Stubs, timeout: float, hint: str = "", stop: threading.Event | None = None
) -> None:
    """Wait until the channel connects; a TLS refusal fails at once.

    :raises StartError: with gRPC's own reason for the last failed connection attempt
        (and ``hint`` after it), after ``timeout`` seconds or at once for TLS errors;
        also when ``stop`` is set.
    """
    until = time.monotonic() + timeout
    ready = grpc.channel_ready_future(stubs.channel)
    last = ""
    try:
        while True:
            if stop is not None and stop.is_set():
                raise StartError("stopped while connecting")
            remaining = until - time.monotonic()
            if remaining <= 0:
                why = f": {last}{hint}" if last else ""
                raise StartError(f"accepted no connection within {timeout:g}s{why}")
            try:
                ready.result(timeout=min(0.25, remaining))
                return
            except grpc.FutureTimeoutError:
                pass
            try:  # not connected yet: fail fast (no wait_for_ready) to learn why
                stubs.plugin.Info(
                    pb.InfoRequest(), timeout=max(0.01, min(2.0, until - time.monotonic()))
                )
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    return  # it answered; the start checks will report the error
                last = _last_error(str(exc.details() or ""))
            if _TLS_FAILURE.search(last):
                raise StartError(f"refused the TLS connection: {last}")
    finally:
        ready.cancel()


def _last_error(details: str) -> str:
    """gRPC's ``failed to connect to all addresses; last error: X: addr: reason`` → reason."""
    text = details.partition("last error: ")[2] or details
    return text.removesuffix(": OK").strip()


def open_plugin(
    stubs: Stubs,
    plugin_type: str,
    config_json: str,
    name: str,
    version: str,
    timeout: float,
    hint: str = "",
    stop: threading.Event | None = None,
) -> list[str]:
    """Run the start checks; return the RPCs the plugin implements.

    ``hint`` is appended to the reason when the channel never connects; ``stop`` ends
    the wait for a connection early (the plugin is being closed).

    :raises StartError: with a message that says which check failed.
    """
    until = time.monotonic() + timeout
    wait_ready(stubs, timeout, hint, stop)
    try:
        info = stubs.plugin.Info(pb.InfoRequest(), timeout=max(0.01, until - time.monotonic()))
    except grpc.RpcError as exc:
        raise StartError(f"Info failed: {exc.code().name}: {exc.details()}") from None
    if info.protocol_version != PROTOCOL_VERSION:
        raise StartError(
            f"speaks protocol version {info.protocol_version}, this host {PROTOCOL_VERSION}"
        )
    if info.plugin_type and info.plugin_type != plugin_type:
        raise StartError(f"is a {info.plugin_type} plugin, its manifest says {plugin_type}")
    request = pb.InitRequest(config_json=config_json, plugin_name=name, plugin_version=version)
    try:
        stubs.plugin.Init(request, timeout=max(0.01, until - time.monotonic()))
    except grpc.RpcError as exc:
        raise StartError(f"Init failed: {exc.details()}") from None
    while not stubs.healthy(max(0.01, min(1.0, until - time.monotonic()))):
        if time.monotonic() >= until:
            raise StartError(f"its health status was not SERVING within {timeout:g}s")
        time.sleep(0.05)
    return list(info.methods)
