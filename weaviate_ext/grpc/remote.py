"""Remote mode: a running gRPC service at ``spec.address``, one connection per replica.

The address is resolved to its *replicas* (:func:`parse_target`, :func:`resolve`):
every IP a ``dns:`` name resolves to (re-resolved every ``resolve_interval``), every
address of an ``ipv4:``/``ipv6:`` list, or the one socket of ``unix:``. Each replica
gets its own channel and a tending thread (:class:`RemoteService`) that

1. runs the start checks on it — ``Info``, **``Init`` with the configuration**, health
   SERVING — before it joins the rotation;
2. checks its health service every ``health_interval``: a replica that is not SERVING,
   or whose connection drops, leaves the rotation at once (a call that fails with
   ``UNAVAILABLE`` or ``CANCELLED`` takes it out too);
3. when its channel connects again — a restarted replica is a new connection — sends
   ``Init`` again and only then puts it back.

Calls go round robin over the replicas in rotation; a call that fails with
``UNAVAILABLE`` (the replica cannot be reached) or ``CANCELLED`` (the replica went away
during the call, e.g. shut down) is tried again on each other replica while its
deadline lasts — plugin RPCs are meant to be safe to repeat (a repeated ``Delete`` may
answer ``existed: false``; a stream is repeated only if no chunk came yet).
With no replica in rotation a call fails at once with
:class:`~weaviate_ext.PluginUnavailable`, which names every replica and why it is out;
the plugin stays loaded and the host keeps serving.

An address of another scheme (``xds:``, ``dns://<dns server>/...``) is left to gRPC's
resolver: one channel with ``round_robin``, checked as one replica.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import grpc
from grpc_health.v1 import health_pb2

from weaviate_ext import tracing
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import PluginUnavailable
from weaviate_ext.grpc.client import Connection, _limit, timeout_of
from weaviate_ext.grpc.connection import (
    StartError,
    Stubs,
    close_channel,
    make_channel,
    open_plugin,
)
from weaviate_ext.grpc.protocol import RPCS
from weaviate_ext.grpc.settings import Settings
from weaviate_ext.grpc.supervisor import Generation
from weaviate_ext.live import scrub

ROUND_ROBIN_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
"""Service config of an address left to gRPC's own resolver (an ``xds:`` target)."""

DEFAULT_PORT = 443
"""The port of a ``dns:`` name without one (as gRPC does)."""

_PLAIN_SCHEMES = frozenset({"unix", "unix-abstract", "vsock"})


@attrs.frozen
class Target:
    """A parsed ``spec.address``: ``kind`` is ``dns`` (``host``/``port`` resolved by
    the host), ``static`` (``replicas``: display address → gRPC target) or ``opaque``
    (one channel, gRPC resolves)."""

    address: str
    kind: str
    host: str = ""
    port: int = DEFAULT_PORT
    replicas: tuple[tuple[str, str], ...] = ()


