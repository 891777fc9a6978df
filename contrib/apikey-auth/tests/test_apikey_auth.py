"""argon2-apikey-auth through the framework: keys, roles, rehash, cache, CLI, conformance."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import argon2
import pytest
from argon2.low_level import Type
from weaviate_ext_apikey_auth import hash_key, new_key
from weaviate_ext_apikey_auth.__main__ import main as cli_main

from weaviate_ext import (
    AuthenticationError,
    AuthHandle,
    Identity,
    PluginLoadError,
    PluginManager,
)
from weaviate_ext.testing import check_plugin

NAME = "argon2-apikey-auth"
# cheap argon2 parameters for the tests; the defaults (64 MiB) are tested once
CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}

READER_KEY = "reader.rS7xkq2mA9vLpW3zQe8TnY5uB1cD0fGh"
ADMIN_KEY = "admin-1.Zp0oLk9iJu8yHt7gRf6eDc5xSw4qAa3z"
OFF_KEY = "off.Mn2bVc3xZl4kJh5gFd6sAp7oIu8yTr9e"
RULES = [
    {"role": "reader", "resource": "collections/*", "action": "read", "allow": True},
    {"role": "admin", "resource": "*", "action": "*", "allow": True},
    {"role": "admin", "resource": "system/*", "action": "delete", "allow": False},
    {"role": "*", "resource": "public/*", "action": "read", "allow": True},
]


@pytest.fixture
def manifest() -> Path:
    """The plugin.yaml shipped in the installed package."""
    return Path(str(files("weaviate_ext_apikey_auth") / "plugin.yaml"))


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    """The ``keys`` config of three keys, hashed once for the module."""
    return {
        "reader": {"hash": hash_key(READER_KEY, **CHEAP), "roles": ["reader"]},
        "admin-1": {
            "hash": hash_key(ADMIN_KEY, **CHEAP),
            "roles": ["admin", "reader"],
            "subject": "alice@example.org",
        },
        "off": {"hash": hash_key(OFF_KEY, **CHEAP), "roles": ["admin"], "disabled": True},
    }


@pytest.fixture
def auth(load_plugin: Callable[..., Any], manifest: Path, keys: dict[str, Any]) -> AuthHandle:
    """The plugin loaded with ``keys`` and ``RULES``."""
    handle: AuthHandle = load_plugin(manifest, config={"keys": keys, "rules": RULES, **CHEAP})
    return handle


def test_conformance(auth: AuthHandle) -> None:
    check_plugin(
        auth,
        valid_credentials={"api_key": READER_KEY},
        invalid_credentials={"api_key": READER_KEY[:-1] + "X"},
    ).raise_for_failures()


def test_right_key_gives_its_identity(auth: AuthHandle) -> None:
    identity = auth.authenticate({"api_key": ADMIN_KEY})
    assert identity is not None
    assert identity.subject == "alice@example.org"
    assert identity.roles == ("admin", "reader")
    assert dict(identity.claims) == {"key_id": "admin-1", "method": "api_key"}
    assert identity.plugin == NAME
    reader = auth.authenticate({"api_key": READER_KEY})
    assert reader is not None and reader.subject == "reader" and reader.roles == ("reader",)


@pytest.mark.parametrize(
    ("presented", "message"),
    [
        (READER_KEY[:-1] + ("A" if READER_KEY[-1] != "A" else "B"), "invalid API key"),
        ("reader." + "x" * 32, "invalid API key"),
        ("admin-1." + READER_KEY.split(".", 1)[1], "invalid API key"),  # secret of another id
        ("nobody." + READER_KEY.split(".", 1)[1], "invalid API key"),  # unknown id
        (READER_KEY.split(".", 1)[1], "malformed API key"),  # no id
        ("reader.", "malformed API key"),
        ("bad id!.secretsecretsecret", "malformed API key"),
        ("r." + "x" * 2000, "malformed API key"),  # too long: refused before hashing
        ("", "malformed API key"),
    ],
)
def test_wrong_keys_are_refused_without_showing_them(
    auth: AuthHandle, presented: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError, match=message) as info:
        auth.authenticate({"api_key": presented})
    if len(presented) > 8:
        secret_part = presented.rsplit(".", 1)[-1]
        assert secret_part not in str(info.value)
        assert secret_part not in caplog.text


def test_unknown_id_and_wrong_secret_look_the_same(auth: AuthHandle) -> None:
    messages = set()
    for presented in ("nobody.abcdefghijklmnopqrstu", "reader.abcdefghijklmnopqrstu"):
        with pytest.raises(AuthenticationError) as info:
            auth.authenticate({"api_key": presented})
        messages.add(str(info.value))
    assert len(messages) == 1


def test_disabled_key_is_refused(auth: AuthHandle) -> None:
    with pytest.raises(AuthenticationError, match="API key off is disabled"):
        auth.authenticate({"api_key": OFF_KEY})


def test_other_credentials_are_not_its_kind(auth: AuthHandle) -> None:
    assert auth.authenticate({}) is None
    assert auth.authenticate({"authorization": "Bearer x.y.z"}) is None
    bad: Any = {"api_key": 12345}
    with pytest.raises(AuthenticationError, match="api_key must be a string"):
        auth.authenticate(bad)


def test_credential_field_is_configurable(
    load_plugin: Callable[..., Any], manifest: Path, keys: dict[str, Any]
) -> None:
    handle = load_plugin(manifest, config={"keys": keys, "credential": "x-api-key", **CHEAP})
    assert handle.authenticate({"api_key": READER_KEY}) is None
    identity = handle.authenticate({"x-api-key": READER_KEY})
    assert identity is not None and identity.subject == "reader"


def test_roles_and_rules(plugin_manager: PluginManager, auth: AuthHandle) -> None:
    reader = plugin_manager.authenticate({"api_key": READER_KEY})
    admin = plugin_manager.authenticate({"api_key": ADMIN_KEY})
    assert reader is not None and admin is not None
    assert plugin_manager.authorize(reader, "collections/Article", "read") is True
    assert plugin_manager.authorize(reader, "collections/Article", "write") is False
    assert plugin_manager.authorize(reader, "system/nodes", "read") is False
    assert plugin_manager.authorize(admin, "system/nodes", "read") is True
    assert plugin_manager.authorize(admin, "collections/Article", "write") is True
    assert plugin_manager.authorize(admin, "system/nodes", "delete") is False  # deny wins
    stranger = Identity("stranger", roles=("guest",))
    assert plugin_manager.authorize(stranger, "public/docs", "read") is True  # role "*"
    assert auth.authorize(stranger, "collections/Article", "read") is None  # abstains
    assert auth.authorize(admin, "system/nodes", "delete") is False


@pytest.mark.parametrize(
    "old_hasher",
    [
        argon2.PasswordHasher(time_cost=2, memory_cost=16, parallelism=2, type=Type.ID),
        argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.I),
        argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, salt_len=8, hash_len=16),
    ],
    ids=["other-costs", "argon2i", "short-salt-and-hash"],
)
def test_hashes_needing_rehash_still_verify(
    load_plugin: Callable[..., Any],
    manifest: Path,
    old_hasher: argon2.PasswordHasher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = new_key("legacy")
    old_hash = old_hasher.hash(key)
    assert argon2.PasswordHasher(**CHEAP).check_needs_rehash(old_hash)
    caplog.set_level(logging.INFO, logger="weaviate_ext.apikey_auth")
    handle = load_plugin(
        manifest,
        config={"keys": {"legacy": {"hash": old_hash}}, "cache_seconds": 0, **CHEAP},
    )
    for _ in range(2):
        identity = handle.authenticate({"api_key": key})
        assert identity is not None and identity.subject == "legacy"
    assert caplog.text.count("re-hash it") == 1  # logged once per key id
    assert key.split(".")[1] not in caplog.text
    with pytest.raises(AuthenticationError):
        handle.authenticate({"api_key": key + "x"})


def test_default_parameters(load_plugin: Callable[..., Any], manifest: Path) -> None:
    key = new_key("prod")
    encoded = hash_key(key)  # argon2id, t=3, m=64 MiB, p=4
    params = argon2.extract_parameters(encoded)
    assert (params.type, params.time_cost, params.memory_cost, params.parallelism) == (
        Type.ID,
        3,
        65536,
        4,
    )
    handle = load_plugin(manifest, config={"keys": {"prod": {"hash": encoded}}})
    identity = handle.authenticate({"api_key": key})
    assert identity is not None and identity.subject == "prod"


def count_verify(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count calls of ``PasswordHasher.verify`` (the argon2 work) from now on."""
    calls = [0]
    real = argon2.PasswordHasher.verify

    def verify(hasher: argon2.PasswordHasher, encoded: str, password: str) -> bool:
        calls[0] += 1
        return real(hasher, encoded, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
    return calls


def test_cache_skips_argon2_for_a_verified_key(
    load_plugin: Callable[..., Any],
    manifest: Path,
    keys: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_verify(monkeypatch)
    handle = load_plugin(manifest, config={"keys": keys, "cache_seconds": 60, **CHEAP})
    for _ in range(3):
        assert handle.authenticate({"api_key": READER_KEY}) is not None
    assert calls[0] == 1
    for _ in range(2):  # failures are never cached
        with pytest.raises(AuthenticationError):
            handle.authenticate({"api_key": "reader.wrongwrongwrongwrong"})
    assert calls[0] == 3


def test_no_cache_verifies_every_time(
    load_plugin: Callable[..., Any],
    manifest: Path,
    keys: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_verify(monkeypatch)
    handle = load_plugin(manifest, config={"keys": keys, "cache_seconds": 0, **CHEAP})
    for _ in range(3):
        assert handle.authenticate({"api_key": READER_KEY}) is not None
    assert calls[0] == 3


def test_many_threads(auth: AuthHandle) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                identity = auth.authenticate({"api_key": ADMIN_KEY})
                assert identity is not None and identity.subject == "alice@example.org"
                with pytest.raises(AuthenticationError):
                    auth.authenticate({"api_key": "admin-1.wrongwrongwrongwrongwrong"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"keys": {"k": {"hash": "not-a-hash"}}}, r"keys\.k\.hash is not an argon2 hash"),
        ({"keys": {"k": {"hash": "$2b$12$abcdefghijklmnopqrstuv"}}}, "not an argon2 hash"),
        ({"keys": {"k": {"roles": ["r"]}}}, r"keys\.k\.hash is missing"),
        ({"keys": {"bad id": {"hash": "x"}}}, "a key id is 1-64"),
        ({"keys": {"k": "hash"}}, "must be a mapping"),
        ({"keys": {"k": {"hash": "x", "role": ["r"]}}}, r"unknown fields \['role'\]"),
        ({"keys": {"k": {"hash": "x", "roles": "admin"}}}, "roles must be a list"),
        ({"rules": [{"role": "r", "resource": "*", "action": "*"}]}, r"rules\[0\]\.allow"),
        ({"rules": [{"role": "", "resource": "*", "action": "*", "allow": True}]}, "role"),
        ({"rules": {"role": "r"}}, "'rules'"),
        ({"cache_seconds": -1}, "'cache_seconds' must be between"),
        ({"memory_cost": 4}, "memory_cost >= 8"),
        ({"credential": ""}, "'credential' must not be empty"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest: Path, config: dict, message: str
) -> None:
    if "keys" in config:
        for entry in config["keys"].values():
            if isinstance(entry, dict) and entry.get("hash") == "x":
                entry["hash"] = hash_key("k.0123456789abcdefgh", **CHEAP)
    with pytest.raises((PluginLoadError, Exception), match=message):
        plugin_manager.load(manifest, config={**CHEAP, **config})
    assert NAME not in plugin_manager.names()


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m weaviate_ext_apikey_auth ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "weaviate_ext_apikey_auth", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


CHEAP_ARGS = ("--time-cost", "1", "--memory-cost", "8", "--parallelism", "1")


def test_cli_hash_makes_a_working_key(load_plugin: Callable[..., Any], manifest: Path) -> None:
    done = run_cli("hash", "--key-id", "ci-bot", "--role", "reader", "--json", *CHEAP_ARGS)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["key_id"] == "ci-bot" and out["key"].startswith("ci-bot.")
    assert out["entry"]["ci-bot"]["roles"] == ["reader"]
    assert out["key"] not in out["entry"]["ci-bot"]["hash"]
    handle = load_plugin(manifest, config={"keys": out["entry"], "rules": RULES, **CHEAP})
    identity = handle.authenticate({"api_key": out["key"]})
    assert identity is not None and identity.subject == "ci-bot"
    assert handle.authorize(identity, "collections/X", "read") is True


def test_cli_hashes_a_key_from_stdin(load_plugin: Callable[..., Any], manifest: Path) -> None:
    key = "mine.my-own-long-enough-secret"
    done = run_cli("hash", "--stdin", "--subject", "svc", *CHEAP_ARGS, stdin=key + "\n")
    assert done.returncode == 0, done.stderr
    assert key not in done.stdout  # a key given on stdin is not printed back
    entry = json.loads(done.stdout.splitlines()[-1].strip())
    handle = load_plugin(manifest, config={"keys": entry, **CHEAP})
    identity = handle.authenticate({"api_key": key})
    assert identity is not None and identity.subject == "svc"


def test_cli_human_output_shows_the_key_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["hash", "--key-id", "h", *CHEAP_ARGS]) == 0
    out = capsys.readouterr().out
    key = out.splitlines()[1].strip()
    assert key.startswith("h.") and len(key) > 40
    assert out.count(key) == 1


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("hash", "--key-id", "bad id"), "", "a key id is 1-64"),
        (("hash", "--stdin"), "no-dot-here\n", "<key id>.<secret>"),
        (("hash", "--stdin"), "k.short\n", "16+ characters"),
        (("hash", "--stdin", "--key-id", "other"), "k.0123456789abcdefgh\n", "not 'other'"),
        (("hash", "--memory-cost", "1", "--parallelism", "1"), "", "Memory cost is too small"),
        ((), "", "required"),
    ],
)
def test_cli_errors(
    args: tuple[str, ...],
    stdin: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as info:
        cli_main(list(args))
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_installed_plugin_loads_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with PluginManager() as manager:
        assert NAME in manager.installed
        handle = manager.get_auth(NAME)  # defaults: no keys, every key is refused
        with pytest.raises(AuthenticationError, match="invalid API key"):
            handle.authenticate({"api_key": READER_KEY})
        assert manager.authenticate({"token": "other kind"}) is None
