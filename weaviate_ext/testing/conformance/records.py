"""Conformance checks for storage and auth plugins."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from typing import Any

from weaviate_ext.errors import AuthenticationError, InvalidInput
from weaviate_ext.handles import (
    AuthHandle,
    StorageHandle,
)
from weaviate_ext.testing.conformance.report import (
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


def check_storage(handle: StorageHandle) -> ConformanceReport:
    """Run the storage checks.

    Arbitrary bytes round-trip (``b""``, every byte value, 1 MiB); a store overwrites;
    a missing key is ``None``; ``delete`` says ``True`` then ``False``; Unicode keys and
    keys with ``/`` and ``..`` work and do not collide. Every key it writes is unique to
    this run and deleted afterwards.
    """
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
        bad: Any = "not bytes"
        expect_raises(InvalidInput, lambda: handle.store("", b"x"), 'store("", ...)')
        expect_raises(InvalidInput, lambda: handle.store(f"{prefix}-x", bad), "store(key, str)")

    report.run("round trip", round_trip)
    report.run("overwrite", overwrite)
    report.run("missing key is None", missing)
    report.run("delete returns True then False", delete)
    report.run("unicode and path-like keys", special_keys)
    report.run("wrong input type raises InvalidInput", invalid_input)
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