def split_host_port(name: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``host`` → (host, port); the port defaults to 443.

    :raises ValueError: a port that is not a number.
    """
    if name.startswith("["):
        host, _, rest = name[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
    if name.count(":") == 1:
        host, _, port = name.partition(":")
        return host, int(port)
    return name, DEFAULT_PORT


def parse_target(address: str) -> Target:
    """Parse ``spec.address`` the way gRPC reads a target.

    :raises ValueError: a ``dns:`` name whose port is not a number.
    """
    scheme, colon, rest = address.partition(":")
    if colon and scheme in _PLAIN_SCHEMES:
        target = "unix:/" + rest[3:] if address.startswith("unix:///") else address
        return Target(address, "static", replicas=((address, target),))
    if colon and scheme in ("ipv4", "ipv6"):
        parts = [part.strip() for part in rest.split(",") if part.strip()]
        return Target(address, "static", replicas=tuple((p, f"{scheme}:{p}") for p in parts))
    if colon and scheme == "dns":
        name = rest
        if rest.startswith("//"):
            authority, _, name = rest[2:].partition("/")
            if authority:  # another DNS server: only gRPC's resolver can ask it
                return Target(address, "opaque", replicas=((address, address),))
        host, port = split_host_port(name)
        return Target(address, "dns", host=host, port=port)
    if colon and scheme.isalpha() and rest.startswith("//"):
        return Target(address, "opaque", replicas=((address, address),))
    host, port = split_host_port(address)
    return Target(address, "dns", host=host, port=port)


def resolve(target: Target) -> dict[str, str]:
    """The replicas of ``target`` now: display address → gRPC target of that address.

    :raises OSError: the name does not resolve.
    """
    if target.kind != "dns":
        return dict(target.replicas)
    found: dict[str, str] = {}
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    for family, _, _, _, sockaddr in infos:
        ip = str(sockaddr[0])
        if family == socket.AF_INET6:
            found.setdefault(f"[{ip}]:{target.port}", f"ipv6:[{ip}]:{target.port}")
        elif family == socket.AF_INET:
            found.setdefault(f"{ip}:{target.port}", f"ipv4:{ip}:{target.port}")
    if not found:
        raise OSError(f"{target.host!r} resolves to no address")
    return found


class Replica:
    """One address of a remote service: its channel, whether it had ``Init`` on the
    current connection, and whether it is in rotation (and why not)."""

    def __init__(self, address: str, stubs: Stubs) -> None:
        self.address = address
        self.stubs = stubs
        self.serving = False
        """In rotation: calls may go here."""
        self.reason = "starting"
        """Why it is out of rotation."""
        self.state: grpc.ChannelConnectivity | None = None
        self.connections = 0
        """How many times its channel became READY (a new connection each time)."""
        self.init_connection = -1
        """The value of :attr:`connections` when ``Init`` last succeeded."""
        self.attempts = 0
        """Finished start attempts (successful or not)."""
        self.failures = 0
        """Failed start attempts in a row (the wait before the next one doubles)."""
        self.removed = False
        self.stop = threading.Event()
        """Set when the replica is closed: ends a start attempt's wait."""
        self.served = False
        """Whether it was ever in rotation (to log its coming back)."""
        self.wake = threading.Event()
        self.subscription: Any = None

    @property
    def initialized(self) -> bool:
        """Whether ``Init`` went over the connection the channel has now."""
        return self.init_connection == self.connections and self.state is (
            grpc.ChannelConnectivity.READY
        )

    def __repr__(self) -> str:
        return f"<Replica {self.address} serving={self.serving}>"


class RemoteService:
    """The replicas of one remote plugin service, kept initialized and health-checked."""

    def __init__(
        self,
        *,
        name: str,
        plugin_type: str,
        version: str,
        config_json: str,
        target: Target,
        credentials: grpc.ChannelCredentials | None,
        channel_options: Sequence[tuple[str, Any]],
        settings: Settings,
        secrets: tuple[str, ...] = (),
        hint: str = "",
    ) -> None:
        self.name = name
        self.plugin_type = plugin_type
        self.version = version
        self.target = target
        self.settings = settings
        self.hint = hint
        self.methods: list[str] | None = None
        self.log = logging.getLogger(f"weaviate_ext.plugin.{name}")
        self._config_json = config_json
        self._secrets = secrets
        self._credentials = credentials
        self._options = list(channel_options)
        self._cond = threading.Condition()
        self._replicas: dict[str, Replica] = {}
        self._rotation: tuple[Replica, ...] = ()
        self._turn = itertools.count()
        self._closed = threading.Event()

    # -- starting -------------------------------------------------------------------------

    def start(self) -> list[str]:
        """Resolve the address and start every replica; return once one serves.

        Replicas still starting keep starting in the background and join the rotation
        when they serve.

        :raises StartError: no replica served within ``start_timeout`` (the message
            gives each replica's reason).
        """
        try:
            found = resolve(self.target)
        except (OSError, UnicodeError) as exc:
            raise StartError(f"cannot resolve {self.target.host!r}: {exc}") from None
        with self._cond:
            for address, target in found.items():
                self._add(address, target)
        if self.target.kind == "dns":
            threading.Thread(
                target=self._resolve_loop, name=f"wvx-resolve-{self.name}", daemon=True
            ).start()
        timeout = self.settings.start_timeout
        with self._cond:
            self._cond.wait_for(
                lambda: self._rotation or all(r.attempts > 0 for r in self._replicas.values()),
                timeout=timeout + 1.0,
            )
            methods = self.methods if self._rotation else None
        if methods is None:
            reasons = self._reasons(everyone=True)
            self.close()
            raise StartError(reasons)
        return methods

    def _add(self, address: str, target: str) -> None:
        """A new replica (lock held): its channel, state watch and tending thread."""
        options = [
            *self._options,
            ("grpc.initial_reconnect_backoff_ms", self._backoff_ms(1)),
            ("grpc.max_reconnect_backoff_ms", self._backoff_ms(5)),
        ]
        named = any(key == "grpc.ssl_target_name_override" for key, _ in options)
        if self.target.kind == "dns" and not named:
            # the name, not the IP: what TLS verifies and what :authority says
            options.append(("grpc.default_authority", self._authority()))
        elif self.target.kind == "opaque":
            options.append(("grpc.service_config", ROUND_ROBIN_CONFIG))
        channel = make_channel(target, options, self._credentials)
        replica = Replica(address, Stubs(channel, self.plugin_type))
        self._replicas[address] = replica

        def on_state(state: grpc.ChannelConnectivity) -> None:
            self._on_state(replica, state)

        replica.subscription = on_state
        channel.subscribe(on_state, try_to_connect=False)
        threading.Thread(
            target=self._tend, args=(replica,), name=f"wvx-replica-{self.name}", daemon=True
        ).start()

    def _authority(self) -> str:
        host = self.target.host
        shown = f"[{host}]" if ":" in host else host
        return f"{shown}:{self.target.port}"

    def _backoff_ms(self, factor: float) -> int:
        return max(100, int(self.settings.health_interval * 1000 * factor))

    # -- tending a replica ----------------------------------------------------------------

    def _tend(self, replica: Replica) -> None:
        """Start the replica, then check its health until it is removed or closed."""
        while not self._closed.is_set() and not replica.removed:
            try:
                if replica.initialized:
                    self._check(replica)
                    if not replica.initialized:
                        continue  # a new connection since its Init: Init again now
                else:
                    self._start(replica)
            except Exception as exc:  # a channel closed under us, mostly
                if self._closed.is_set() or replica.removed:
                    return
                with self._cond:
                    self._out(replica, f"{type(exc).__name__}: {exc}")
            replica.wake.wait(self._pause(replica))
            replica.wake.clear()

    def _pause(self, replica: Replica) -> float:
        """The wait before the next check: ``health_interval``, doubled for each failed
        start in a row (up to ``backoff_max``), so a replica whose ``Init`` keeps failing
        is not sent one every second."""
        interval = self.settings.health_interval
        if replica.failures <= 1:
            return interval
        longest = max(interval, self.settings.backoff_max)
        return float(min(longest, interval * 2 ** (replica.failures - 1)))

    def _start(self, replica: Replica) -> None:
        """Info, Init, health SERVING on this replica; into rotation if they pass."""
        with self._cond:
            why = "connected again: sending Init" if replica.served else replica.reason
            self._out(replica, why)
        try:
            methods = open_plugin(
                replica.stubs,
                self.plugin_type,
                self._config_json,
                self.name,
                self.version,
                self.settings.start_timeout,
                self.hint,
                replica.stop,
            )
        except StartError as exc:
            with self._cond:
                replica.attempts += 1
                replica.failures += 1
                self._out(replica, str(exc))
                self._cond.notify_all()
            return
        with self._cond:
            # the READY of the connection Init went over (state changes arrive late)
            self._cond.wait_for(
                lambda: replica.state is grpc.ChannelConnectivity.READY or self._closed.is_set(),
                timeout=2.0,
            )
            replica.attempts += 1
            if self.methods is None:
                self.methods = methods
            missing = sorted(set(self.methods) - set(methods))
            if missing:
                self._out(replica, f"does not offer {', '.join(missing)} (the others do)")
            else:
                replica.init_connection = replica.connections
                replica.failures = 0
                self._in(replica)
            self._cond.notify_all()
        if not missing:
            self.log.info("replica %s: Init sent, serving", replica.address)

    def _check(self, replica: Replica) -> None:
        """One health check: out of rotation unless SERVING, back in if it is again."""
        timeout = min(5.0, max(1.0, 2 * self.settings.health_interval))
        try:
            reply = replica.stubs.health.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError as exc:
            why = f"health check failed: {exc.code().name}: {_reason(exc)}"
        else:
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                why = ""
            else:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                why = f"its health status is {status}"
        with self._cond:
            if why:
                self._out(replica, why)
            elif replica.initialized:
                self._in(replica)

    def _on_state(self, replica: Replica, state: grpc.ChannelConnectivity) -> None:
        """gRPC's connectivity news: a lost connection leaves the rotation at once, a
        new one counts (it needs ``Init`` before it serves)."""
        with self._cond:
            previous, replica.state = replica.state, state
            if state is grpc.ChannelConnectivity.READY:
                if previous is not grpc.ChannelConnectivity.READY:
                    replica.connections += 1
            elif replica.serving:
                self._out(replica, f"connection lost ({state.name})")
            self._cond.notify_all()
        replica.wake.set()

    # -- the rotation ---------------------------------------------------------------------

    def _in(self, replica: Replica) -> None:
        """Into rotation (lock held)."""
        if replica.serving or replica.removed or self._closed.is_set():
            return
        back, replica.served = replica.served, True
        replica.serving = True
        replica.reason = ""
        self._rebuild()
        if back:
            self.log.info("replica %s is back in rotation", replica.address)

    def _out(self, replica: Replica, why: str) -> None:
        """Out of rotation with a reason (lock held)."""
        replica.reason = scrub(why, self._secrets) or replica.reason
        if not replica.serving:
            return
        replica.serving = False
        self._rebuild()
        if not self._closed.is_set():
            self.log.warning("replica %s out of rotation: %s", replica.address, replica.reason)

    def _rebuild(self) -> None:
        self._rotation = tuple(r for r in self._replicas.values() if r.serving and not r.removed)

    def pick(self) -> Replica | None:
        """The next replica in rotation (round robin), or ``None`` when none serves."""
        rotation = self._rotation
        if not rotation:
            return None
        return rotation[next(self._turn) % len(rotation)]

    def lost(self, replica: Replica, why: str) -> None:
        """A call found ``replica`` unreachable: out of rotation until it checks healthy."""
        with self._cond:
            self._out(replica, why)
        replica.wake.set()

    @property
    def rotation(self) -> tuple[Replica, ...]:
        """The replicas calls go to now."""
        return self._rotation

    @property
    def count(self) -> int:
        """How many replicas there are (in rotation or not)."""
        return len(self._replicas)

    @property
    def replicas(self) -> list[Replica]:
        """Every known replica, in the order the address lists or resolves them."""
        with self._cond:
            return list(self._replicas.values())

    def _reasons(self, everyone: bool = False) -> str:
        """``a: why; b: why`` for the replicas out of rotation (or all of them)."""
        out = [r for r in self.replicas if everyone or not r.serving]
        if len(self._replicas) == 1 and out:
            return out[0].reason
        shown = [f"{r.address}: {r.reason}" for r in out[:4]]
        if len(out) > 4:
            shown.append(f"and {len(out) - 4} more")
        return "; ".join(shown)

    def unavailable(self) -> str:
        """Why no replica can take a call."""
        count = len(self._replicas)
        what = "its replica is not" if count == 1 else f"none of its {count} replicas is"
        return (
            f"the service at {self.target.address} is unavailable: {what} serving "
            f"({self._reasons()})"
        )

    def status(self) -> tuple[str, str | None]:
        """``serving``, ``degraded`` (some replicas out) or ``unavailable`` (all out)."""
        if self._closed.is_set():
            return "failed", "stopped (unloaded or the host is closing)"
        serving, total = len(self._rotation), len(self._replicas)
        if serving == 0:
            return "unavailable", self.unavailable()
        if serving < total:
            return "degraded", f"{serving} of {total} replicas serving; out: {self._reasons()}"
        return "serving", None

    # -- DNS ------------------------------------------------------------------------------

    def _resolve_loop(self) -> None:
        """Resolve the name again every ``resolve_interval``: add and remove replicas."""
        while not self._closed.wait(self.settings.resolve_interval):
            try:
                found = resolve(self.target)
            except (OSError, UnicodeError) as exc:
                self.log.warning("cannot resolve %s again: %s", self.target.host, exc)
                continue
            gone: list[Replica] = []
            with self._cond:
                if self._closed.is_set():
                    return
                for address, target in found.items():
                    if address not in self._replicas:
                        self.log.info("new replica %s", address)
                        self._add(address, target)
                for address in set(self._replicas) - set(found):
                    replica = self._replicas.pop(address)
                    replica.removed = True
                    replica.serving = False
                    gone.append(replica)
                self._rebuild()
            for replica in gone:
                self.log.info("replica %s no longer resolves: removed", replica.address)
                self._close_replica(replica)

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Close every replica's channel and stop tending them."""
        with self._cond:
            if self._closed.is_set():
                return
            self._closed.set()
            replicas = list(self._replicas.values())
            self._rotation = ()
            self._cond.notify_all()
        for replica in replicas:
            self._close_replica(replica)

    def _close_replica(self, replica: Replica) -> None:
        replica.stop.set()
        replica.wake.set()
        channel = replica.stubs.channel
        if replica.subscription is not None:
            channel.unsubscribe(replica.subscription)
        close_channel(channel)


_GONE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
"""What a call gets from a replica that is unreachable or went away during the call."""


def _reason(exc: grpc.RpcError) -> str:
    """gRPC's details without the ``failed to connect to all addresses; last error:`` part."""
    details = str(exc.details() or "")
    text = details.partition("last error: ")[2] or details
    return text.removesuffix(": OK").strip()


class RemoteConnection(Connection):
    """A connection to a remote service: round robin over its healthy replicas."""

    isolation = "process: a separate gRPC service (remote mode, not managed by the host)"

    def __init__(self, service: RemoteService, secrets: tuple[str, ...]) -> None:
        self.service = service
        self.name = service.name
        self._secrets = secrets

    def _pick(self, hook: str) -> Replica:
        replica = self.service.pick()
        if replica is None:
            raise PluginUnavailable(self.name, hook, self.service.unavailable())
        return replica

    def stubs(self, hook: str, timeout: float | None) -> tuple[Stubs, Generation | None]:
        return self._pick(hook).stubs, None

    def _unreachable(self, hook: str, replica: Replica, exc: grpc.RpcError) -> str:
        why = f"a call failed: {exc.code().name}: {scrub(_reason(exc), self._secrets)}"
        self.service.lost(replica, why)
        return why

    def call(self, hook: str, request: Any, deadline: Deadline | None) -> Any:
        """Call ``hook`` on the next replica; on ``UNAVAILABLE`` or ``CANCELLED`` try each
        other replica once while the deadline lasts."""
        method = RPCS[hook]
        tries = max(1, self.service.count)
        for attempt in range(tries):
            replica = self._pick(hook)
            try:
                return getattr(replica.stubs.service, method)(
                    request, timeout=timeout_of(deadline), metadata=tracing.outgoing_metadata()
                )
            except grpc.RpcError as exc:
                if exc.code() not in _GONE:
                    raise self.error(hook, exc, _limit(deadline), None) from None
                why = self._unreachable(hook, replica, exc)
                last = attempt == tries - 1 or (deadline is not None and deadline.expired)
                if last or self.service.pick() is None:
                    raise PluginUnavailable(
                        self.name, hook, f"replica {replica.address}: {why}"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(self, hook: str, request: Any, deadline: Deadline | None) -> Iterator[Any]:
        """Stream from the next replica; on ``UNAVAILABLE``/``CANCELLED`` before the
        first chunk, try the others as :meth:`call` does."""
        method = RPCS[hook]
        tries = max(1, self.service.count)
        for attempt in range(tries):
            replica = self._pick(hook)
            responses = getattr(replica.stubs.service, method)(
                request, timeout=timeout_of(deadline), metadata=tracing.outgoing_metadata()
            )
            started = False
            try:
                for chunk in responses:
                    started = True
                    yield chunk
                return
            except grpc.RpcError as exc:
                if exc.code() not in _GONE:
                    raise self.error(hook, exc, _limit(deadline), None) from None
                why = self._unreachable(hook, replica, exc)
                last = attempt == tries - 1 or (deadline is not None and deadline.expired)
                if started or last or self.service.pick() is None:
                    raise PluginUnavailable(
                        self.name, hook, f"replica {replica.address}: {why}"
                    ) from None
            finally:
                responses.cancel()

    def healthy(self) -> bool:
        """Whether a replica in rotation answers SERVING now (checked, not remembered)."""
        for replica in self.service.rotation:
            if replica.stubs.healthy(timeout=5.0):
                return True
            self.service.lost(replica, "its health check failed")
        return False

    def runtime_status(self) -> tuple[str, str | None]:
        return self.service.status()

    def close(self) -> None:
        self.service.close()
