"""The ``grpc`` runtime: plugins in their own process, or a running gRPC service.

With ``spec.command`` the framework starts and supervises the plugin process
(:mod:`weaviate_ext.grpc.supervisor`): private socket, scrubbed environment, memory
rlimit and CPU affinity from ``spec.resources``, restart with backoff after a crash,
the process group killed on unload and when the host dies. With ``spec.address``
(``unix:///path``, ``dns:///host:port`` or ``host:port``) it manages no process and
connects to a running service with ``round_robin`` load balancing over the resolved
addresses, over TLS when ``spec.tls`` says so (server CA, client certificate for mutual
TLS, server name), and checks its health service at load and on ``plugin_health``.

The contract is ``hookspecs/weaviate_plugin.proto``; the Python SDK is
:mod:`weaviate_ext.sdk` (import name ``weaviate_plugin_sdk``). See ``docs/grpc.md``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc

from weaviate_ext.errors import PluginLoadError
from weaviate_ext.grpc.client import Connection, ProcessConnection, make_plugin_object
from weaviate_ext.grpc.connection import StartError, Stubs, make_channel, open_plugin
from weaviate_ext.grpc.protocol import dumps
from weaviate_ext.grpc.supervisor import PluginProcess, Settings
from weaviate_ext.hookspecs import hookimpl
from weaviate_ext.manifest import Manifest, PluginConfig

RUNTIME = "grpc"

log = logging.getLogger("weaviate_ext")

REMOTE_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
"""Service config of remote plugins: spread calls over every resolved address.

Client-side health checking (``healthCheckConfig``) is not enabled: with grpcio 1.85
a channel configured with it never became ready against the SDK's health service in
our tests; the framework checks health itself at load and in ``plugin_health``."""


def config_json(config: PluginConfig) -> str:
    """The configuration as JSON for ``Init``, secret values in clear."""
    return dumps({key: config.reveal(key) for key in config})


def tls_credentials(
    manifest: Manifest,
) -> tuple[grpc.ChannelCredentials | None, list[tuple[str, Any]]]:
    """The channel credentials and options of ``spec.tls`` (``None``: plaintext).

    :raises PluginLoadError: a file cannot be read.
    """
    tls = manifest.spec.tls
    if tls is None:
        return None, []

    def read(field: str, relative: str | None) -> bytes | None:
        if relative is None:
            return None
        path = manifest.directory / relative
        try:
            return path.read_bytes()
        except OSError as exc:
            raise PluginLoadError(
                manifest.name,
                f"{manifest.where(f'spec.tls.{field}')}: cannot read {relative!r}: "
                f"{exc.strerror or exc}",
            ) from None

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("ca", tls.ca),
        private_key=read("key", tls.key),
        certificate_chain=read("cert", tls.cert),
    )
    options: list[tuple[str, Any]] = []
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return credentials, options


def _remote(manifest: Manifest, config: PluginConfig, secrets: tuple[str, ...]) -> object:
    address = manifest.spec.address
    assert address is not None
    target = address.replace("unix:///", "unix:/", 1) if address.startswith("unix:///") else address
    credentials, tls_options = tls_credentials(manifest)
    channel = make_channel(
        target,
        (
            ("grpc.service_config", REMOTE_SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            *tls_options,
        ),
        credentials,
    )
    stubs = Stubs(channel, manifest.spec.type)
    timeout = Settings.from_environ().start_timeout
    tls = manifest.spec.tls
    if tls is None:
        hint = " (if the service speaks TLS: spec.tls)"
    elif tls.cert is None:
        hint = " (if the service requires a client certificate: spec.tls.cert and spec.tls.key)"
    else:
        hint = " (does the service trust the CA of the client certificate spec.tls.cert?)"
    try:
        methods = open_plugin(
            stubs,
            manifest.spec.type,
            config_json(config),
            manifest.name,
            manifest.version,
            timeout,
            hint,
        )
    except StartError as exc:
        channel.close()
        raise PluginLoadError(manifest.name, f"service at {address}: {exc}") from None
    connection = Connection(manifest.name, stubs, secrets)
    return make_plugin_object(
        connection, manifest.spec.type, methods, manifest.spec.capabilities.dimensions
    )


@hookimpl
def weaviate_ext_make_plugin(manifest: Manifest, config: PluginConfig) -> object | None:
    """Start (``spec.command``) or connect to (``spec.address``) a gRPC plugin."""
    if manifest.spec.runtime != RUNTIME:
        return None
    spec = manifest.spec
    name = manifest.name
    if spec.command and spec.address:
        raise PluginLoadError(
            name, f"{manifest.where('spec.address')}: give spec.command or spec.address, not both"
        )
    if not spec.command and not spec.address:
        raise PluginLoadError(
            name,
            "the grpc runtime needs spec.command (a process to start) "
            "or spec.address (a running service)",
        )
    if spec.tls is not None and not spec.address:
        raise PluginLoadError(
            name,
            f"{manifest.where('spec.tls')}: spec.tls is for a service at spec.address; "
            "a process started from spec.command is reached over its private unix socket",
        )
    secrets = tuple(s for s in config.secret_values if s)
    if spec.address:
        return _remote(manifest, config, secrets)
    supervisor = PluginProcess(manifest, config_json(config), secrets)
    try:
        supervisor.start()
    except StartError as exc:
        raise PluginLoadError(name, f"failed to start: {exc}") from None
    log.info(
        "plugin %s runs in process %s (grpc runtime, socket %s)",
        name,
        supervisor.pid,
        supervisor.socket_path,
    )
    return make_plugin_object(
        ProcessConnection(supervisor, secrets),
        spec.type,
        supervisor.methods,
        spec.capabilities.dimensions,
    )
