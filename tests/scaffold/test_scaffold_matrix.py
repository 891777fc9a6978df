"""Every scaffold (each type, in each runtime and language) builds, loads, passes the
conformance suite and behaves the same as the others; its generated tests pass.

This is the test that keeps the templates and the SDKs honest: the C and Rust
scaffolds are compiled against the SDKs of this checkout, the Node.js ones against
its .proto, the Python ones against the framework and its gRPC SDK.
"""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scaffold_helpers import Built, Combo, Scaffolds, combo_id, combo_name

from weaviate_ext import AuthenticationError, PluginManager
from weaviate_ext.manifest import load_manifest
from weaviate_ext.scaffold.create import COMBINATIONS, DEV_API_KEY, DIMENSIONS
from weaviate_ext.testing import check_plugin

# -- a reference of the vectorizers' embedding (every scaffold computes exactly this) --


def reference_embedding(text: str, lowercase: bool = True) -> np.ndarray:
    """Words at ASCII whitespace, FNV-1a 32 into DIMENSIONS buckets, unit length."""
    data = text.encode("utf-8")
    if lowercase:
        data = data.lower()
    counts = [0.0] * DIMENSIONS
    for word in data.split():
        value = 0x811C9DC5
        for byte in word:
            value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
        counts[value % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(c * c for c in counts))
    return np.array([c / norm if norm else 0.0 for c in counts], dtype=np.float32)


EMBED_TEXTS = [
    "Hello world",
    "hello   WORLD\tagain\n",
    "Ünïcödé wörds, 向量 search 🚀 and naïve café",
    "a a a b",
    "",
    " \t ",
    "word " * 500,
]


def check_behaviour(handle: Any, kind: str, name: str) -> None:
    """What every runtime's scaffold of ``kind`` does with its default config."""
    if kind == "vectorizer":
        got = handle.vectorize_batch(EMBED_TEXTS)
        want = np.stack([reference_embedding(t) for t in EMBED_TEXTS])
        assert got.dtype == np.float32 and got.shape == (len(EMBED_TEXTS), DIMENSIONS)
        assert np.array_equal(got, want), np.abs(got - want).max()
        single = handle.vectorize_text("Hello world")
        assert np.array_equal(single, want[0])
    elif kind == "transformer":
        assert handle.transform("  Hello \t World \n") == "Hello World"
        batch = handle.transform_batch(["a  b", " c ", "", "  Ünï  cödé 向量 "])
        assert batch == ["a b", "c", "", "Ünï cödé 向量"]
    elif kind == "reranker":
        ranked = handle.rerank("Red fox red", ["a dog", "the red fox", "RED"])
        assert [(r.index, r.score) for r in ranked] == [(1, 2.0), (2, 1.0), (0, 0.0)]
        assert [r.document for r in ranked] == ["the red fox", "RED", "a dog"]
    elif kind == "generator":
        assert handle.generate("one  two three four", max_tokens=2) == "one two"
        chunks = list(handle.generate_stream("one two\nthree"))
        assert chunks == ["one", " two", " three"]
        assert handle.generate("") == ""
    elif kind == "storage":
        handle.store("greeting/../ключ", b"\x00hello")
        assert handle.retrieve("greeting/../ключ") == b"\x00hello"
        assert handle.retrieve("greeting") is None
        assert handle.delete("greeting/../ключ") is True
        assert handle.delete("greeting/../ключ") is False
    elif kind == "auth":
        identity = handle.authenticate({"api_key": DEV_API_KEY})
        assert (identity.subject, identity.roles, identity.plugin) == (
            "developer",
            ("reader",),
            name,
        )
        assert handle.authorize(identity, "collections/Article", "read") is True
        assert handle.authorize(identity, "collections/Article", "delete") is None
        assert handle.authenticate({"token": "x"}) is None
        with pytest.raises(AuthenticationError, match="invalid API key"):
            handle.authenticate({"api_key": DEV_API_KEY + "x"})
    else:  # pragma: no cover - a new plugin type needs its behaviour here
        pytest.fail(f"no behaviour check for {kind}")


