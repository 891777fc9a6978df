"""What ``weaviate-ext serve`` serves and how: one frozen settings object.

The command line builds it from its options; :meth:`ServeSettings.from_env` builds it
from environment variables, so the app factory also runs under any ASGI server
(``uvicorn --factory weaviate_ext.serve:app_from_env --workers 4``). With several
workers the command hands its settings over in a private JSON file
(:data:`SETTINGS_FILE_ENV`), written with mode 0600 because host configuration may
hold secrets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from weaviate_ext.errors import ConfigError
from weaviate_ext.grants import Grants, parse_grant
from weaviate_ext.manifest.hostconfig import read_host_sections

SETTINGS_FILE_ENV = "WEAVIATE_EXT_SERVE_SETTINGS_FILE"
"""A JSON file holding every setting (written by ``weaviate-ext serve --workers N``)."""

PLUGINS_ENV = "WEAVIATE_EXT_PLUGINS"
"""Plugin directories, separated by :data:`os.pathsep` (the CLI's variable)."""

TOKENS_ENV = "AUTHENTICATION_ALLOWED_TOKENS"
"""Comma-separated bearer tokens, the variable Weaviate's inference containers read."""

CACHE_ENV = "ENABLE_CACHE"
"""``1``/``true`` switches the result cache on, as in Weaviate's inference containers."""

PREFIX = "WEAVIATE_EXT_SERVE_"
"""Prefix of the other environment variables (``WEAVIATE_EXT_SERVE_VECTORIZER`` ...)."""

MiB = 1024 * 1024

MAX_BATCH_WINDOW_MS = 1000.0
"""The longest batching window accepted (a longer one only adds latency)."""


def _truthy(text: str | None) -> bool:
    return (text or "").strip().lower() in {"1", "true", "yes", "on"}


def _split(text: str | None, sep: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(sep) if part.strip())


@attrs.frozen
class HostConfig:
    """What the host configuration of the environment gives (:func:`host_config_from_env`)."""

    config: dict[str, dict[str, Any]] = attrs.field(factory=dict, repr=False)
    """Config values by plugin name (may hold secrets: not in the repr)."""
    grants: Grants = attrs.field(factory=Grants)
    """What the host grants plugins."""
    registry: Any = None
    """The config file's ``_registry`` section as plain data (``None``: none)."""
    registry_base: str = "."
    """The config file's directory, where the ``_registry`` section's paths resolve."""


def host_config_from_env(environ: Mapping[str, str] | None = None) -> HostConfig:
    """The host configuration, grants and registry settings the environment gives: the
    host config file named by ``WEAVIATE_EXT_SERVE_CONFIG_FILE`` (its ``_grants`` and
    ``_registry`` sections included, read once), ``WEAVIATE_EXT_SERVE_GRANT`` (``--grant``
    values separated by ``;``) and ``WEAVIATE_EXT_SERVE_TRUST`` (plugin names separated
    by ``,``).

    Used by :meth:`ServeSettings.from_env` and by ``weaviate-ext serve`` (where the
    command line's ``--config``, ``--config-file``, ``--grant`` and ``--trust`` add to it).
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(PREFIX + name)
        return value if value not in (None, "") else None

    config_file = get("CONFIG_FILE")
    config: dict[str, dict[str, Any]] = {}
    grants = Grants()
    registry: Any = None
    registry_base = "."
    if config_file:
        config, file_grants, registry = read_host_sections(config_file)
        if file_grants:
            grants = Grants.from_data(file_grants, f"{config_file}: _grants")
        registry_base = str(Path(config_file).resolve().parent)
    for text in _split(get("GRANT"), ";"):
        try:
            name, grant = parse_grant(text)
        except ValueError as exc:
            raise ConfigError(f"{PREFIX}GRANT: {exc}") from None
        grants |= Grants({name: grant})
    grants |= Grants.of(trust=_split(get("TRUST"), ","))
    return HostConfig(
        {name: dict(values) for name, values in config.items()}, grants, registry, registry_base
    )


@attrs.frozen(kw_only=True)
class ServeSettings:
    """Everything ``weaviate-ext serve`` needs to know; immutable once built.

    Limits protect the server from requests it should refuse with a 4xx error instead
    of trying to answer: ``max_text_length`` (characters of one text),
    ``max_batch`` (texts or documents in one request) and ``max_body_bytes`` (the
    request body).
    """

    plugin_dirs: tuple[str, ...] = ()
    """Directories whose ``plugin.yaml`` files are loaded (``load_directory``)."""
    plugin_files: tuple[str, ...] = ()
    """Single manifest files loaded on top (e.g. a ``plugin-native.yaml``)."""
    config: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    """Host configuration per plugin name (may hold secrets: not in the repr)."""
    grants: Mapping[str, Any] = attrs.field(factory=dict)
    """What the host grants plugins, as plain data (:meth:`Grants.from_data
    <weaviate_ext.grants.Grants.from_data>`): ``{name: {env, directories, network, trust}}``."""
    registry: Mapping[str, Any] | None = None
    """The ``_registry`` section of the host config file, as plain data, for
    ``--plugin oci://...`` (:meth:`RegistrySettings.from_data
    <weaviate_ext.registry.settings.RegistrySettings.from_data>`; ``None``: the
    defaults, where unsigned artifacts are refused)."""
    registry_base: str = "."
    """The directory the ``_registry`` section's relative paths (keys) resolve against:
    the host config file's."""
    discover: bool = False
    """Also load every pip-installed plugin (entry-point group ``weaviate_ext``)."""
    vectorizer: str | None = None
    """The vectorizer behind ``/vectors`` and the default model (else the only one)."""
    reranker: str | None = None
    """The reranker behind ``/rerank`` (else the only one)."""
    generator: str | None = None
    """The default generator for OpenAI and Ollama requests (else the only one)."""
    tokens: tuple[str, ...] = attrs.field(default=(), repr=False)
    """Bearer tokens accepted; empty (and no ``auth_plugins``) means no authentication."""
    auth_plugins: bool = False
    """Check bearer tokens with the loaded auth plugins (``manager.authenticate``)."""
    cache: bool = False
    """Serve repeated vectorize and rerank requests of deterministic plugins from memory."""
    cache_size: int = 10_000
    """Entries kept by the cache (least recently used ones are dropped)."""
    max_text_length: int = 100_000
    """Longest text accepted, in characters."""
    max_batch: int = 2048
    """Most texts (or documents) accepted in one request."""
    max_body_bytes: int = 32 * MiB
    """Largest request body accepted."""
    timeout: float | None = None
    """Per-call deadline in seconds (default: each plugin's ``spec.timeout``, else 30)."""
    threads: int = 32
    """Plugin calls running at once in worker threads; more requests wait their turn."""
    reload: bool = False
    """Watch the plugins' directories and reload a plugin when its files change."""
    batch_window_ms: float = 0.0
    """Dynamic batching: how long (milliseconds) concurrent single-text requests to a
    batch-safe vectorizer (``capabilities.batchSafe``) are collected into one
    ``vectorize_batch`` call at most; 0 turns batching off (one call per request)."""
    otel: bool = False
    """OpenTelemetry tracing (the ``otel`` extra): a server span per request (the FastAPI
    instrumentation) with a child span per plugin call, the trace context passed on to
    gRPC plugins; spans go to the global tracer provider, else to one configured from
    the ``OTEL_*`` environment (:func:`weaviate_ext.tracing.configure_from_env`)."""
    request_log: bool = False
    """Log one INFO record per request on the ``weaviate_ext.serve.access`` logger, with
    ``request_id`` (the ``X-Request-ID`` header, else a new one, sent back),
    ``plugin``, ``latency_ms``, ``method``, ``path`` and ``status`` attributes (what
    ``serve --log-format json`` prints)."""

    def __attrs_post_init__(self) -> None:
        for name in ("cache_size", "max_text_length", "max_batch", "max_body_bytes", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve setting {name} must be at least 1")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError("serve setting timeout must be > 0")
        if not 0 <= self.batch_window_ms <= MAX_BATCH_WINDOW_MS:
            raise ConfigError(
                f"serve setting batch_window_ms must be between 0 and {MAX_BATCH_WINDOW_MS:g}"
            )
        Grants.from_data(self.grants, "serve setting grants")  # refuse a malformed one now

    @property
    def host_grants(self) -> Grants:
        """:attr:`grants` as :class:`~weaviate_ext.grants.Grants` for the manager."""
        return Grants.from_data(self.grants, "serve setting grants")

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need a valid ``Authorization: Bearer`` header."""
        return bool(self.tokens) or self.auth_plugins

    # -- environment --------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeSettings:
        """Settings from the environment (for ``app_from_env`` under an ASGI server).

        :data:`SETTINGS_FILE_ENV` names a JSON file with every setting; otherwise each
        setting has its own variable: :data:`PLUGINS_ENV`, ``WEAVIATE_EXT_SERVE_PLUGIN_FILES``
        (``os.pathsep``-separated), ``WEAVIATE_EXT_SERVE_CONFIG_FILE`` (a host config
        file as for ``--config-file``, its ``_grants`` section included),
        ``WEAVIATE_EXT_SERVE_GRANT`` (``--grant`` values separated by ``;``),
        ``WEAVIATE_EXT_SERVE_TRUST`` (plugin names separated by ``,``),
        ``WEAVIATE_EXT_SERVE_VECTORIZER`` / ``_RERANKER``
        / ``_GENERATOR``, :data:`TOKENS_ENV`, ``WEAVIATE_EXT_SERVE_AUTH_PLUGINS``,
        :data:`CACHE_ENV`, ``WEAVIATE_EXT_SERVE_CACHE_SIZE``, ``_MAX_TEXT_LENGTH``,
        ``_MAX_BATCH``, ``_MAX_BODY_BYTES``, ``_TIMEOUT``, ``_THREADS``, ``_BATCH_WINDOW_MS``,
        ``_RELOAD``, ``_DISCOVER``, ``_OTEL`` and ``_REQUEST_LOG``.
        """
        env = os.environ if environ is None else environ
        settings_file = env.get(SETTINGS_FILE_ENV)
        if settings_file:
            return cls.read(settings_file)

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value if value not in (None, "") else None

        def number(name: str, kind: type[int] | type[float]) -> Any:
            text = get(name)
            if text is None:
                return None
            try:
                return kind(text)
            except ValueError:
                raise ConfigError(f"{PREFIX}{name}: not a number: {text!r}") from None

        host = host_config_from_env(env)
        values: dict[str, Any] = {
            "registry": host.registry,
            "registry_base": host.registry_base,
            "plugin_dirs": _split(env.get(PLUGINS_ENV), os.pathsep),
            "plugin_files": _split(get("PLUGIN_FILES"), os.pathsep),
            "config": host.config,
            "grants": host.grants.to_data(),
            "discover": _truthy(get("DISCOVER")),
            "vectorizer": get("VECTORIZER"),
            "reranker": get("RERANKER"),
            "generator": get("GENERATOR"),
            "tokens": _split(env.get(TOKENS_ENV), ","),
            "auth_plugins": _truthy(get("AUTH_PLUGINS")),
            "cache": _truthy(env.get(CACHE_ENV)),
            "reload": _truthy(get("RELOAD")),
            "otel": _truthy(get("OTEL")),
            "request_log": _truthy(get("REQUEST_LOG")),
        }
        for name, kind in (
            ("cache_size", int),
            ("max_text_length", int),
            ("max_batch", int),
            ("max_body_bytes", int),
            ("threads", int),
            ("timeout", float),
            ("batch_window_ms", float),
        ):
            value = number(name.upper(), kind)
            if value is not None:
                values[name] = value
        return cls(**values)

    # -- a file, for worker processes ---------------------------------------------------

    def to_json(self) -> str:
        """Every setting as a JSON object (tokens and config included: keep it private)."""
        data = attrs.asdict(self, recurse=False)
        data["config"] = {name: dict(values) for name, values in self.config.items()}
        data["grants"] = dict(self.grants)
        return json.dumps(data)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ServeSettings:
        """Settings from a JSON file written with :meth:`write`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{path}: not a JSON settings file: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: not a JSON object")
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown settings {unknown}")
        for name in ("plugin_dirs", "plugin_files", "tokens"):
            if name in data:
                data[name] = tuple(data[name])
        return cls(**data)

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the settings to ``path``, readable by the owner only."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())
