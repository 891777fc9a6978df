"""Confining a plugin process: Landlock, a network namespace, no privileges.

The mechanics only, with ``ctypes`` and the standard library: the keeper
(:mod:`weaviate_ext.grpc.keeper`, run as ``python -I -S``) loads this file by its path
and calls it in the plugin's process between ``fork`` and ``exec``; the host imports it
to ask the kernel what it offers. *What* a plugin may reach is decided by the host
(:mod:`weaviate_ext.grpc.confine`) and handed to the keeper on its command line.

Landlock (``landlock(7)``) is used best effort by ABI version, asked with
``landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)``:

* ABI 1: the file rights (execute, read, write, create and remove entries);
* ABI 2: ``REFER`` (rename and link across directories, granted in writable places);
* ABI 3: ``TRUNCATE``;
* ABI 4: TCP ``bind``/``connect`` (denied unless network is granted);
* ABI 5: ``IOCTL_DEV`` (ioctl on device files, granted only on ``/dev/null``-like files);
* ABI 6: scoping: no signal to, and no connection to an abstract UNIX socket of, a
  process outside the plugin's domain (the keeper, the host, other plugins);
* ABI 7 adds audit-log flags only (not used).

Syscall numbers 444-446 are the same on x86_64 and aarch64 (and every architecture
using the generic table since 5.13).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import sys
from collections.abc import Sequence
from typing import Any

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_RULE_NET_PORT = 2

# Filesystem rights (ABI 1 unless said).
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
"""The rights a rule on a file (not a directory) may carry."""

MODES: dict[str, int] = {
    # read and execute: system directories, the interpreter, the plugin's directory
    "rx": FS_EXECUTE | FS_READ_FILE | FS_READ_DIR,
    # read only: granted ro directories, the interpreter's path, a few /etc files
    "ro": FS_READ_FILE | FS_READ_DIR,
    # read, write, create, remove, rename (no execute, no device nodes, no device ioctl)
    "rw": FS_READ_FILE
    | FS_READ_DIR
    | FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SOCK
    | FS_MAKE_FIFO
    | FS_MAKE_SYM
    | FS_REFER
    | FS_TRUNCATE,
    # a harmless device file such as /dev/null: read, write, truncate, ioctl
    "dev": FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV,
}
"""The modes of ``--allow MODE:PATH``, as Landlock rights (cut to what the ABI has)."""

NETNS_METHODS = ("net", "user")
"""``net``: ``unshare(CLONE_NEWNET)`` (needs ``CAP_SYS_ADMIN``); ``user``: with a new
user namespace mapping only the process's own uid and gid (unprivileged)."""

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
# SECBIT_NOROOT | _LOCKED, SECBIT_KEEP_CAPS_LOCKED, SECBIT_NO_CAP_AMBIENT_RAISE | _LOCKED
_SECUREBITS = 0x01 | 0x02 | 0x20 | 0x40 | 0x80
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("allowed_access", ctypes.c_uint64),
        ("parent_fd", ctypes.c_int32),
    ]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def abi_version() -> int:
    """The Landlock ABI version the kernel offers; 0 without Landlock."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        result = _c().syscall(
            SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION
        )
    except (OSError, AttributeError):  # pragma: no cover - no libc
        return 0
    return max(int(result), 0)


def fs_rights(abi: int) -> int:
    """Every filesystem right Landlock ABI ``abi`` knows (what a ruleset handles)."""
    if abi <= 0:
        return 0
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def build(abi: int, allow: Sequence[tuple[str, str]], deny_tcp: bool) -> int:
    """A Landlock ruleset (its file descriptor) for ABI ``abi``, to :func:`enforce`.

    ``allow`` is ``(mode, path)`` with a mode of :data:`MODES`; a path that does not
    exist (or that this process cannot open either) is skipped. With ``deny_tcp``
    (ABI >= 4) TCP bind and connect are denied. At ABI >= 6 signals and abstract UNIX
    sockets are scoped to the domain. Raises :class:`OSError` when the kernel refuses.
    """
    libc = _c()
    handled = fs_rights(abi)
    attr = RulesetAttr(handled_access_fs=handled)
    size = 8
    if deny_tcp:
        if abi < 4:
            raise OSError(errno.EOPNOTSUPP, f"Landlock ABI {abi} has no TCP rules")
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    ruleset = _check(
        libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0),
        "landlock_create_ruleset",
    )
    try:
        for mode, path in allow:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except (FileNotFoundError, PermissionError):
                continue
            try:
                rights = MODES[mode] & handled
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    rights &= FILE_RIGHTS
                if not rights:
                    continue
                rule = PathBeneathAttr(allowed_access=rights, parent_fd=fd)
                _check(
                    libc.syscall(
                        SYS_LANDLOCK_ADD_RULE,
                        ruleset,
                        LANDLOCK_RULE_PATH_BENEATH,
                        ctypes.byref(rule),
                        0,
                    ),
                    f"landlock_add_rule({path})",
                )
            finally:
                os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def enforce(ruleset: int) -> None:
    """Restrict this process (and everything it execs or starts) to ``ruleset``, then
    close it. Sets ``no_new_privs`` first (Landlock requires it without
    ``CAP_SYS_ADMIN``)."""
    try:
        set_no_new_privs()
        _check(_c().syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def set_no_new_privs() -> None:
    """``PR_SET_NO_NEW_PRIVS``: no exec gains privileges (setuid, file capabilities)."""
    _check(_c().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def enter_network_namespace(method: str) -> None:
    """Move this process into a new, empty network namespace (loopback down: no
    network at all, UDP and raw sockets included). ``method``: :data:`NETNS_METHODS`."""
    libc = _c()
    if method == "net":
        _check(libc.unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        return
    if method != "user":
        raise ValueError(f"unknown network namespace method {method!r}")
    uid, gid = os.geteuid(), os.getegid()
    _check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET), "unshare(CLONE_NEWUSER|CLONE_NEWNET)")
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def drop_capabilities() -> None:
    """Leave this process (and what it execs) without any capability, also as root.

    The bounding set and the securebits need ``CAP_SETPCAP``: done when possible (a
    process without it has nothing to drop there). The ambient, effective, permitted
    and inheritable sets are always cleared.
    """
    libc = _c()
    try:
        with open("/proc/sys/kernel/cap_last_cap") as last:
            last_cap = int(last.read())
    except (OSError, ValueError):
        last_cap = 40
    for cap in range(last_cap + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: fine
    libc.prctl(_PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(version=_LINUX_CAPABILITY_VERSION_3, pid=0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")


def probe_network_namespace() -> str:
    """The :data:`NETNS_METHODS` entry that works here, or ``""``. Changes the calling
    process's namespaces: run it in a throwaway process (``python -I -S landlock.py``)."""
    for method in ("net", "user") if os.geteuid() == 0 else ("user",):
        try:
            enter_network_namespace(method)
        except OSError:
            continue
        return method
    return ""


if __name__ == "__main__":
    print(probe_network_namespace())
