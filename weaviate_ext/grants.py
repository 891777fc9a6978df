"""What the host grants a plugin: the other half of the manifest's requests.

A manifest is written by the plugin's author, so what it says under
``spec.permissions`` and in its config *defaults* are **requests**. The host grants
(:class:`Grant`, per plugin name or ``"*"`` for every plugin) through
``PluginManager(grants=..., trust=...)``, the ``_grants`` section of a host config
file, or ``--grant``/``--trust`` on the command line. Without a grant a plugin may read
its own directory and nothing else:

- a requested directory outside the plugin's directory, or any ``rw`` directory,
  needs a granted directory that contains it (with ``rw`` for a write);
- a requested environment variable needs that variable granted;
- ``network: true`` needs network granted;
- a ``${env:NAME}`` or ``${file:PATH}`` reference in a config *default* needs the same
  grants as the variable or a read of the file would (values the host passes itself
  resolve freely: the operator wrote them);
- a trusted plugin (``Grant(trust=True)``) is granted everything it requests.

A request the host did not grant refuses the load with
:class:`~weaviate_ext.errors.PermissionNotGranted`, which names the request and the
``--grant`` that would allow it. Nothing here knows a runtime: the sandboxing
runtimes (wasm, grpc) enforce what was granted, the in-process ones (python, native)
can read whatever the host can, so for them the check is a statement, not a wall.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from weaviate_ext.errors import ConfigError, PermissionNotGranted
from weaviate_ext.manifest.model import Manifest

EVERY_PLUGIN = "*"
"""The name under which a grant applies to every plugin."""

Mode = Literal["ro", "rw"]


def _resolved(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.expanduser(path))


@attrs.frozen
class DirectoryAccess:
    """A host directory granted to a plugin: ``path`` (absolute, symlinks resolved)
    and whether the plugin may also write there (``rw``)."""

    path: str = attrs.field(converter=_resolved)
    mode: Mode = "ro"

    def allows(self, path: str, mode: Mode) -> bool:
        """Whether ``path`` (resolved) is inside this directory, for ``mode``."""
        return _inside(path, self.path) and (self.mode == "rw" or mode == "ro")

    def __str__(self) -> str:
        return f"{self.path}:{self.mode}"


def _directories(items: Iterable[DirectoryAccess | str]) -> tuple[DirectoryAccess, ...]:
    return tuple(
        item if isinstance(item, DirectoryAccess) else parse_directory(item) for item in items
    )


def _names(items: Iterable[str]) -> frozenset[str]:
    return frozenset(items)


@attrs.frozen
class Grant:
    """What the host grants one plugin (or every plugin, under ``"*"``).

    ``env``: host environment variables it may read; ``directories``: host
    directories it may see (:class:`DirectoryAccess`, or ``"PATH"``/``"PATH:rw"``);
    ``network``: TCP for a plugin process; ``trust``: everything it requests.
    """

    env: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    directories: tuple[DirectoryAccess, ...] = attrs.field(default=(), converter=_directories)
    network: bool = False
    trust: bool = False

    def __or__(self, other: Grant) -> Grant:
        """Both grants together."""
        return Grant(
            env=self.env | other.env,
            directories=(*self.directories, *other.directories),
            network=self.network or other.network,
            trust=self.trust or other.trust,
        )

    def allows_file(self, path: str, own_directory: str) -> bool:
        """Whether a read of ``path`` (resolved) is granted: inside the plugin's own
        directory or a granted directory, or the plugin is trusted."""
        if self.trust or _inside(path, own_directory):
            return True
        return any(d.allows(path, "ro") for d in self.directories)

    def to_data(self) -> dict[str, Any]:
        """The grant as plain data, in the form of a host config file's ``_grants``."""
        data: dict[str, Any] = {}
        if self.env:
            data["env"] = sorted(self.env)
        if self.directories:
            data["directories"] = [str(d) for d in self.directories]
        if self.network:
            data["network"] = True
        if self.trust:
            data["trust"] = True
        return data


