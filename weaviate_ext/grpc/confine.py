"""What a local plugin process may reach: the plan the keeper enforces.

The host decides, from what the kernel offers (asked once per host process) and what
was granted (``spec.permissions``, already checked against the host's grants), a
:class:`Confinement`; :func:`weaviate_ext.grpc.spawn.spawn` passes it to the keeper on
its command line, and the keeper applies it in the plugin's process right before
``exec`` (:mod:`weaviate_ext.grpc.landlock`). The keeper refuses to start the plugin
when any part cannot be applied, so the plugin object's ``isolation`` text (from
:func:`describe`) is what is in force, never a hope.

Filesystem (Landlock): read and execute ``/usr``, ``/bin``, ``/sbin``, ``/lib*``, the
plugin's directory, the program's installation prefix (and its ``#!`` interpreter's);
read only a few ``/etc`` files (loader cache, time zone, users and groups, name
resolution, CA certificates), ``/proc/self``, CPU and memory facts in ``/proc`` and
``/sys``, ``/dev/urandom``; read and write ``/dev/null`` and its private directory
(socket, ``HOME``, ``TMPDIR``); for the host's own Python also its prefixes, site
directories, ``.pth`` and editable-install paths and ``PYTHONPATH``; and the granted
directories, ``ro`` or ``rw``. Nothing else: not ``/tmp``, not ``/home``, not ``/root``.

Network: without ``permissions.network``, TCP bind and connect are denied (Landlock
ABI >= 4) and the process runs in an empty network namespace when one can be created
(so UDP and every other protocol are gone too); with it, nothing is restricted.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from weaviate_ext.grpc import landlock
from weaviate_ext.manifest.model import Permissions

SYSTEM_RX: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""System directories every plugin may read and execute from."""

SYSTEM_RO: tuple[str, ...] = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ld.so.preload",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/mime.types",
    "/etc/locale.alias",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/dev/urandom",
    "/dev/random",
    "/proc/self",  # resolved by the plugin's process itself: its own /proc/<pid>
    "/proc/meminfo",
    "/proc/cpuinfo",
    "/proc/stat",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/net/core/somaxconn",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
)
"""Files and directories every plugin may read (no secrets: ``/etc/shadow`` is not)."""

SYSTEM_DEV: tuple[str, ...] = ("/dev/null", "/dev/zero", "/dev/full")
"""Device files every plugin may read and write."""

_kernel: list[tuple[int, str]] = []
_kernel_lock = threading.Lock()


def kernel_support() -> tuple[int, str]:
    """``(Landlock ABI, network namespace method)`` on this host, asked once.

    The ABI comes from the kernel directly; whether a network namespace can be created
    (``"net"`` as root, ``"user"`` through a user namespace, ``""`` not at all: seccomp
    in a container, ``user.max_user_namespaces=0``, an AppArmor restriction) is tried
    in a throwaway ``python -I -S landlock.py`` (~30 ms, once).
    """
    with _kernel_lock:
        if not _kernel:
            _kernel.append((landlock.abi_version(), _probe_netns()))
        return _kernel[0]


def _probe_netns() -> str:
    import subprocess

    if not sys.executable or not sys.platform.startswith("linux"):
        return ""
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-S", landlock.__file__],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    method = result.stdout.strip()
    return method if method in landlock.NETNS_METHODS else ""


@attrs.frozen
class Confinement:
    """The confinement of one plugin process (see the module docstring).

    ``abi``: the Landlock ABI used (0: no Landlock); ``allow``: ``(mode, path)`` rules
    (:data:`weaviate_ext.grpc.landlock.MODES`); ``network``: granted;
    ``netns``: the network namespace method, or ``""``.
    """

    abi: int
    allow: tuple[tuple[str, str], ...] = ()
    network: bool = False
    netns: str = ""
    drop_capabilities: bool = True

    @property
    def tcp_denied(self) -> bool:
        """Whether Landlock denies TCP bind and connect."""
        return not self.network and self.abi >= 4

    def keeper_args(self) -> list[str]:
        """The keeper's options that apply this confinement."""
        args: list[str] = []
        if self.abi:
            args += ["--landlock", str(self.abi)]
            for mode, path in self.allow:
                args += ["--allow", f"{mode}:{path}"]
            if self.tcp_denied:
                args += ["--tcp", "deny"]
        if self.netns:
            args += ["--netns", self.netns]
        if self.drop_capabilities:
            args += ["--caps", "none"]
        return args

    def label(self) -> str:
        """The short form: ``process+landlock(fs,tcp)+netns``, ``process+netns``, ..."""
        text = "process"
        if self.abi:
            text += "+landlock(fs,tcp)" if self.tcp_denied else "+landlock(fs)"
        if self.netns:
            text += "+netns"
        return text


def plan(
    argv: Sequence[str],
    python: bool,
    directory: Path,
    private: Path,
    env: Mapping[str, str],
    permissions: Permissions,
) -> Confinement:
    """The confinement of a plugin running ``argv`` (resolved, see
    :func:`~weaviate_ext.grpc.spawn.resolve_command`) from ``directory``, with its
    ``private`` directory, environment ``env`` and granted ``permissions``."""
    mechanisms = in_force(permissions)
    allow: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(mode: str, path: str | os.PathLike[str]) -> None:
        text = os.fspath(path)
        if not text or not os.path.isabs(text) or not os.path.exists(text):
            return
        # /proc/self must stay as it is: the plugin's process resolves it to its own pid
        key = (mode, text if text.startswith("/proc/") else os.path.realpath(text))
        if key not in seen:
            seen.add(key)
            allow.append(key)

    for path in SYSTEM_RX:
        add("rx", path)
    for path in SYSTEM_RO:
        add("ro", path)
    for path in SYSTEM_DEV:
        add("dev", path)
    add("rx", directory.resolve())
    add("rw", private)
    if argv:
        for path in _program_paths(argv[0], directory, env):
            add("rx", path)
    if python:
        for path in _python_paths(env):
            add("rx" if path in _prefixes() else "ro", path)
    for grant in permissions.directories:
        add("rw" if grant.mode == "rw" else "ro", _granted(grant.host, directory))
    return attrs.evolve(mechanisms, allow=tuple(allow) if mechanisms.abi else ())


