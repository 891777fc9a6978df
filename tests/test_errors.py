"""The error hierarchy: fields on every error, messages formatted from them in one place.

Every framework error carries ``plugin``, ``hook`` and ``reason`` (``None`` where they do
not apply); its message is built from those fields plus one troubleshooting reference,
and code that needs part of a message reads the fields, never ``str(exc)``.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import grpc
import pytest
from plugin_factory import write_plugin

from weaviate_ext import PluginManager, errors
from weaviate_ext.bridges.cabi import abi
from weaviate_ext.bridges.cabi.plugins import CAbiPlugin, TransformerPlugin
from weaviate_ext.errors import (
    ArtifactIntegrityError,
    AuthenticationError,
    ConfigError,
    DeadlineExceeded,
    DependencyError,
    DimensionMismatch,
    InvalidInput,
    ManifestError,
    PermissionNotGranted,
    PluginBusy,
    PluginCallError,
    PluginCrashed,
    PluginDisabled,
    PluginLoadError,
    PluginNotFound,
    PluginNotLoaded,
    PluginOutputError,
    PluginTypeError,
    PluginUnavailable,
    RegistryError,
    RegistryUnreachable,
    ResourceLimitExceeded,
    RuntimeNotAllowed,
    RuntimeNotAvailable,
    SignatureError,
    WeaviateExtError,
)
from weaviate_ext.grpc.client import Connection
from weaviate_ext.serve.errors import from_framework

REF = "(see docs/troubleshooting.md#"

LOAD_ERRORS = [
    PluginLoadError,
    RuntimeNotAvailable,
    RuntimeNotAllowed,
    PluginDisabled,
    DependencyError,
    PermissionNotGranted,
]
CALL_ERRORS = [
    PluginCallError,
    DeadlineExceeded,
    PluginOutputError,
    DimensionMismatch,
    ResourceLimitExceeded,
    PluginCrashed,
    PluginUnavailable,
    PluginBusy,
]

# (error, plugin, hook, reason, message without its reference)
EXAMPLES: list[tuple[WeaviateExtError, str | None, str | None, str, str]] = [
    *[(cls("p", "it broke"), "p", None, "it broke", "plugin 'p': it broke") for cls in LOAD_ERRORS],
    *[
        (cls("p", "rerank", "late"), "p", "rerank", "late", "plugin 'p' rerank: late")
        for cls in CALL_ERRORS
    ],
    (
        InvalidInput("key must not be empty"),
        None,
        None,
        "key must not be empty",
        "key must not be empty",
    ),
    (
        InvalidInput("bad input", plugin="p", hook="transform"),
        "p",
        "transform",
        "bad input",
        "plugin 'p' transform: bad input",
    ),
    (AuthenticationError("invalid token"), None, None, "invalid token", "invalid token"),
    (
        AuthenticationError("invalid token", plugin="a", hook="authenticate"),
        "a",
        "authenticate",
        "invalid token",
        "plugin 'a': invalid token",  # a verdict: the hook is a field, not in the text
    ),
    (
        PluginNotFound("x", ["b", "a"]),
        "x",
        None,
        "no plugin named 'x' (loaded: a, b)",
        "no plugin named 'x' (loaded: a, b)",
    ),
    (
        PluginNotFound("x", []),
        "x",
        None,
        "no plugin named 'x' (loaded: none)",
        "no plugin named 'x' (loaded: none)",
    ),
    (
        PluginTypeError("x", "vectorizer", "reranker"),
        "x",
        None,
        "is a vectorizer, not a reranker",
        "plugin 'x' is a vectorizer, not a reranker",
    ),
    (
        PluginNotLoaded("x"),
        "x",
        None,
        "is not loaded (it was unloaded or the manager closed)",
        "plugin 'x' is not loaded (it was unloaded or the manager closed)",
    ),
    (
        ConfigError("config key 'k' is not set", plugin="p"),
        "p",
        None,
        "config key 'k' is not set",
        "plugin 'p': config key 'k' is not set",
    ),
    (ConfigError("host.yaml:3: p: bad"), None, None, "host.yaml:3: p: bad", "host.yaml:3: p: bad"),
    *[
        (cls("oci://h/r:1: refused"), None, None, "oci://h/r:1: refused", "oci://h/r:1: refused")
        for cls in (RegistryError, RegistryUnreachable, ArtifactIntegrityError, SignatureError)
    ],
    (
        ManifestError.single("plugin.yaml", 3, "spec.type", "bad"),
        None,
        None,
        "plugin.yaml:3: spec.type: bad",
        "plugin.yaml:3: spec.type: bad",
    ),
    (WeaviateExtError("something"), None, None, "something", "something"),
]
IDS = [f"{type(e[0]).__name__}-{i}" for i, e in enumerate(EXAMPLES)]


def all_error_classes() -> set[type[WeaviateExtError]]:
    found: set[type[WeaviateExtError]] = set()
    todo: list[type[WeaviateExtError]] = [WeaviateExtError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == "weaviate_ext.errors" and cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    return found


def test_every_class_of_the_module_has_an_example() -> None:
    assert {type(e[0]) for e in EXAMPLES} == all_error_classes()


@pytest.mark.parametrize(("error", "plugin", "hook", "reason", "text"), EXAMPLES, ids=IDS)
def test_fields(
    error: WeaviateExtError, plugin: str | None, hook: str | None, reason: str, text: str
) -> None:
    assert (error.plugin, error.hook, error.reason) == (plugin, hook, reason)
    assert error.args == (text,)  # as before: the message without its reference


@pytest.mark.parametrize(("error", "plugin", "hook", "reason", "text"), EXAMPLES, ids=IDS)
def test_message_is_built_from_the_fields_with_one_reference(
    error: WeaviateExtError, plugin: str | None, hook: str | None, reason: str, text: str
) -> None:
    if error.reference_in_message:
        assert str(error) == f"{text} {REF}{type(error).__name__.lower()})"
    else:
        assert str(error) == text
    assert str(error).count("(see ") <= 1
    assert error.describe(reference=False) == text


@pytest.mark.parametrize(("error", "plugin", "hook", "reason", "text"), EXAMPLES, ids=IDS)
def test_message_follows_changed_fields(
    error: WeaviateExtError, plugin: str | None, hook: str | None, reason: str, text: str
) -> None:
    changed = copy.copy(error)
    changed.reason = "other reason"
    assert changed.describe(reference=False) == text.replace(reason, "other reason")


@pytest.mark.parametrize(("error", "plugin", "hook", "reason", "text"), EXAMPLES, ids=IDS)
def test_errors_survive_pickling_with_their_fields(
    error: WeaviateExtError, plugin: str | None, hook: str | None, reason: str, text: str
) -> None:
    copied = pickle.loads(pickle.dumps(error))
    assert type(copied) is type(error)
    assert (copied.plugin, copied.hook, copied.reason) == (plugin, hook, reason)
    assert str(copied) == str(error) and copied.args == error.args


def test_public_constructors_keep_their_positional_signatures() -> None:
    load = PluginLoadError("p", "why")
    assert load.name == load.plugin == "p" and load.reason == "why"
    assert PluginLoadError(name="p", reason="why").name == "p"
    call = PluginCallError("p", "h", "msg")
    assert (call.plugin, call.hook, call.reason) == ("p", "h", "msg")
    assert PluginCallError(plugin="p", hook="h", message="msg").reason == "msg"
    busy = PluginBusy("p", "h", "full", 2.5)
    assert busy.retry_after == 2.5 and PluginBusy("p", "h", "full").retry_after == 1.0
    assert InvalidInput("x").plugin is None and AuthenticationError("x").hook is None
    for cls in (PluginNotFound, PluginTypeError, PluginNotLoaded):
        assert hasattr(cls, "name"), f"{cls.__name__}.name is the older name of plugin"
    assert PluginNotFound("x", ["a"]).available == ("a",)
    kind = PluginTypeError("x", "vectorizer", "reranker")
    assert (kind.name, kind.actual, kind.wanted) == ("x", "vectorizer", "reranker")
    assert ManifestError.single("f", 1, "a", "b").problems[0].message == "b"


def test_errors_are_still_the_builtin_types_they_were() -> None:
    assert isinstance(InvalidInput("x"), ValueError)
    assert isinstance(PluginNotFound("x", []), LookupError)
    assert isinstance(PluginTypeError("x", "a", "b"), TypeError)
    assert isinstance(DeadlineExceeded("p", "h", "late"), TimeoutError)


def test_wrapping_an_error_keeps_one_reference_the_outer_one() -> None:
    inner = DeadlineExceeded("q", "rerank", "late")
    wrapped = PluginCallError("p", "rerank", str(inner))
    assert wrapped.reason == "plugin 'q' rerank: late"  # the inner reference is dropped
    assert str(wrapped) == f"plugin 'p' rerank: plugin 'q' rerank: late {REF}plugincallerror)"
    twice = PluginLoadError("p", f"failed to start: {wrapped}")
    assert str(twice).count("(see ") == 1 and str(twice).endswith(f"{REF}pluginloaderror)")
    bare = ConfigError(f"plugin 'p': {inner}")
    assert "(see " not in str(bare)


def test_describe_leaves_out_a_plugin_the_reader_knows() -> None:
    call = PluginOutputError("p", "rerank", "bad")
    assert call.describe(known="p", reference=False) == "rerank: bad"
    assert call.describe(known="other", reference=False) == "plugin 'p' rerank: bad"
    assert call.describe(known="p") == f"rerank: bad {REF}pluginoutputerror)"
    load = PluginLoadError("p", "why")
    assert load.describe(known="p", reference=False) == "why"
    assert PluginNotLoaded("p").describe(known="p", reference=False).startswith("is not loaded")
    assert PluginNotFound("p", []).describe(known="p", reference=False).startswith("no plugin")
    assert AuthenticationError("no", plugin="p", hook="authenticate").describe(known="p") == "no"
    assert InvalidInput("x").describe(known="p") == f"x {REF}invalidinput)"


def test_the_troubleshooting_section_is_the_class_name() -> None:
    for cls in all_error_classes():
        assert (
            errors.troubleshooting_section(cls) == f"docs/troubleshooting.md#{cls.__name__.lower()}"
        )


# -- secrets ----------------------------------------------------------------------------

SECRET = "s3cret-value-123"


def scrub(text: str) -> str:
    return text.replace(SECRET, "**********")


@pytest.mark.parametrize(("error", "plugin", "hook", "reason", "text"), EXAMPLES, ids=IDS)
def test_redacted_keeps_the_class_and_fields_and_scrubs_the_reason(
    error: WeaviateExtError, plugin: str | None, hook: str | None, reason: str, text: str
) -> None:
    assert error.redacted(scrub) is error  # nothing to scrub: the same object
    leaky = copy.copy(error)
    leaky.reason = f"token {SECRET} refused"
    clean = leaky.redacted(scrub)
    assert clean is not leaky and type(clean) is type(error)
    assert (clean.plugin, clean.hook) == (plugin, hook)
    assert clean.reason == "token ********** refused"
    for text_ in (str(clean), repr(clean), *map(str, clean.args)):
        assert SECRET not in text_
    assert clean.__cause__ is None and clean.__context__ is None


def test_busy_keeps_its_retry_hint_when_redacted() -> None:
    busy = PluginBusy("p", "h", f"waited for {SECRET}", 3.0).redacted(scrub)
    assert isinstance(busy, PluginBusy) and busy.retry_after == 3.0


LEAKY_CALLS = """
    from weaviate_ext import AuthenticationError, InvalidInput, hookimpl

    class Plugin:
        @hookimpl
        def plugin_setup(self, config):
            self.token = config["token"].reveal()

        @hookimpl
        def transform(self, data):
            if data == "auth":
                raise AuthenticationError(f"token {self.token} is revoked")
            if data == "input":
                raise InvalidInput(f"cannot use {self.token}", plugin="leaky", hook="transform")
            if data == "crash":
                raise RuntimeError(f"connect with {self.token} failed")
            return data