@pytest.mark.parametrize("combo", COMBINATIONS, ids=[combo_id(c) for c in COMBINATIONS])
def test_scaffold_builds_loads_conforms_and_behaves(scaffolds: Scaffolds, combo: Combo) -> None:
    kind, runtime, lang = combo
    built = scaffolds.get(combo)
    built.assert_built()
    if lang in ("c", "rust"):  # -Wall -Wextra, and rustc's own lints: a clean build
        assert "warning" not in built.build.output.lower(), built.build.output
    manifest = load_manifest(built.manifest)
    assert (manifest.name, manifest.spec.type, manifest.spec.runtime) == (
        combo_name(combo),
        kind,
        runtime,
    )
    with PluginManager(discover=False) as manager:
        handle = manager.load(built.manifest)
        options = {}
        if kind == "auth":
            options = {
                "valid_credentials": {"api_key": DEV_API_KEY},
                "invalid_credentials": {"api_key": "wrong"},
            }
        report = check_plugin(handle, **options)
        assert report.ok, str(report)
        skipped = [r.name for r in report.results if r.skipped]
        assert skipped == [], f"checks skipped: {skipped}"  # every check applies
        check_behaviour(handle, kind, manifest.name)


def _junit_outcomes(path: Path) -> dict[str, dict[str, str]]:
    """``{test file stem: {test name: outcome}}`` from pytest's JUnit XML."""
    outcomes: dict[str, dict[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
        module = case.get("classname", "").rpartition(".")[2] or case.get("classname", "")
        outcomes.setdefault(module, {})[case.get("name", "")] = outcome
    return outcomes


@pytest.mark.timeout(900)
def test_the_generated_tests_pass_for_every_scaffold(scaffolds: Scaffolds, tmp_path: Path) -> None:
    """``pytest tests`` of each scaffold (the framework's pytest plugin, its conformance
    test and behaviour test with a non-default config), all in one pytest run."""
    built = scaffolds.all()
    for scaffold in built:
        scaffold.assert_built()
    report = tmp_path / "junit.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-o",
            "timeout=120",  # a stuck test fails with its stack, not the whole run silently
            f"--junitxml={report}",
            *(str(s.directory / "tests") for s in built),
        ],
        cwd=scaffolds.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    outcomes = _junit_outcomes(report)
    for scaffold in built:
        module = f"test_{scaffold.name.replace('-', '_')}"
        assert outcomes.get(module) == {
            "test_conformance": "passed",
            "test_behaviour": "passed",
        }, (scaffold.name, outcomes.get(module))


@pytest.mark.timeout(900)  # alone, it builds the whole matrix
def test_generated_python_is_lint_clean(scaffolds: Scaffolds) -> None:
    """The Python a scaffold holds passes ruff (default settings) and its formatter."""
    files = []
    for scaffold in scaffolds.all():
        files += [p for p in scaffold.directory.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(files) >= len(COMBINATIONS) + 12  # every tests/ file, and the Python sources
    rules = "E,F,W,I,B,UP,SIM,RUF"
    for command in (
        ["check", "--isolated", "--no-cache", "--select", rules],
        ["format", "--isolated", "--no-cache", "--check"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *map(str, files)],
            cwd=scaffolds.root,  # so that weaviate_ext is a third-party import, as for authors
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(900)  # alone, it builds the whole matrix
def test_each_scaffold_holds_the_spec_layout(scaffolds: Scaffolds) -> None:
    """plugin.yaml, src/, build.sh (executable), README.md and tests/ in every one."""
    for scaffold in scaffolds.all():
        names = {p.name for p in scaffold.directory.iterdir()}
        assert {"plugin.yaml", "src", "build.sh", "README.md", "tests"} <= names, names
        build = scaffold.directory / "build.sh"
        assert build.stat().st_mode & 0o111
        readme = (scaffold.directory / "README.md").read_text()
        commands = ("./build.sh", "weaviate-ext test", "weaviate-ext dev", "weaviate-ext package")
        for command in commands:
            assert command in readme, (scaffold.name, command)


def built_of(scaffolds: Scaffolds, kind: str, runtime: str, lang: str) -> Built:
    """One built scaffold of the matrix."""
    built = scaffolds.get((kind, runtime, lang))
    built.assert_built()
    return built