def in_force(permissions: Permissions) -> Confinement:
    """The mechanisms (no paths yet) that confine a plugin granted ``permissions`` here."""
    abi, netns = kernel_support()
    network = permissions.network
    return Confinement(abi=abi, network=network, netns="" if network else netns)


def describe(permissions: Permissions) -> str:
    """The ``isolation`` text of a plugin process granted ``permissions``: exactly the
    confinement the keeper applies (it refuses to start the plugin otherwise)."""
    confinement = in_force(permissions)
    base = (
        f"{confinement.label()}: own process group under a keeper, private directory, "
        "scrubbed environment, memory rlimit and CPU affinity from spec.resources"
    )
    parts: list[str] = []
    grants_ro = sum(1 for d in permissions.directories if d.mode != "rw")
    grants_rw = len(permissions.directories) - grants_ro
    if confinement.abi:
        parts.append(
            f"Landlock ABI {confinement.abi}: reads only system, interpreter and plugin "
            f"directories and {grants_ro + grants_rw} granted, writes only its private "
            f"directory and {grants_rw} granted"
            + ("; no signals or abstract sockets outside it" if confinement.abi >= 6 else "")
        )
    else:
        parts.append("files NOT confined (no Landlock in this kernel)")
    if confinement.network:
        parts.append("network granted")
    elif confinement.netns and confinement.tcp_denied:
        parts.append("no TCP (Landlock) and no network at all (empty network namespace)")
    elif confinement.netns:
        parts.append("no network (empty network namespace)")
    elif confinement.tcp_denied:
        parts.append("no TCP (Landlock); UDP not blocked (no network namespace available)")
    else:
        parts.append("network NOT confined (neither Landlock TCP rules nor a network namespace)")
    parts.append("no_new_privs, no capabilities")
    return base + "; " + "; ".join(parts)


def _granted(host: str, directory: Path) -> str:
    path = Path(host).expanduser()
    return os.path.realpath(path if path.is_absolute() else directory / path)


_BROAD = frozenset({"/", "/home", "/root", "/tmp", "/var", "/var/tmp", "/etc", "/proc", "/sys"})


def _prefix(program: str) -> list[str]:
    """A program and where it is installed: ``/opt/node/bin/node`` -> ``/opt/node``
    (the parent of a ``bin``/``sbin`` directory), else the program's own directory —
    never a broad directory such as ``/``, ``/home``, a home directory or ``/tmp``."""
    real = os.path.realpath(program)
    parent = os.path.dirname(real)
    found = [real]
    if os.path.basename(parent) in ("bin", "sbin"):
        candidate = os.path.dirname(parent)
        if _narrow(candidate):
            return [*found, candidate]
    if _narrow(parent):
        found.append(parent)
    return found


def _narrow(path: str) -> bool:
    homes = {os.path.expanduser("~")}
    return path not in _BROAD and path not in homes and os.path.dirname(path) != "/home"


def _program_paths(program: str, directory: Path, env: Mapping[str, str]) -> list[str]:
    """What running ``program`` needs outside the plugin's directory: its prefix, and
    its ``#!`` interpreter's (``#!/usr/bin/env node`` looks ``node`` up on ``PATH``)."""
    found: list[str] = []
    if not _inside(os.path.realpath(program), directory):
        found += _prefix(program)
    try:
        with open(program, "rb") as script:
            head = script.read(256)
    except OSError:
        return found
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
        if words:
            interpreter = words[0]
            if os.path.basename(interpreter) == "env" and len(words) > 1:
                interpreter = shutil.which(words[1], path=env.get("PATH")) or ""
            if interpreter:
                found += _prefix(interpreter)
    return found


def _inside(path: str, directory: Path) -> bool:
    base = os.path.realpath(directory)
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


@functools.cache
def _prefixes() -> frozenset[str]:
    return frozenset(
        os.path.realpath(p)
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    )


def _python_paths(env: Mapping[str, str]) -> list[str]:
    """What the host's Python needs to start and import the SDK in a plugin process:
    its prefixes, site directories, the paths their ``.pth`` files add (editable
    installs included) and ``PYTHONPATH`` as passed to the plugin."""
    found = list(_installed_paths())
    for entry in env.get("PYTHONPATH", "").split(os.pathsep):
        if entry:
            found.append(os.path.realpath(entry))
    return found


@functools.cache
def _installed_paths() -> tuple[str, ...]:
    found = sorted(_prefixes())
    sites = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and site.USER_SITE:
        sites.append(site.USER_SITE)
    for directory in sites:
        if not os.path.isdir(directory):
            continue
        found.append(os.path.realpath(directory))
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".pth"):
                continue
            try:
                lines = Path(directory, name).read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if line and not line.startswith(("#", "import ", "import\t")):
                    found.append(os.path.realpath(os.path.join(directory, line)))
    for name, module in list(sys.modules.items()):
        mapping = getattr(module, "MAPPING", None) if name.startswith("__editable__") else None
        if isinstance(mapping, dict):
            for value in mapping.values():
                if isinstance(value, str):
                    found.append(value if os.path.exists(value) else value + ".py")
    return tuple(found)