"""


def test_plugin_errors_keep_their_class_and_lose_the_secret(tmp_path: Any) -> None:
    path = write_plugin(
        tmp_path,
        "leaky",
        "transformer",
        LEAKY_CALLS,
        config={"token": {"type": "string", "secret": True}},
    )
    with PluginManager(discover=False) as manager:
        handle = manager.load(path, config={"token": SECRET})
        for data, cls in [
            ("auth", AuthenticationError),
            ("input", InvalidInput),
            ("crash", PluginCallError),
        ]:
            with pytest.raises(cls) as info:
                handle.transform(data)
            error = info.value
            assert type(error) is cls
            assert "**********" in error.reason
            for text in (str(error), repr(error), error.reason, *map(str, error.args)):
                assert SECRET not in text, text
            assert error.__cause__ is None
        with pytest.raises(InvalidInput) as info:
            handle.transform("input")
        assert (info.value.plugin, info.value.hook) == ("leaky", "transform")


# -- no str(exc) parsing: the sites that wrap errors ------------------------------------

BAD_PROBE = """
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def transform_batch(self, items):
            return []
"""


def test_a_version_failing_its_probe_names_the_plugin_once(tmp_path: Any) -> None:
    path = write_plugin(tmp_path, "bad", "transformer", BAD_PROBE)
    with PluginManager(discover=False) as manager:
        with pytest.raises(PluginLoadError) as info:
            manager.load(path)
        row = next(r for r in manager.plugins() if r.name == "bad")
    error = info.value
    assert error.plugin == "bad"
    assert error.reason.startswith("failed to start: transform_batch: returned 0 results")
    assert str(error).count("'bad'") == 1 and str(error).count("(see ") == 1
    assert row.reason is not None and row.reason.startswith("failed to start: transform_batch")
    assert row.reason.count("(see ") == 1


def test_a_bridge_load_error_is_not_prefixed_twice(tmp_path: Any) -> None:
    path = write_plugin(tmp_path, "nomod", "transformer", "", entrypoint="missing_module:Plugin")
    with PluginManager(discover=False) as manager, pytest.raises(PluginLoadError) as info:
        manager.load(path)
    assert str(info.value).count("plugin 'nomod'") == 1
    assert str(info.value).count("(see ") == 1
    assert not info.value.reason.startswith("plugin ")


def test_config_errors_carry_the_plugin(tmp_path: Any) -> None:
    path = write_plugin(
        tmp_path,
        "vec",
        "transformer",
        BAD_PROBE,
        config={"k": {"type": "integer", "required": True}},
    )
    with PluginManager(discover=False) as manager, pytest.raises(ConfigError) as info:
        manager.load(path)
    assert info.value.plugin == "vec"
    assert str(info.value) == f"plugin 'vec': {info.value.reason}"
    assert "(see " not in str(info.value)


class _Backend:
    name = "cplug"
    isolation = "test"
    exports: frozenset[str] = frozenset()
    dims = None
    uses_deadline = True


class _Session:
    def __init__(self, message: str) -> None:
        self.message = message

    def last_error(self) -> str:
        return self.message


@pytest.mark.parametrize(
    ("status", "cls", "text"),
    [
        (abi.WV_ERR_INVALID, InvalidInput, "plugin 'cplug' transform: nope"),
        (abi.WV_ERR_DENIED, AuthenticationError, "plugin 'cplug': nope"),
        (abi.WV_ERR_NOMEM, ResourceLimitExceeded, "plugin 'cplug' transform: out of memory: nope"),
        (-1, PluginCallError, "plugin 'cplug' transform: nope"),
    ],
)
def test_c_abi_statuses_become_errors_with_fields(status: int, cls: type, text: str) -> None:
    plugin = CAbiPlugin(_Backend())  # type: ignore[arg-type]
    with pytest.raises(cls) as info:
        plugin._fail(_Session("nope"), "transform", status)  # type: ignore[arg-type]
    error = info.value
    assert type(error) is cls
    assert (error.plugin, error.hook) == ("cplug", "transform")
    assert error.describe(reference=False) == text


def test_a_c_abi_transformer_refuses_non_text_with_fields() -> None:
    plugin = TransformerPlugin(_Backend())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as info:
        plugin.transform(42, None)  # type: ignore[arg-type]
    assert (info.value.plugin, info.value.hook) == ("cplug", "transform")
    assert info.value.reason == "data must be str (the plugin transforms text), got int"
    with pytest.raises(InvalidInput) as info:
        plugin.transform_batch(["ok", b"x"], None)  # type: ignore[arg-type]
    assert (info.value.plugin, info.value.hook) == ("cplug", "transform_batch")
    assert info.value.reason == "items[1] must be str (the plugin transforms text), got bytes"


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_a_grpc_unauthenticated_status_is_an_authentication_error_with_fields() -> None:
    connection = Connection()
    connection.name = "remote"
    connection._secrets = (SECRET,)
    exc = _RpcError(grpc.StatusCode.UNAUTHENTICATED, f"key {SECRET} revoked")
    error = connection.error("authenticate", exc, None, None)
    assert isinstance(error, AuthenticationError)
    assert (error.plugin, error.hook, error.reason) == (
        "remote",
        "authenticate",
        "key ********** revoked",
    )
    assert str(error) == "plugin 'remote': key ********** revoked"
    other = connection.error("rerank", _RpcError(grpc.StatusCode.INTERNAL, "boom"), None, None)
    assert (other.plugin, other.hook, other.reason) == ("remote", "rerank", "INTERNAL: boom")


def test_serve_takes_the_plugin_from_the_field() -> None:
    assert from_framework(InvalidInput("bad", plugin="p", hook="transform")).plugin == "p"
    assert from_framework(InvalidInput("bad")).plugin is None
    assert from_framework(PluginCallError("p", "h", "x")).plugin == "p"
    assert from_framework(PluginNotLoaded("p")).plugin == "p"
    assert from_framework(PluginNotFound("p", [])).plugin is None  # 404: nothing to blame
    answer = from_framework(PluginBusy("p", "h", "full", 2.2))
    assert (answer.status, answer.headers["Retry-After"]) == (503, "3")


MISSING_KEY_IN_SETUP = """
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def plugin_setup(self, config):
            config.get_string("nope")

        @hookimpl
        def transform(self, data):
            return data
"""


def test_a_setup_error_of_the_same_plugin_is_not_cut_at_the_wrong_place(tmp_path: Any) -> None:
    # the old prefix surgery left "failed to start: : config key ..." here
    path = write_plugin(tmp_path, "cfg", "transformer", MISSING_KEY_IN_SETUP)
    with PluginManager(discover=False) as manager, pytest.raises(PluginLoadError) as info:
        manager.load(path)
    assert info.value.reason == "failed to start: config key 'nope' is not set"
