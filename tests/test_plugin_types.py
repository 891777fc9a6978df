"""One description per plugin type: every per-type table derives from plugin_types.TYPES.

The built-in records are checked against the contracts they name (hookspecs, the C
header, the .proto, the shipped manifest schema), and a throwaway seventh type added
to ``plugin_types.TYPES`` alone -- the one place a type is described -- is accepted by
the manifest, the hook checks, the handle table and the other derived tables, and can
be loaded and called end to end.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_factory import write_plugin

from weaviate_ext import PluginManager, hookspecs, plugin_types
from weaviate_ext.bridges.cabi import abi
from weaviate_ext.bridges.cabi.plugins import PLUGIN_CLASSES as CABI_CLASSES
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import ManifestError, PluginLoadError
from weaviate_ext.grpc import weaviate_plugin_pb2 as pb
from weaviate_ext.grpc.client import HOOK_FUNCTIONS
from weaviate_ext.grpc.protocol import RPCS, SERVICES
from weaviate_ext.handles import HANDLE_TYPES, PluginHandle
from weaviate_ext.handles.base import require_str
from weaviate_ext.hookspecs import REQUIRED_HOOKS, TYPE_HOOKS, hookspec
from weaviate_ext.manifest import PLUGIN_TYPES, manifest_schema, parse_manifest
from weaviate_ext.plugin_types import TYPES, PluginType
from weaviate_ext.sdk.plugins import PLUGIN_CLASSES as SDK_CLASSES
from weaviate_ext.testing.conformance import CHECKS, ConformanceReport, check_plugin

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = ("vectorizer", "transformer", "reranker", "generator", "storage", "auth")

# ---------------------------------------------------------------------------------------
# the built-in types
# ---------------------------------------------------------------------------------------


def test_the_six_types_in_documented_order() -> None:
    assert tuple(TYPES) == BUILTIN
    assert PLUGIN_TYPES == BUILTIN
    assert tuple(PLUGIN_TYPES) == plugin_types.names() == BUILTIN
    assert "storage" in PLUGIN_TYPES and "vectoriser" not in PLUGIN_TYPES
    assert PLUGIN_TYPES[0] == "vectorizer" and PLUGIN_TYPES[-2:] == ("storage", "auth")


@pytest.mark.parametrize("kind", list(TYPES.values()), ids=list(TYPES))
def test_each_table_derives_from_the_record(kind: PluginType) -> None:
    name = kind.name
    assert TYPE_HOOKS[name] == kind.hooks
    assert REQUIRED_HOOKS[name] == kind.required
    assert set().union(*kind.required) <= set(kind.hooks)
    assert HANDLE_TYPES[name] is kind.handle_class
    assert kind.handle_class.plugin_type == name
    assert CABI_CLASSES[name].plugin_type == name
    assert abi.REQUIRED_EXPORTS[name] == kind.c_required
    assert set(kind.c_required) <= set(kind.c_exports)
    assert {e: abi.HOOK_EXPORTS[e] for e in kind.c_exports} == dict(kind.c_exports)
    assert SERVICES[name] == kind.grpc_service
    assert tuple(kind.grpc_rpcs) == kind.hooks
    assert all(RPCS[hook] == rpc for hook, rpc in kind.grpc_rpcs.items())
    sdk = next(c for c in SDK_CLASSES if c.plugin_type == name)
    assert sdk is plugin_types.resolve(kind.sdk_base)
    assert (sdk.service, sdk.rpcs) == (kind.grpc_service, tuple(kind.grpc_rpcs.values()))
    assert CHECKS[name].__name__ == f"check_{name}"


def test_the_records_match_the_contracts() -> None:
    """Hookspecs, the C header, the .proto and the shipped schemas say the same."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    specs = {n for n, f in vars(hookspecs).items() if inspect.isfunction(f) and hasattr(f, marker)}
    header = (ROOT / "hookspecs" / "weaviate_plugin.h").read_text(encoding="utf-8")
    services = pb.DESCRIPTOR.services_by_name
    for kind in TYPES.values():
        assert set(kind.hooks) <= specs, kind.name
        assert set(kind.hooks) <= set(HOOK_FUNCTIONS), kind.name
        for export in kind.c_exports:
            assert f"{export}(" in header, export
        methods = set(services[kind.grpc_service].methods_by_name)
        assert set(kind.grpc_rpcs.values()) == methods, kind.name
    assert [c.plugin_type for c in SDK_CLASSES] == list(TYPES)
    for shipped in (
        ROOT / "hookspecs" / "plugin-manifest.schema.json",
        ROOT / "weaviate_ext" / "manifest" / "manifest.schema.json",
    ):
        schema = json.loads(shipped.read_text(encoding="utf-8"))
        assert tuple(schema["$defs"]["spec"]["properties"]["type"]["enum"]) == BUILTIN


def test_unknown_type_is_a_clear_key_error() -> None:
    with pytest.raises(KeyError, match="unknown plugin type 'vectoriser': one of vectorizer"):
        plugin_types.get("vectoriser")
    assert plugin_types.of_hook("rerank") is TYPES["reranker"]
    assert plugin_types.of_hook("nope") is None


# ---------------------------------------------------------------------------------------
# a throwaway seventh type: one record, nothing else
# ---------------------------------------------------------------------------------------


class ClassifierHandle(PluginHandle):
    """The typed handle of the throwaway type (its code, which the record points at)."""

    plugin_type = "classifier"
    __slots__ = ()

    def classify(self, text: str, *, timeout: float | None = None) -> str:
        require_str(text, "text")

        def body(live: Any, deadline: Deadline) -> str:
            return str(live.hooks["classify"](text, deadline))

        return self._run("classify", timeout, body)


