"""The ``grpc`` runtime: plugins in their own process, or a running gRPC service.

With ``spec.command`` the framework starts and supervises the plugin process
(:mod:`weaviate_ext.grpc.supervisor`): private socket, scrubbed environment, memory
rlimit and CPU affinity from ``spec.resources``, restart with backoff after a crash,
and a keeper (:mod:`weaviate_ext.grpc.keeper`) that kills the plugin and everything it
started on unload and when the host dies, SIGKILL included; the process is confined
(:mod:`weaviate_ext.grpc.confine`: Landlock, a network namespace, no capabilities) to
what it needs and was granted, and its ``isolation`` says how. With ``spec.address``
(``unix:///path``, ``dns:///host:port``, ``host:port`` or ``ipv4:a:p,b:p``) it manages
no process and connects to every replica of a running service
(:mod:`weaviate_ext.grpc.remote`): ``Init`` to each, per-replica health checks that
take a replica out of rotation and put it back (with ``Init`` again after a restart),
round robin over the healthy ones, over TLS when ``spec.tls`` says so (server CA,
client certificate for mutual TLS, server name).

The contract is ``hookspecs/weaviate_plugin.proto``; the Python SDK is
:mod:`weaviate_ext.sdk` (import name ``weaviate_plugin_sdk``). See ``docs/grpc.md``.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from weaviate_ext.errors import PluginLoadError
from weaviate_ext.grpc.client import GrpcPlugin, ProcessConnection, make_plugin_object
from weaviate_ext.grpc.confine import describe
from weaviate_ext.grpc.connection import StartError
from weaviate_ext.grpc.protocol import dumps
from weaviate_ext.grpc.remote import RemoteConnection, RemoteService, parse_target
from weaviate_ext.grpc.settings import Settings
from weaviate_ext.grpc.supervisor import PluginProcess
from weaviate_ext.hookspecs import hookimpl
from weaviate_ext.limits import warn_unenforced
from weaviate_ext.manifest import Manifest, PluginConfig

RUNTIME = "grpc"

log = logging.getLogger("weaviate_ext")

ISOLATION = "process: a separate gRPC process or service"
"""What isolates a grpc plugin; each plugin object says more precisely (a remote
service: ``process``; a supervised process: its confinement, such as
``process+landlock(fs,tcp)+netns``, which ``weaviate-ext list`` shows)."""


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
    try:
        target = parse_target(address)
    except ValueError as exc:
        raise PluginLoadError(
            manifest.name, f"{manifest.where('spec.address')}: {address!r}: {exc}"
        ) from None
    warn_unenforced(
        manifest, (), log, f"the service at spec.address ({address}) manages its own resources"
    )
    credentials, tls_options = tls_credentials(manifest)
    tls = manifest.spec.tls
    if tls is None:
        hint = " (if the service speaks TLS: spec.tls)"
    elif tls.cert is None:
        hint = " (if the service requires a client certificate: spec.tls.cert and spec.tls.key)"
    else:
        hint = " (does the service trust the CA of the client certificate spec.tls.cert?)"
    service = RemoteService(
        name=manifest.name,
        plugin_type=manifest.spec.type,
        version=manifest.version,
        config_json=config_json(config),
        target=target,
        credentials=credentials,
        channel_options=tls_options,
        settings=Settings.from_environ(),
        secrets=secrets,
        hint=hint,
    )
    try:
        methods = service.start()
    except StartError as exc:
        raise PluginLoadError(manifest.name, f"service at {address}: {exc}") from None
    log.info(
        "plugin %s: remote service at %s, %d of %d replicas serving",
        manifest.name,
        address,
        len(service.rotation),
        service.count,
    )
    return make_plugin_object(
        RemoteConnection(service, secrets),
        manifest.spec.type,
        methods,
        manifest.spec.capabilities.dimensions,
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
    connection = ProcessConnection(supervisor, secrets)
    # what confines the process, exactly as the keeper applies it (or refuses to start)
    connection.isolation = describe(spec.permissions)
    if "NOT confined" in connection.isolation:
        log.warning("plugin %s: %s", name, connection.isolation)
    return make_plugin_object(
        connection,
        spec.type,
        supervisor.methods,
        spec.capabilities.dimensions,
    )


@hookimpl
def weaviate_ext_isolation(manifest: Manifest, plugin: object) -> str | None:
    """The plugin object's own text (a remote service: ``process``; a supervised process:
    the confinement actually applied, e.g. ``process+landlock(fs,tcp)+netns: ...``),
    else :data:`ISOLATION`."""
    if manifest.spec.runtime != RUNTIME:
        return None
    told = plugin.isolation if isinstance(plugin, GrpcPlugin) else None
    return told if isinstance(told, str) else ISOLATION
