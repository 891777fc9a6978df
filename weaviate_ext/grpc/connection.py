"""A channel to a plugin's services, with the start checks every plugin goes through.

:class:`Stubs` bundles the stubs of one channel. :func:`open_plugin` runs the sequence
that makes a plugin count as loaded: channel ready, ``Info`` (protocol version and
type), ``Init`` with the configuration, and the health status SERVING.
"""

from __future__ import annotations

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
        self.plugin = pb_grpc.PluginStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    def healthy(self, timeout: float) -> bool:
        """Whether the health service says SERVING."""
        try:
            reply = self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def make_channel(target: str, extra: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """An insecure channel to ``target`` with the framework's message size limits."""
    return grpc.insecure_channel(target, options=[*CHANNEL_OPTIONS, *extra])


def open_plugin(
    stubs: Stubs,
    plugin_type: str,
    config_json: str,
    name: str,
    version: str,
    timeout: float,
) -> list[str]:
    """Run the start checks; return the RPCs the plugin implements.

    :raises StartError: with a message that says which check failed.
    """
    until = time.monotonic() + timeout
    try:
        grpc.channel_ready_future(stubs.channel).result(timeout=max(0.01, until - time.monotonic()))
    except grpc.FutureTimeoutError:
        raise StartError(f"its socket accepted no connection within {timeout:g}s") from None
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