class ClassifierSpecs:
    """The throwaway type's hookspec (a real type declares it in hookspecs.py)."""

    @hookspec
    def classify(self, text: str, deadline: Deadline) -> str:
        """One label for ``text``."""
        raise NotImplementedError


PROBED: list[PluginHandle] = []


def check_classifier(handle: ClassifierHandle) -> ConformanceReport:
    report = ConformanceReport(handle.name, "classifier")
    report.run("labels", lambda: handle.classify("x"))
    return report


def _probe(handle: ClassifierHandle, text: str) -> object:
    PROBED.append(handle)
    return handle.classify(text)


CLASSIFIER = PluginType(
    name="classifier",
    hooks=("classify",),
    required=(("classify",),),
    handle=ClassifierHandle,
    probe=_probe,
    c_exports={"wv_classify": "bo"},
    c_required=("wv_classify",),
    cabi_class=object,  # no C-ABI, gRPC or SDK code for the throwaway: not exercised
    grpc_service="Classifier",
    grpc_rpcs={"classify": "Classify"},
    sdk_base=object,
    conformance=check_classifier,
)

CLASSIFIER_PLUGIN = """
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def classify(self, text):
            return "long" if len(text) > 5 else "short"
"""


@pytest.fixture
def classifier(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginType]:
    """The seventh type, added to ``plugin_types.TYPES`` and nowhere else."""
    monkeypatch.setitem(plugin_types.TYPES, "classifier", CLASSIFIER)
    PROBED.clear()
    yield CLASSIFIER


def manifest_text(kind: str, name: str = "tiny-classifier") -> str:
    return (
        "apiVersion: weaviate.io/v1\nkind: Plugin\n"
        f"metadata:\n  name: {name}\n  version: 1.0.0\n"
        f"spec:\n  type: {kind}\n  runtime: python\n  entrypoint: plugin:Plugin\n"
    )


def test_the_manifest_accepts_the_new_type(classifier: PluginType) -> None:
    manifest = parse_manifest(manifest_text("classifier"))
    assert manifest.spec.type == "classifier"
    assert PLUGIN_TYPES[-1] == "classifier" and "classifier" in PLUGIN_TYPES
    assert manifest_schema()["$defs"]["spec"]["properties"]["type"]["enum"][-1] == "classifier"
    with pytest.raises(ManifestError, match="classifier"):  # listed among the expected
        parse_manifest(manifest_text("classifyer"))


def test_the_manifest_refuses_it_once_removed() -> None:
    assert "classifier" not in PLUGIN_TYPES
    with pytest.raises(ManifestError, match="spec.type"):
        parse_manifest(manifest_text("classifier"))


def test_every_derived_table_sees_the_new_type(classifier: PluginType) -> None:
    assert TYPE_HOOKS["classifier"] == ("classify",)
    assert REQUIRED_HOOKS["classifier"] == (("classify",),)
    assert HANDLE_TYPES["classifier"] is ClassifierHandle
    assert list(HANDLE_TYPES)[-1] == "classifier" and len(HANDLE_TYPES) == 7
    assert CHECKS["classifier"] is check_classifier
    assert SERVICES["classifier"] == "Classifier"
    assert RPCS["classify"] == "Classify"
    assert abi.HOOK_EXPORTS["wv_classify"] == "bo"
    assert abi.expected_exports("classifier")[-1] == "wv_classify"
    assert plugin_types.of_hook("classify") is classifier


def test_the_new_type_loads_probes_and_answers(classifier: PluginType, tmp_path: Path) -> None:
    write_plugin(tmp_path, "tiny-classifier", "classifier", CLASSIFIER_PLUGIN)
    with PluginManager(discover=False) as manager:
        manager.registry.add_hookspecs(ClassifierSpecs)
        handle = manager.load(tmp_path / "tiny-classifier" / "plugin.yaml")
        assert isinstance(handle, ClassifierHandle)
        assert [type(h) for h in PROBED] == [ClassifierHandle]  # the record's probe ran
        assert handle.classify("hi") == "short"
        assert handle.classify("a longer text") == "long"
        got = manager.get("tiny-classifier")
        assert isinstance(got, ClassifierHandle)
        check_plugin(got).raise_for_failures()


def test_the_hook_checks_hold_for_the_new_type(classifier: PluginType, tmp_path: Path) -> None:
    wrong = "from weaviate_ext import hookimpl\n\nclass Plugin:\n    @hookimpl\n"
    write_plugin(tmp_path, "no-hooks", "classifier", "class Plugin:\n    pass\n")
    write_plugin(
        tmp_path, "foreign", "classifier", wrong + "    def rerank(self, query, documents):\n"
    )
    write_plugin(tmp_path, "misplaced", "vectorizer", wrong + "    def classify(self, text):\n")
    for name in ("foreign", "misplaced"):
        path = tmp_path / name / "src" / "plugin.py"
        path.write_text(path.read_text() + "        return []\n")
    with PluginManager(discover=False) as manager:
        manager.registry.add_hookspecs(ClassifierSpecs)
        with pytest.raises(PluginLoadError, match="a classifier plugin must implement classify"):
            manager.load(tmp_path / "no-hooks" / "plugin.yaml")
        with pytest.raises(PluginLoadError, match="'rerank', a reranker hook, but .* 'classifier'"):
            manager.load(tmp_path / "foreign" / "plugin.yaml")
        with pytest.raises(PluginLoadError, match="'classify', a classifier hook"):
            manager.load(tmp_path / "misplaced" / "plugin.yaml")
