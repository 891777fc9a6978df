"""The C examples for generators, storage and auth (examples/plugins/c-generator,
c-storage, c-auth): each built from one C source into a ``.wasm`` and a ``.so``, each
build passing the conformance suite, and their real behaviour in both runtimes."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from cabi.helpers import EXAMPLES, ROOT, run_build

from weaviate_ext import (
    AuthenticationError,
    Grant,
    Identity,
    InvalidInput,
    PluginLoadError,
    PluginManager,
    PluginOutputError,
)
from weaviate_ext.testing import check_plugin

NEW_EXAMPLES = {
    "c-generator": "extractive-generator",
    "c-storage": "kv-store",
    "c-auth": "c-apikey-auth",
}
"""Directory -> the plugin name of its plugin.yaml (plugin-native.yaml adds -native)."""

RUNTIMES = {"wasm": ("plugin.yaml", ""), "native": ("plugin-native.yaml", "-native")}

PROMPT = (
    "Summarize: Vector search finds similar items by comparing embeddings. "
    "Plugins extend the search engine with new models. "
    "Embeddings are lists of numbers that capture meaning. "
    "The weather was nice yesterday."
)
SUMMARY = (
    "Vector search finds similar items by comparing embeddings. "
    "Plugins extend the search engine with new models."
)

READER_KEY = "the-api-key"
ADMIN_KEY = "ключ-🔑-admin"
AUTH_CONFIG: dict[str, Any] = {
    "keys": {
        "ci-bot": {"sha256": hashlib.sha256(READER_KEY.encode()).hexdigest(), "roles": ["reader"]},
        'admin "é"': {
            "sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
            "roles": ["admin", "reader"],
        },
    },
    "rules": [
        {"role": "reader", "resource": "collections/*", "action": "read", "allow": True},
        {"role": "reader", "resource": "collections/Secret*", "action": "*", "allow": False},
        {"role": "admin", "resource": "*", "action": "*", "allow": True},
        {"role": "*", "resource": "public/[a-c]?", "action": "[!w]*", "allow": True},
    ],
}


@pytest.fixture(scope="session")
def examples() -> Path:
    """Build the three examples in place (their build.sh through build_examples.sh)."""
    run_build(["bash", str(ROOT / "scripts" / "build_examples.sh"), *NEW_EXAMPLES])
    return EXAMPLES


def manifest_path(examples: Path, directory: str, runtime: str) -> Path:
    return examples / directory / RUNTIMES[runtime][0]


def plugin_name(directory: str, runtime: str) -> str:
    return NEW_EXAMPLES[directory] + RUNTIMES[runtime][1]


# -- both builds, conformance ----------------------------------------------------------


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
@pytest.mark.parametrize("directory", sorted(NEW_EXAMPLES))
def test_c_example_passes_conformance(
    directory: str, runtime: str, examples: Path, manager: PluginManager
) -> None:
    base = examples / directory
    assert (base / "plugin.wasm").is_file() and (base / "plugin.so").is_file()
    config = AUTH_CONFIG if directory == "c-auth" else None
    handle = manager.load(manifest_path(examples, directory, runtime), config=config)
    assert handle.name == plugin_name(directory, runtime)
    assert manager.manifest(handle.name).spec.runtime == runtime
    options: dict[str, Any] = {}
    if directory == "c-auth":
        options = {
            "valid_credentials": {"api_key": READER_KEY},
            "invalid_credentials": {"api_key": "not-the-key"},
        }
    check_plugin(handle, **options).raise_for_failures()


def test_one_source_per_example(examples: Path) -> None:
    for directory in NEW_EXAMPLES:
        sources = list((examples / directory / "src").glob("*.c"))
        assert len(sources) == 1, sources
        wasm = yaml.safe_load((examples / directory / "plugin.yaml").read_text())
        native = yaml.safe_load((examples / directory / "plugin-native.yaml").read_text())
        assert wasm["spec"]["binary"] == "./plugin.wasm"
        assert native["spec"]["binary"] == "./plugin.so"
        assert native["metadata"]["name"] == wasm["metadata"]["name"] + "-native"


# -- generator ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_generator_streams_word_by_word(
    runtime: str, examples: Path, manager: PluginManager
) -> None:
    handle = manager.get_generator(
        manager.load(manifest_path(examples, "c-generator", runtime)).name
    )
    assert handle.generate(PROMPT) == SUMMARY
    chunks = list(handle.generate_stream(PROMPT))
    assert "".join(chunks) == SUMMARY
    assert chunks[:3] == ["Vector", " search", " finds"]
    assert len(chunks) == len(SUMMARY.split(" "))
    assert handle.generate(PROMPT, max_tokens=3) == "Vector search finds"
    assert list(handle.generate_stream(PROMPT, max_tokens=3)) == ["Vector", " search", " finds"]
    assert handle.generate(PROMPT, max_tokens=0) == ""
    assert list(handle.generate_stream(PROMPT, max_tokens=0)) == []
    with pytest.raises(InvalidInput, match="max_tokens must be an integer >= 0"):
        handle.generate(PROMPT, max_tokens=-1)
    with pytest.raises(InvalidInput, match="max_tokens"):
        list(handle.generate_stream(PROMPT, max_tokens="many"))


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_generator_stream_equals_generate_on_varied_text(
    runtime: str, examples: Path, manager: PluginManager
) -> None:
    handle = manager.get_generator(
        manager.load(manifest_path(examples, "c-generator", runtime)).name
    )
    prompts = [
        "",
        "One sentence only",
        "TL;DR:   Émile   a été là.\n\nÉmile est   là! Où?  Ici.",
        "Summary of stuff: apples. apples and pears. pears? kiwis, apples, pears.",
        " ".join(
            f"Sentence {i} mentions topic {i % 3} and topic {i % 3} again." for i in range(300)
        ),
    ]
    for prompt in prompts:
        whole = handle.generate(prompt)
        chunks = list(handle.generate_stream(prompt))
        assert "".join(chunks) == whole
        assert all(chunk and " " not in chunk[1:] for chunk in chunks)
    assert handle.generate("TL;DR:   Émile   a été là.\n\nÉmile est   là! Où?  Ici.") != ""


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_generator_sentences_config(runtime: str, examples: Path, manager: PluginManager) -> None:
    name = manager.load(
        manifest_path(examples, "c-generator", runtime), config={"sentences": 1}
    ).name
    assert manager.get_generator(name).generate(PROMPT) == SUMMARY.split(". ")[0] + "."
    with (
        PluginManager(discover=False) as other,
        pytest.raises(PluginLoadError, match="sentences must be an integer >= 1"),
    ):
        other.load(manifest_path(examples, "c-generator", runtime), config={"sentences": 0})


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_generator_stream_closed_early_stops_the_plugin(
    runtime: str, examples: Path, manager: PluginManager
) -> None:
    handle = manager.get_generator(
        manager.load(
            manifest_path(examples, "c-generator", runtime), config={"sentences": 500}
        ).name
    )
    prompt = " ".join(f"Sentence number {i} is here." for i in range(2000))
    stream = handle.generate_stream(prompt)
    assert next(stream) == "Sentence"
    stream.close()
    assert handle.stats.in_flight == 0
    assert handle.generate("A. B. C.") == "A. B. C."


# -- storage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_storage_round_trips_bytes(runtime: str, examples: Path, manager: PluginManager) -> None:
    handle = manager.get_storage(manager.load(manifest_path(examples, "c-storage", runtime)).name)
    values = {
        "empty": b"",
        "nul": b"\x00",
        "all-bytes": bytes(range(256)) * 3,
        "mib": os.urandom(1024 * 1024),
        "ключ/🔑": "значение".encode(),
    }
    for key, value in values.items():
        handle.store(key, value)
    for key, value in values.items():
        assert handle.retrieve(key) == value
    # many keys: the table grows and nothing collides
    for i in range(3000):
        handle.store(f"k{i}", i.to_bytes(4, "little") * (i % 7))
    for i in range(3000):
        assert handle.retrieve(f"k{i}") == i.to_bytes(4, "little") * (i % 7)
    handle.store("mib", b"short now")
    assert handle.retrieve("mib") == b"short now"
    assert handle.delete("k7") is True
    assert handle.delete("k7") is False
    assert handle.retrieve("k7") is None
    assert handle.retrieve("k8") == (8).to_bytes(4, "little")


def persistent_wasm_manifest(examples: Path, tmp_path: Path) -> Path:
    """The wasm build with a granted read-write directory and logFile inside it."""
    (tmp_path / "data").mkdir(exist_ok=True)
    shutil.copyfile(examples / "c-storage" / "plugin.wasm", tmp_path / "plugin.wasm")
    manifest = yaml.safe_load((examples / "c-storage" / "plugin.yaml").read_text())
    manifest["metadata"]["name"] = "kv-store-persistent"
    manifest["spec"]["permissions"] = {
        "directories": [{"host": "./data", "guest": "/data", "mode": "rw"}]
    }
    manifest["spec"]["config"]["logFile"]["default"] = "/data/kv.log"
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_storage_persists_through_its_log(runtime: str, examples: Path, tmp_path: Path) -> None:
    if runtime == "wasm":
        manifest = persistent_wasm_manifest(examples, tmp_path)
        config: dict[str, Any] | None = None
        log = tmp_path / "data" / "kv.log"
    else:
        manifest = manifest_path(examples, "c-storage", runtime)
        log = tmp_path / "kv.log"
        config = {"logFile": str(log)}
    big = os.urandom(1024 * 1024)
    # the wasm manifest asks for ./data read-write: granted by the host, not by itself
    grants = {"kv-store-persistent": Grant(directories=[f"{tmp_path / 'data'}:rw"])}
    with PluginManager(discover=False, grants=grants) as manager:
        handle = manager.get_storage(manager.load(manifest, config=config).name)
        handle.store("a", b"first")
        handle.store("a", b"second")
        handle.store("gone", b"x")
        handle.store("big", big)
        handle.store("bin", bytes(range(256)))
        assert handle.delete("gone") is True
    written = log.stat().st_size
    assert written > len(big)
    # a torn record at the end (a crash mid-write) is dropped at the next start
    with log.open("ab") as f:
        f.write(b"S\x05\x00\x00\x00\xff")
    with PluginManager(discover=False, grants=grants) as manager:
        handle = manager.get_storage(manager.load(manifest, config=config).name)
        assert handle.retrieve("a") == b"second"
        assert handle.retrieve("gone") is None
        assert handle.retrieve("big") == big
        assert handle.retrieve("bin") == bytes(range(256))
        # compacted at start-up: overwritten and deleted records and the torn tail are gone
        assert log.stat().st_size < written
        handle.store("after", b"restart")
    with PluginManager(discover=False, grants=grants) as manager:
        handle = manager.get_storage(manager.load(manifest, config=config).name)
        assert handle.retrieve("after") == b"restart"
        assert handle.retrieve("big") == big


def test_storage_wasm_cannot_persist_without_a_grant(
    examples: Path, manager: PluginManager
) -> None:
    with pytest.raises(PluginLoadError, match="cannot open"):
        manager.load(
            manifest_path(examples, "c-storage", "wasm"), config={"logFile": "/data/kv.log"}
        )


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_auth_keys_and_rules(runtime: str, examples: Path, manager: PluginManager) -> None:
    handle = manager.get_auth(
        manager.load(manifest_path(examples, "c-auth", runtime), config=AUTH_CONFIG).name
    )
    bot = handle.authenticate({"api_key": READER_KEY})
    assert bot is not None
    assert (bot.subject, bot.roles) == ("ci-bot", ("reader",))
    assert dict(bot.claims) == {"key_id": "ci-bot", "method": "api_key"}
    admin = handle.authenticate({"api_key": ADMIN_KEY, "other": "ignored"})
    assert admin is not None
    assert (admin.subject, admin.roles) == ('admin "é"', ("admin", "reader"))
    for wrong in ("not-the-key", "", READER_KEY + " ", READER_KEY.upper()):
        with pytest.raises(AuthenticationError, match="invalid API key"):
            handle.authenticate({"api_key": wrong})
    assert handle.authenticate({"token": READER_KEY}) is None
    assert handle.authenticate({}) is None
    # authorize: a matching deny wins over any allow, no matching rule abstains
    assert handle.authorize(bot, "collections/Article", "read") is True
    assert handle.authorize(bot, "collections/SecretPlans", "read") is False
    assert handle.authorize(admin, "collections/SecretPlans", "read") is False
    assert handle.authorize(admin, "collections/SecretPlans", "write") is False
    assert handle.authorize(admin, "anything", "delete") is True
    assert handle.authorize(bot, "collections/Article", "write") is None
    nobody = Identity("nobody")
    assert handle.authorize(nobody, "public/ab", "read") is True
    assert handle.authorize(nobody, "public/ab", "write") is None
    assert handle.authorize(nobody, "public/db", "read") is None
    assert handle.authorize(nobody, "public/abc", "read") is None


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_auth_through_the_manager(runtime: str, examples: Path, manager: PluginManager) -> None:
    manager.load(manifest_path(examples, "c-auth", runtime), config=AUTH_CONFIG)
    who = manager.authenticate({"api_key": READER_KEY})
    assert who is not None and who.subject == "ci-bot"
    assert who.plugin == plugin_name("c-auth", runtime)
    assert manager.authorize(who, "collections/Article", "read") is True
    assert manager.authorize(who, "collections/SecretPlans", "read") is False
    with pytest.raises(AuthenticationError):
        manager.authenticate({"api_key": "wrong"})


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_auth_pepper_makes_digests_hmac(runtime: str, examples: Path) -> None:
    digest = hmac.new(b"pepper!", b"key-1", "sha256").hexdigest()
    config = {"keys": {"k1": {"sha256": digest.upper(), "roles": []}}, "pepper": "pepper!"}
    with PluginManager(discover=False) as manager:
        name = manager.load(manifest_path(examples, "c-auth", runtime), config=config).name
        handle = manager.get_auth(name)
        who = handle.authenticate({"api_key": "key-1"})
        assert who is not None and who.subject == "k1" and who.roles == ()
        with pytest.raises(AuthenticationError):
            handle.authenticate({"api_key": "key-2"})
    plain = {"keys": {"k1": {"sha256": hashlib.sha256(b"key-1").hexdigest()}}}
    with PluginManager(discover=False) as manager:
        handle = manager.get_auth(
            manager.load(manifest_path(examples, "c-auth", runtime), config=plain).name
        )
        assert handle.authenticate({"api_key": "key-1"}) is not None


def test_auth_sha256_matches_hashlib_for_every_length(examples: Path) -> None:
    """Lengths around the 55/56/64-byte padding boundaries and a long key."""
    lengths = [*range(0, 130), 1000, 100_000]
    keys = {f"k{n}": ("x" * n) for n in lengths}
    config = {
        "keys": {k: {"sha256": hashlib.sha256(v.encode()).hexdigest()} for k, v in keys.items()}
    }
    with PluginManager(discover=False) as manager:
        handle = manager.get_auth(
            manager.load(manifest_path(examples, "c-auth", "wasm"), config=config).name
        )
        for key_id, key in keys.items():
            who = handle.authenticate({"api_key": key})
            assert who is not None and who.subject == key_id


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"keys": {"k": {"sha256": "abc"}}}, "keys.k.sha256 must be 64 hex digits"),
        ({"keys": {"k": {"roles": []}}}, "keys.k.sha256 is missing"),
        ({"keys": {"k": {"sha256": "a" * 64, "roles": [1]}}}, "roles must be a list of strings"),
        ({"keys": {"k": {"sha256": "a" * 64, "extra": 1}}}, "unknown field"),
        ({"rules": [{"role": "r", "resource": "*", "action": "*"}]}, "rules\\[0\\] needs"),
        ({"rules": [{"role": "r", "resource": "*", "action": "*", "allow": 1}]}, "allow must be"),
    ],
)
def test_auth_malformed_config_refuses_the_load(
    config: dict[str, Any], message: str, examples: Path, manager: PluginManager
) -> None:
    with pytest.raises(PluginLoadError, match=message):
        manager.load(manifest_path(examples, "c-auth", "wasm"), config=config)


# -- the bridge's auth contract, with a deliberately odd plugin ------------------------------

ODD_AUTH = r"""
#include <string.h>
#include "weaviate_plugin_sdk.h"

WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    (void)config; (void)len;
    return WV_OK;
}

/* The subject is credentials.user as the SDK's simple reader sees it (no \u decoding). */
WV_EXPORT int32_t wv_authenticate(const uint8_t *creds, uint32_t len, const uint8_t **out_ptr,
                                  uint32_t *out_len) {
    char user[256];
    int32_t n = wv_json_get_string(creds, len, "user", user, sizeof user);
    if (n < 0) return WV_NOT_FOUND;
    if (strcmp(user, "abstain") == 0) return WV_ABSTAIN; /* not an authenticate status */
    wv_buf *out = wv_output_begin();
    wv_buf_append(out, "{\"subject\":", 11);
    wv_json_append_string(out, user, (uint32_t)n);
    wv_buf_append(out, "}", 1);
    return wv_output_finish(out_ptr, out_len);
}

/* 5 is neither allow (1), deny (0) nor abstain (2). */
WV_EXPORT int32_t wv_authorize(const uint8_t *identity, uint32_t identity_len,
                               const uint8_t *resource, uint32_t resource_len,
                               const uint8_t *action, uint32_t action_len) {
    (void)identity; (void)identity_len; (void)action; (void)action_len;
    return resource_len == 3 && memcmp(resource, "odd", 3) == 0 ? 5 : 1;
}
"""


@pytest.fixture(scope="module")
def odd_auth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("odd-auth")
    (out / "odd_auth.c").write_text(ODD_AUTH)
    run_build(
        [
            "sh",
            str(ROOT / "sdk" / "c" / "build-plugin.sh"),
            str(out / "plugin"),
            str(out / "odd_auth.c"),
        ]
    )
    for runtime, binary in (("wasm", "plugin.wasm"), ("native", "plugin.so")):
        manifest = {
            "apiVersion": "weaviate.io/v1",
            "kind": "Plugin",
            "metadata": {"name": f"odd-auth-{runtime}", "version": "1.0.0"},
            "spec": {"type": "auth", "runtime": runtime, "binary": f"./{binary}"},
        }
        (out / f"{runtime}.yaml").write_text(yaml.safe_dump(manifest))
    return out


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_bridge_passes_json_as_utf8_and_checks_statuses(
    runtime: str, odd_auth: Path, manager: PluginManager
) -> None:
    handle = manager.get_auth(manager.load(odd_auth / f"{runtime}.yaml").name)
    # credentials cross as UTF-8 JSON (like wv_init's config), not \u escapes
    who = handle.authenticate({"user": "Jürgen 🔑"})
    assert who is not None and who.subject == "Jürgen 🔑"
    with pytest.raises(InvalidInput, match="credentials is not valid Unicode"):
        handle.authenticate({"user": "\ud800"})
    with pytest.raises(PluginOutputError, match="authenticate: returned status 2"):
        handle.authenticate({"user": "abstain"})
    assert handle.authorize(who, "fine", "read") is True
    with pytest.raises(PluginOutputError, match="returned status 5; expected one of 0, 1, 2"):
        handle.authorize(who, "odd", "read")


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_auth_without_keys_stays_out_of_the_way(
    runtime: str, examples: Path, manager: PluginManager
) -> None:
    """Unconfigured, it recognises no key: another auth plugin decides."""
    handle = manager.get_auth(manager.load(manifest_path(examples, "c-auth", runtime)).name)
    assert handle.authenticate({"api_key": READER_KEY}) is None
    assert handle.authorize(Identity("x", roles=("reader",)), "collections/A", "read") is None
    check_plugin(handle).raise_for_failures()
