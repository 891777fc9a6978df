"""Registry credentials from the standard places, never printed.

Looked up in this order, the first that has the registry wins:

1. ``WEAVIATE_EXT_REGISTRY_USERNAME`` / ``WEAVIATE_EXT_REGISTRY_PASSWORD`` (any registry);
2. ``$REGISTRY_AUTH_FILE`` (podman, skopeo, buildah);
3. ``${XDG_RUNTIME_DIR}/containers/auth.json`` and ``~/.config/containers/auth.json``;
4. ``~/.docker/config.json`` (``$DOCKER_CONFIG/config.json``).

The auth files hold ``{"auths": {"HOST[:PORT]": {"auth": base64("user:password")}}}``
(docker's credential helpers are not run). A :class:`Credentials` never shows its
password in ``repr`` or ``str``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs

USERNAME_ENV = "WEAVIATE_EXT_REGISTRY_USERNAME"
PASSWORD_ENV = "WEAVIATE_EXT_REGISTRY_PASSWORD"


@attrs.frozen
class Credentials:
    """A user name and password for one registry, and where they came from."""

    username: str
    password: str = attrs.field(repr=False)
    source: str
    """Where they were found (an environment variable's or a file's name), for messages."""

    def __str__(self) -> str:
        return f"credentials of {self.username!r} from {self.source}"


def auth_files(env: Mapping[str, str] | None = None) -> Iterator[Path]:
    """The auth files to look in, in order (they need not exist)."""
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        yield Path(env["REGISTRY_AUTH_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        yield Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    home = Path(env.get("HOME") or Path.home())
    yield home / ".config" / "containers" / "auth.json"
    docker = env.get("DOCKER_CONFIG")
    yield (Path(docker) if docker else home / ".docker") / "config.json"


def _from_file(path: Path, registry: str) -> Credentials | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    auths = document.get("auths") if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        return None
    for key in (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v2/"):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                user, sep, password = base64.b64decode(encoded).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                continue
            if sep:
                return Credentials(user, password, str(path))
        name, secret = entry.get("username"), entry.get("password")
        if isinstance(name, str) and isinstance(secret, str):
            return Credentials(name, secret, str(path))
    return None


def find_credentials(registry: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for ``registry`` (``HOST[:PORT]``), or ``None`` (anonymous)."""
    env = os.environ if env is None else env
    user, password = env.get(USERNAME_ENV), env.get(PASSWORD_ENV)
    if user and password is not None:
        return Credentials(user, password, f"${USERNAME_ENV}/${PASSWORD_ENV}")
    for path in auth_files(env):
        found = _from_file(path, registry)
        if found is not None:
            return found
    return None
