"""``redis-storage``: a weaviate-ext storage plugin keeping key -> bytes in a Redis server.

Each key is stored as the Redis string ``prefix + key`` (the key's UTF-8 bytes,
``surrogatepass``; Redis keys are binary-safe, so every ``str`` key works), with ``SET``,
``GET`` and ``DEL``. A ``SET`` is atomic: a reader sees the old value or the new one.

How durable an acknowledged ``store`` is depends on the server's persistence settings,
which the plugin does not change: with ``appendonly yes`` and ``appendfsync always`` a
write is on disk before Redis answers; with the defaults (``everysec``, or no AOF at all)
the last second of writes, or everything since the last snapshot, can be lost when the
server dies. The plugin logs a warning at load when the server has no append-only file.

Thread safety: one blocking connection pool (``max_connections``) is shared by every
thread; a call takes a connection for the time of one command.

Errors never show the password: it is a ``secret: true`` config value, it may not be
written into ``url``, and messages name the server by its address only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import redis

from weaviate_ext import (
    ConfigError,
    Deadline,
    DeadlineExceeded,
    Manifest,
    PluginCallError,
    PluginConfig,
    PluginLoadError,
    ResourceLimitExceeded,
    Secret,
    hookimpl,
)
from weaviate_ext.inputs import check_data
from weaviate_ext.inputs import key_bytes as encode_key

log = logging.getLogger("weaviate_ext.redis_storage")

DEFAULT_URL = "redis://127.0.0.1:6379"
SCHEMES = ("redis", "rediss")
T = TypeVar("T")


def describe_url(url: str) -> str:
    """``url`` as shown in messages: scheme, host, port and path; never user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_url(url: str) -> None:
    """Refuse a url that is not redis:// or rediss://, or that carries a password."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise ConfigError(f"config key 'url' is not a valid URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            "config key 'url' must start with redis:// or rediss:// "
            "(for a unix socket use the unix_socket key)"
        )
    if parts.password is not None:
        raise ConfigError(
            "config key 'url' must not contain a password: put it in the secret key 'password'"
        )
    if not parts.hostname:
        raise ConfigError("config key 'url' names no host")


class RedisStorage:
    """The plugin object: ``store``, ``retrieve`` and ``delete`` against one Redis server."""

    def __init__(self) -> None:
        self.name = "redis-storage"
        self.where = ""
        self.prefix = b""
        self._client: redis.Redis | None = None
        self._password = Secret("")

    def __repr__(self) -> str:
        return f"<RedisStorage {self.name!r} {self.where} prefix={self.prefix!r}>"

    # -- lifecycle ---------------------------------------------------------------------

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check the config, connect and authenticate (a refused connection refuses loading)."""
        self.name = manifest.name
        url = config.get_string("url")
        unix_socket = config.get_string("unix_socket")
        db = config.get_int("db")
        timeout = config.get_float("socket_timeout")
        max_connections = config.get_int("max_connections")
        self._password = Secret(config.reveal("password") or "")
        username = config.get_string("username") or None
        self.prefix = config.get_string("prefix").encode("utf-8")
        if url and unix_socket:
            raise ConfigError("set either config key 'url' or 'unix_socket', not both")
        if db < 0:
            raise ConfigError("config key 'db' must be 0 or more")
        if not 0 < timeout <= 3600:
            raise ConfigError("config key 'socket_timeout' must be more than 0 and at most 3600")
        if max_connections < 1:
            raise ConfigError("config key 'max_connections' must be at least 1")
        options: dict[str, Any] = {
            "db": db,
            "username": username,
            "password": self._password.reveal() or None,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "max_connections": max_connections,
            "timeout": timeout,  # waiting for a free connection of the pool
        }
        if unix_socket:
            self.where = f"unix:{unix_socket} db {db}"
            pool = redis.BlockingConnectionPool(
                connection_class=redis.UnixDomainSocketConnection, path=unix_socket, **options
            )
        else:
            url = url or DEFAULT_URL
            check_url(url)
            self.where = describe_url(url)
            pool = redis.BlockingConnectionPool.from_url(url, **options)
        self._client = redis.Redis(connection_pool=pool)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self.plugin_close()
            raise PluginLoadError(self.name, self._reason(exc, "connect to")) from None
        try:
            info = self._client.info("persistence")
        except redis.RedisError:  # INFO may be forbidden by an ACL: not needed to serve
            info = {"aof_enabled": 1}
        if not info.get("aof_enabled"):
            log.warning(
                "%s: the Redis server at %s has no append-only file: acknowledged writes "
                "since its last snapshot are lost if it stops (appendonly yes, "
                "appendfsync always make every write durable)",
                self.name,
                self.where,
            )

    @hookimpl
    def plugin_health(self) -> bool:
        """The server answers PING."""
        return bool(self._call("health", None, lambda client: client.ping()))

    @hookimpl
    def plugin_close(self) -> None:
        """Close the connection pool."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
            client.connection_pool.disconnect()

    # -- helpers -----------------------------------------------------------------------

    def _reason(self, exc: redis.RedisError, doing: str) -> str:
        """A one-line reason for ``exc`` that names the server, never the password."""
        text = str(exc).strip() or type(exc).__name__
        secret = self._password.reveal()
        if secret:
            text = text.replace(secret, "**********")
        if isinstance(exc, redis.AuthenticationError) or "NOAUTH" in text or "WRONGPASS" in text:
            if not secret:
                return (
                    f"Redis at {self.where} refused the credentials: it requires a password "
                    "(set the secret config key 'password')"
                )
            return f"Redis at {self.where} refused the credentials ({text})"
        if isinstance(exc, redis.TimeoutError):
            return f"Redis at {self.where} did not answer in time ({text})"
        if isinstance(exc, redis.ConnectionError):
            return f"cannot {doing} Redis at {self.where}: {text}"
        return f"Redis at {self.where}: {text}"

    def _call(self, hook: str, deadline: Deadline | None, command: Callable[[redis.Redis], T]) -> T:
        client = self._client
        if client is None:
            raise PluginCallError(self.name, hook, "the storage is closed")
        if deadline is not None and deadline.expired:
            raise DeadlineExceeded(self.name, hook, "deadline exceeded before the call")
        try:
            return command(client)
        except redis.RedisError as exc:
            self._fail(hook, exc)

    def _fail(self, hook: str, exc: redis.RedisError) -> NoReturn:
        if isinstance(exc, redis.exceptions.OutOfMemoryError) or str(exc).startswith("OOM"):
            raise ResourceLimitExceeded(
                self.name,
                hook,
                f"Redis at {self.where} is out of memory ({str(exc).rstrip('.')}); "
                "raise the server's maxmemory or free space",
            ) from None
        raise PluginCallError(self.name, hook, self._reason(exc, "reach")) from None

    # -- hooks -------------------------------------------------------------------------

    @hookimpl
    def store(self, key: str, data: bytes, deadline: Deadline) -> None:
        """``SET prefix+key data`` (replacing any value)."""
        name = self.prefix + encode_key(key)
        payload = check_data(data)
        self._call("store", deadline, lambda client: client.set(name, payload))

    @hookimpl
    def retrieve(self, key: str, deadline: Deadline) -> bytes | None:
        """``GET prefix+key``: the bytes, or ``None``."""
        name = self.prefix + encode_key(key)
        value = self._call("retrieve", deadline, lambda client: client.get(name))
        if value is None:
            return None
        return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)

    @hookimpl
    def delete(self, key: str, deadline: Deadline) -> bool:
        """``DEL prefix+key``; ``True`` if it existed."""
        name = self.prefix + encode_key(key)
        return bool(self._call("delete", deadline, lambda client: client.delete(name)))
