"""Timings and limits of the gRPC plugin supervisor, from the host environment."""

from __future__ import annotations

import os

import attrs

_ENV_PREFIX = "WEAVIATE_EXT_GRPC_"


@attrs.frozen
class Settings:
    """Timings and limits of the supervisor; each can be set from the host environment
    as ``WEAVIATE_EXT_GRPC_<NAME>`` (e.g. ``WEAVIATE_EXT_GRPC_START_TIMEOUT=5``)."""

    start_timeout: float = 30.0
    """Seconds from start to SERVING (handshake, Info, Init, health)."""
    stop_grace: float = 3.0
    """Seconds between SIGTERM and SIGKILL when a plugin is stopped."""
    max_restarts: int = 5
    """Failed starts or early crashes in a row after which the plugin is marked failed."""
    backoff_initial: float = 0.1
    """Seconds before the first restart; doubled after each failure."""
    backoff_max: float = 10.0
    """The longest wait between restarts."""
    stable_after: float = 30.0
    """A process that ran this long before crashing resets the failure count."""
    health_interval: float = 1.0
    """Remote mode: seconds between health checks of each replica."""
    resolve_interval: float = 30.0
    """Remote mode: seconds between DNS resolutions of a ``dns:`` address (replicas that
    appear join the rotation after their ``Init``; replicas that disappear leave it)."""

    @classmethod
    def from_environ(cls) -> Settings:
        """The defaults, overridden by ``WEAVIATE_EXT_GRPC_*`` host variables."""
        values: dict[str, float | int] = {}
        for field in attrs.fields(cls):
            raw = os.environ.get(_ENV_PREFIX + field.name.upper())
            if raw:
                values[field.name] = int(raw) if field.type in (int, "int") else float(raw)
        return cls(**values)  # type: ignore[arg-type]
