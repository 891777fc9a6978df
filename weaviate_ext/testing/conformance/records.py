"""Conformance checks for storage and auth plugins."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from weaviate_ext.errors import AuthenticationError, InvalidInput
from weaviate_ext.handles import (
    AuthHandle,
    StorageHandle,
)
from weaviate_ext.testing.conformance.report import (
    CheckFailed,
    ConformanceReport,
    Skip,
    expect,
    expect_raises,
    new_report,
)
from weaviate_ext.types import Identity

# ---------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------


BAD_KEYS: tuple[tuple[Any, str], ...] = (
    ("", "key must not be empty"),
    (42, "key must be str"),
    (7, "key must be str"),
    (None, "key must be str"),
    (b"bytes-key", "key must be str"),
)
"""``(key, message)``: keys that ``store``, ``retrieve`` and ``delete`` refuse."""

BAD_DATA: tuple[Any, ...] = ("text, not bytes", None, [1.0, 2.0], 1.5)
"""Values that ``store`` refuses with ``data must be bytes``."""

THREAD_CALLS = 40
"""Keys each thread of the ``threads`` check stores, retrieves and (every third) deletes."""


def odd_storage_keys(prefix: str) -> dict[str, str]:
    """The keys of the ``odd_keys`` check, by what makes them odd, each starting with or
    containing ``prefix``."""
    return {
        "NUL inside": f"{prefix}/nul\x00inside",
        "lone surrogate": f"{prefix}/lone \ud800 surrogate",
        "absolute path": f"/etc/passwd/{prefix}",
        "two levels up": f"../../{prefix}-x",
        "glob": f"{prefix}/*",
        "10,000 characters": f"{prefix}/" + "k" * 10_000,
        "10,000 characters, another last one": f"{prefix}/" + "k" * 9_999 + "l",
    }


def _expect_invalid(call: Callable[[], object], what: str, message: str) -> None:
    """Fail the running check unless ``call()`` raises :class:`InvalidInput` saying
    ``message``."""
    try:
        call()
    except InvalidInput as exc:
        expect(message in str(exc), f"{what} raised InvalidInput({str(exc)!r}), not {message!r}")
        return
    except Exception as exc:
        raise CheckFailed(f"{what} raised {type(exc).__name__}, expected InvalidInput") from None
    raise CheckFailed(f"{what} did not raise InvalidInput")


def check_storage(
    handle: StorageHandle, *, odd_keys: bool = False, threads: int = 0
) -> ConformanceReport:
    """Run the storage checks.

    Arbitrary bytes round-trip (``b""``, every byte value, 1 MiB); a store overwrites;
    a missing key is ``None``; ``delete`` says ``True`` then ``False``; Unicode keys and
    keys with ``/`` and ``..`` work and do not collide; an empty or non-``str`` key and
    non-bytes data raise :class:`~weaviate_ext.InvalidInput` saying so, and store
    nothing. Every key it writes is unique to this run and deleted afterwards.

    Two more checks run when asked (they are not recorded otherwise), for plugins that
    promise them:

    ``odd_keys=True``
        keys with NUL, a lone surrogate, an absolute path, ``../..``, ``*``, and two of
        10,000 characters that differ only in the last one, round-trip, do not collide
        with their truncations (``.../nul``, ``.../lone ``) and delete. (Not every
        runtime can carry them: gRPC strings are UTF-8, so a lone surrogate cannot
        cross.)
    ``threads=N``
        ``N`` threads at once each store, retrieve and (every third key) delete 40 keys
        of their own; every call succeeds and the final state is exact.
    """
    if threads < 0:
        raise ValueError(f"threads must be 0 or more, got {threads}")
    report = new_report(handle, StorageHandle)
    prefix = f"conformance-{uuid.uuid4().hex}"
    written: set[str] = set()

    def put(key: str, data: bytes) -> None:
        written.add(key)
        handle.store(key, data)

    def round_trip() -> str:
        values = {
            "empty": b"",
            "bytes": bytes(range(256)),
            "nul": b"\x00",
            "mib": os.urandom(1024 * 1024),
        }
        for name, data in values.items():
            key = f"{prefix}-{name}"
            put(key, data)
            got = handle.retrieve(key)
            expect(got is not None, f"{name}: stored value came back as None")
            expect(isinstance(got, bytes), f"{name}: retrieve returned {type(got).__name__}")
            expect(got == data, f"{name}: {len(data)} bytes stored, {len(got or b'')} differ")
        return "b'', all byte values, 1 MiB"

    def overwrite() -> None:
        key = f"{prefix}-overwrite"
        put(key, b"first value, longer")
        put(key, b"second")
        got = handle.retrieve(key)
        expect(got == b"second", f"after overwrite retrieve gave {got!r}")

    def missing() -> None:
        got = handle.retrieve(f"{prefix}-never-stored")
        expect(got is None, f"a missing key gave {got!r}, not None")

    def delete() -> None:
        key = f"{prefix}-delete"
        put(key, b"x")
        first = handle.delete(key)
        expect(first is True, f"delete of a stored key returned {first!r}")
        expect(handle.retrieve(key) is None, "a deleted key can still be retrieved")
        second = handle.delete(key)
        expect(second is False, f"delete of a deleted key returned {second!r}")
        third = handle.delete(f"{prefix}-never-stored")
        expect(third is False, f"delete of a missing key returned {third!r}")

    special = [
        f"{prefix}/ключ-键-🔑",
        f"{prefix}/a/b/c",
        f"../{prefix}-escape",
        f"{prefix}/../{prefix}-up",
        f"{prefix}/..",
        f"{prefix}/./dot",
        f"{prefix}/a b%2Fc",
        f"{prefix}/a/b",
        f"{prefix}/a%2Fb",
        f"{prefix}/a_b",
        f"{prefix}/a\\b",
        f"{prefix}/a:b",
        f"{prefix}/A_B",
        f"/{prefix}-absolute",
        f"{prefix}\\backslash",
    ]

    def special_keys() -> None:
        for i, key in enumerate(special):
            put(key, f"value {i}".encode())
        for i, key in enumerate(special):
            got = handle.retrieve(key)
            expect(got == f"value {i}".encode(), f"key {key!r} gave {got!r} (keys collide?)")
        for key in special:
            expect(handle.delete(key) is True, f"delete({key!r}) did not return True")
            written.discard(key)

    def invalid_input() -> None:
        refused = f"{prefix}-refused"
        calls = [(key, b"x", message) for key, message in BAD_KEYS]
        calls += [(refused, data, "data must be bytes") for data in BAD_DATA]
        for key, data, message in calls:
            what = f"store({key!r:.40}, {data!r:.40})"
            _expect_invalid(functools.partial(handle.store, key, data), what, message)
            got = handle.retrieve(refused)
            expect(got is None, f"after a refused {what}, {refused!r} holds {got!r}")
        for key, message in BAD_KEYS:
            _expect_invalid(functools.partial(handle.retrieve, key), f"retrieve({key!r})", message)
            _expect_invalid(functools.partial(handle.delete, key), f"delete({key!r})", message)

    def odd_keys_check() -> str:
        keys = odd_storage_keys(prefix)
        for i, key in enumerate(keys.values()):
            put(key, bytes([i]) * 3)
        for i, (kind, key) in enumerate(keys.items()):
            got = handle.retrieve(key)
            expect(got == bytes([i]) * 3, f"the key with {kind} gave {got!r}")
        for truncated in (f"{prefix}/nul", f"{prefix}/lone ", f"{prefix}/lone"):
            got = handle.retrieve(truncated)
            expect(got is None, f"{truncated!r} (a truncated key, never stored) gave {got!r}")
        for kind, key in keys.items():
            expect(handle.delete(key) is True, f"delete of the key with {kind} did not say True")
            written.discard(key)
            expect(handle.retrieve(key) is None, f"the key with {kind} is there after delete")
        return f"{len(keys)} keys: " + ", ".join(keys)

    def threads_check() -> str:
        errors: list[BaseException] = []

        def key_of(worker: int, i: int) -> str:
            return f"{prefix}/t{worker}/{i}"

        def value_of(worker: int, i: int) -> bytes:
            return f"{worker}:{i}".encode()

        def work(worker: int) -> None:
            try:
                for i in range(THREAD_CALLS):
                    key = key_of(worker, i)
                    handle.store(key, value_of(worker, i))
                    got = handle.retrieve(key)
                    expect(got == value_of(worker, i), f"{key!r} gave {got!r} in its thread")
                    if i % 3 == 0:
                        deleted = handle.delete(key)
                        expect(deleted is True, f"delete({key!r}) returned {deleted!r}")
            except BaseException as exc:
                errors.append(exc)

        for worker in range(threads):
            written.update(key_of(worker, i) for i in range(THREAD_CALLS))
        pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        if errors:
            first = errors[0]
            raise CheckFailed(
                f"{len(errors)} of {threads} threads failed, the first with "
                f"{type(first).__name__}: {first}"
            )
        for worker in range(threads):
            for i in range(THREAD_CALLS):
                want = None if i % 3 == 0 else value_of(worker, i)
                got = handle.retrieve(key_of(worker, i))
                expect(got == want, f"{key_of(worker, i)!r} is {got!r}, not {want!r}")
        return f"{threads} threads x {THREAD_CALLS} keys"

    report.run("round trip", round_trip)
    report.run("overwrite", overwrite)
    report.run("missing key is None", missing)
    report.run("delete returns True then False", delete)
    report.run("unicode and path-like keys", special_keys)
    report.run("wrong input type raises InvalidInput", invalid_input)
    if odd_keys:
        report.run("NUL, surrogate, path and 10,000-character keys", odd_keys_check)
    if threads:
        report.run("concurrent calls from many threads", threads_check)
    for key in sorted(written):
        with contextlib.suppress(Exception):  # best effort: the checks reported failures
            handle.delete(key)
    return report


# ---------------------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------------------


def check_auth(
    handle: AuthHandle,
    valid_credentials: Mapping[str, str] | None = None,
    invalid_credentials: Mapping[str, str] | None = None,
    *,
    resource: str = "collections/Article",
    action: str = "read",
) -> ConformanceReport:
    """Run the auth checks.

    With ``valid_credentials`` an :class:`~weaviate_ext.Identity` comes back (naming this
    plugin); with ``invalid_credentials`` (its kind, but wrong)
    :class:`~weaviate_ext.AuthenticationError` is raised; credentials of an unknown kind
    and empty credentials give ``None``; ``authorize`` returns ``True``, ``False`` or
    ``None``.
    """
    report = new_report(handle, AuthHandle)
    found: list[Identity] = []

    def valid() -> str:
        if valid_credentials is None:
            raise Skip("no valid_credentials given")
        identity = handle.authenticate(valid_credentials)
        expect(isinstance(identity, Identity), f"valid credentials gave {identity!r}")
        assert isinstance(identity, Identity)
        expect(identity.subject != "", "the identity has an empty subject")
        expect(identity.plugin == handle.name, f"identity.plugin is {identity.plugin!r}")
        found.append(identity)
        return f"subject {identity.subject!r}, roles {list(identity.roles)}"

    def invalid() -> None:
        if invalid_credentials is None:
            raise Skip("no invalid_credentials given")
        expect_raises(
            AuthenticationError,
            lambda: handle.authenticate(invalid_credentials),
            "authenticate(invalid_credentials)",
        )

    def unknown_kind() -> None:
        out = handle.authenticate({"x-conformance-unknown-kind": uuid.uuid4().hex})
        expect(out is None, f"credentials of an unknown kind gave {out!r}, not None")

    def empty() -> None:
        out = handle.authenticate({})
        expect(out is None, f"empty credentials gave {out!r}, not None")

    def authorize() -> None:
        identities = [*found, Identity("conformance-nobody", roles=("conformance-role",))]
        for identity in identities:
            for res, act in ((resource, action), ("*", "*"), ("unknown/resource", "delete")):
                out = handle.authorize(identity, res, act)
                expect(
                    out is None or isinstance(out, bool),
                    f"authorize({identity.subject!r}, {res!r}, {act!r}) gave {out!r}",
                )

    report.run("valid credentials give an identity", valid)
    report.run("invalid credentials raise AuthenticationError", invalid)
    report.run("unknown credentials kind gives None", unknown_kind)
    report.run("empty credentials give None", empty)
    report.run("authorize returns bool or None", authorize)
    return report