NOTHING = Grant()
"""The default: no grant beyond a read of the plugin's own directory."""


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def parse_directory(text: str) -> DirectoryAccess:
    """``PATH`` or ``PATH:ro`` / ``PATH:rw`` as a :class:`DirectoryAccess`."""
    path, sep, mode = text.rpartition(":")
    if sep and mode in ("ro", "rw"):
        if not path:
            raise ValueError(f"expected PATH[:ro|rw], got {text!r}")
        return DirectoryAccess(path, mode)  # type: ignore[arg-type]
    if not text:
        raise ValueError("expected PATH[:ro|rw], got an empty path")
    return DirectoryAccess(text)


def _by_name(grants: Mapping[str, Grant]) -> dict[str, Grant]:
    return dict(grants)


@attrs.frozen
class Grants:
    """The host's grants, by plugin name; ``"*"`` applies to every plugin."""

    by_plugin: Mapping[str, Grant] = attrs.field(factory=dict, converter=_by_name)

    def for_plugin(self, name: str) -> Grant:
        """What plugin ``name`` is granted: its own grant with the ``"*"`` grant."""
        return self.by_plugin.get(name, NOTHING) | self.by_plugin.get(EVERY_PLUGIN, NOTHING)

    def __or__(self, other: Grants) -> Grants:
        """Both sets of grants together (per plugin, each grant adds)."""
        merged = dict(self.by_plugin)
        for name, grant in other.by_plugin.items():
            merged[name] = merged[name] | grant if name in merged else grant
        return Grants(merged)

    def __bool__(self) -> bool:
        return bool(self.by_plugin)

    @classmethod
    def of(
        cls, grants: Grants | Mapping[str, Grant] | None = None, trust: Iterable[str] = ()
    ) -> Grants:
        """Grants from the manager's arguments: a mapping of name to :class:`Grant`
        and names to trust."""
        base = grants if isinstance(grants, Grants) else cls(grants or {})
        return base | cls({name: Grant(trust=True) for name in trust})

    @classmethod
    def from_data(cls, data: Any, where: str = "_grants") -> Grants:
        """Grants from plain data (a host config file's ``_grants`` section)::

            {"my-plugin": {"env": ["HF_TOKEN"], "directories": ["/srv/models", "/var/x:rw"],
                           "network": true, "trust": false}, "*": {...}}

        Raises :class:`ConfigError` naming the entry that is malformed.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping of plugin names to grants")
        grants: dict[str, Grant] = {}
        for name, entry in data.items():
            here = f"{where}.{name}"
            if entry is None:
                entry = {}
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{here}: expected a mapping (env, directories, network, trust)")
            unknown = sorted(set(entry) - {"env", "directories", "network", "trust"})
            if unknown:
                raise ConfigError(
                    f"{here}: unknown field {unknown[0]!r}; the fields are env, directories, "
                    "network, trust"
                )
            env, dirs = entry.get("env", []), entry.get("directories", [])
            if not isinstance(env, list) or not all(isinstance(v, str) for v in env):
                raise ConfigError(f"{here}.env: expected a list of variable names")
            if not isinstance(dirs, list) or not all(isinstance(v, str) and v for v in dirs):
                raise ConfigError(f"{here}.directories: expected a list of PATH or PATH:rw")
            for flag in ("network", "trust"):
                if not isinstance(entry.get(flag, False), bool):
                    raise ConfigError(f"{here}.{flag}: expected true or false")
            grants[str(name)] = Grant(
                env=env,
                directories=dirs,
                network=entry.get("network", False),
                trust=entry.get("trust", False),
            )
        return cls(grants)

    def to_data(self) -> dict[str, Any]:
        """The grants as plain data (the inverse of :meth:`from_data`)."""
        return {name: grant.to_data() for name, grant in self.by_plugin.items()}


def parse_grant(text: str) -> tuple[str, Grant]:
    """One ``--grant`` option: ``NAME:env=VAR[,VAR]``, ``NAME:dir=PATH[:ro|rw]`` or
    ``NAME:network`` (``NAME`` may be ``*``). Raises :class:`ValueError` when malformed."""
    name, sep, what = text.partition(":")
    if not sep or not name or not what:
        raise ValueError(f"expected NAME:env=VAR, NAME:dir=PATH[:rw] or NAME:network, got {text!r}")
    kind, _, value = what.partition("=")
    if kind == "network" and not value:
        return name, Grant(network=True)
    if kind == "env" and value:
        names = [v.strip() for v in value.split(",") if v.strip()]
        if names:
            return name, Grant(env=names)
    if kind == "dir" and value:
        return name, Grant(directories=[parse_directory(value)])
    raise ValueError(f"expected NAME:env=VAR, NAME:dir=PATH[:rw] or NAME:network, got {text!r}")


def parse_grants(texts: Iterable[str]) -> Grants:
    """``--grant`` values (see :func:`parse_grant`) together as :class:`Grants`."""
    grants = Grants()
    for text in texts:
        name, grant = parse_grant(text)
        grants |= Grants({name: grant})
    return grants


# -- checking a manifest's requests -------------------------------------------------------


def _own_directory(manifest: Manifest) -> str:
    return os.path.realpath(manifest.directory)


def requested_directory(manifest: Manifest, host: str) -> str:
    """A requested ``permissions.directories[].host`` as an absolute, resolved path."""
    path = Path(host).expanduser()
    return os.path.realpath(path if path.is_absolute() else manifest.directory / path)


def check_requests(manifest: Manifest, grant: Grant) -> None:
    """Refuse (:class:`PermissionNotGranted`) every ``spec.permissions`` request of
    ``manifest`` that ``grant`` does not cover; the message names each one and the
    ``--grant`` that would allow it."""
    if grant.trust:
        return
    name, requested = manifest.name, manifest.spec.permissions
    own = _own_directory(manifest)
    problems = [
        f"requests the environment variable {var!r} (spec.permissions.env), which this "
        f"host has not granted; grant it with --grant {name}:env={var}"
        for var in requested.env
        if var not in grant.env
    ]
    for entry in requested.directories:
        path = requested_directory(manifest, entry.host)
        if entry.mode == "ro" and _inside(path, own):
            continue
        if any(d.allows(path, entry.mode) for d in grant.directories):
            continue
        how = "read-write" if entry.mode == "rw" else "outside its own directory"
        problems.append(
            f"requests the directory {path!r} {how} (spec.permissions.directories), which "
            f"this host has not granted; grant it with --grant {name}:dir={path}:{entry.mode}"
        )
    if requested.network and not grant.network:
        problems.append(
            "requests network access (spec.permissions.network), which this host has not "
            f"granted; grant it with --grant {name}:network"
        )
    if problems:
        raise PermissionNotGranted(
            name, "; ".join(problems) + f" (or trust the plugin: --trust {name})"
        )


def default_reference_check(manifest: Manifest, grant: Grant) -> Callable[[str, str], str | None]:
    """The check :func:`~weaviate_ext.manifest.resolve_config` applies to a reference in a
    config *default*: ``check(kind, target)`` is ``None`` when allowed, else why not.

    ``target`` is the variable's name for ``env`` and the resolved path for ``file``.
    """
    name, own = manifest.name, _own_directory(manifest)

    def check(kind: str, target: str) -> str | None:
        if kind == "env":
            if grant.trust or target in grant.env:
                return None
            how = f"--grant {name}:env={target}"
            what = f"the host environment variable {target!r}"
        else:
            if grant.allows_file(target, own):
                return None
            how = f"--grant {name}:dir={os.path.dirname(target)}"
            what = f"the host file {target!r}, outside the plugin's directory"
        return (
            f"its default reads {what}, which this host has not granted; pass the value "
            f"yourself (--config {name}.KEY=...), grant it with {how}, or trust the plugin "
            f"(--trust {name})"
        )

    return check


def describe(manifest: Manifest, grant: Grant) -> dict[str, Any]:
    """Requested and granted side by side, for ``inspect`` and ``list --json``.

    ``requested`` is the manifest's ``spec.permissions`` (directories resolved);
    ``granted`` is what the host grants this plugin; ``trusted`` whether it is trusted.
    """
    requested = manifest.spec.permissions
    return {
        "requested": {
            "env": list(requested.env),
            "directories": [
                f"{requested_directory(manifest, d.host)}:{d.mode}" for d in requested.directories
            ],
            "network": requested.network,
        },
        "granted": {
            "env": sorted(grant.env),
            "directories": [str(d) for d in grant.directories],
            "network": grant.network,
        },
        "trusted": grant.trust,
    }
