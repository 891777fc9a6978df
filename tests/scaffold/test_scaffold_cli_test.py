"""``weaviate-ext test``: the conformance report of a built plugin, with an exit status
for CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scaffold_helpers import invoke, run_cli

from weaviate_ext.scaffold.build import run_build
from weaviate_ext.scaffold.create import DEV_API_KEY, create_plugin


def _python_plugin(root: Path, name: str, kind: str) -> Path:
    scaffold = create_plugin(name, kind, "python", parent=root)
    assert run_build(scaffold.directory).ok
    return scaffold.directory


@pytest.fixture
def reranker(tmp_path: Path) -> Path:
    return _python_plugin(tmp_path, "good-reranker", "reranker")


def test_a_conforming_plugin_passes_with_exit_0(reranker: Path) -> None:
    done = run_cli("--no-discover", "test", str(reranker))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"reranker 'good-reranker' (python, {reranker / 'plugin.yaml'}): ok, 8 of 8 checks passed"
    )
    assert lines[1:] and all(line.startswith("  PASS ") for line in lines[1:])


def test_a_plugin_that_breaks_its_contract_fails_with_exit_1(tmp_path: Path) -> None:
    directory = _python_plugin(tmp_path, "bad-transformer", "transformer")
    source = directory / "src" / "bad_transformer.py"
    text = source.read_text()
    source.write_text(
        text.replace('return out.decode("utf-8")', 'return out.decode("utf-8") + str(id(out))')
    )
    result = invoke("--no-discover", "test", str(directory))
    assert result.exit_code == 1
    assert "): FAILED, " in result.stdout
    assert "  FAIL batch equals singles: " in result.stdout


def test_json_reports_and_several_plugins(reranker: Path, tmp_path: Path) -> None:
    storage = _python_plugin(tmp_path, "good-storage", "storage")
    missing = tmp_path / "missing"
    result = invoke("--no-discover", "test", str(reranker), str(storage), str(missing), "--json")
    assert result.exit_code == 1  # one of three could not be tested
    reports = json.loads(result.stdout)
    assert [r["ok"] for r in reports] == [True, True, False]
    assert reports[0]["plugin"] == "good-reranker" and reports[0]["type"] == "reranker"
    assert {c["name"] for c in reports[1]["checks"]} >= {"round trip", "overwrite"}
    assert "no such file or directory" in reports[2]["error"]
    text = invoke("--no-discover", "test", str(reranker), str(storage))
    assert text.exit_code == 0
    assert text.stdout.splitlines()[-1] == "2 of 2 plugins passed"


def test_auth_credentials_are_checked_when_given(tmp_path: Path) -> None:
    auth = _python_plugin(tmp_path, "key-auth", "auth")
    bare = invoke("--no-discover", "test", str(auth))
    assert bare.exit_code == 0
    assert "  SKIP valid credentials give an identity: no valid_credentials given" in bare.stdout
    full = invoke(
        "--no-discover",
        "test",
        str(auth),
        "--credentials",
        f"api_key={DEV_API_KEY}",
        "--invalid-credentials",
        "api_key=wrong",
    )
    assert full.exit_code == 0, full.stdout
    assert "SKIP" not in full.stdout
    assert "PASS valid credentials give an identity: subject 'developer'" in full.stdout
    wrong = invoke("--no-discover", "test", str(auth), "--credentials", "api_key=nope")
    assert wrong.exit_code == 1
    assert "FAIL valid credentials give an identity" in wrong.stdout


def test_config_comes_from_the_global_options(tmp_path: Path) -> None:
    generator = _python_plugin(tmp_path, "cfg-generator", "generator")
    ok = invoke("--no-discover", "--config", "cfg-generator.maxTokens=3", "test", str(generator))
    assert ok.exit_code == 0, ok.output
    bad = invoke(
        "--no-discover", "--config", "cfg-generator.maxTokens=many", "test", str(generator)
    )
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: plugin 'cfg-generator': config key 'maxTokens'")


def test_build_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # build.sh writes bytecode as a default Python does: an edit within the second of
    # the last build must still be compiled (and fail)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    scaffold = create_plugin("fresh", "vectorizer", "python", parent=tmp_path)
    result = invoke("--no-discover", "test", "--build", str(scaffold.directory))
    assert result.exit_code == 0, result.output
    source = scaffold.directory / "src" / "fresh.py"
    source.write_text(source.read_text() + "\ndef broken(:\n")
    broken = invoke("--no-discover", "test", "--build", str(scaffold.directory))
    assert broken.exit_code == 1
    assert "SyntaxError" in broken.stderr or "invalid syntax" in broken.stderr
    assert (
        broken.stderr.splitlines()[-1].startswith("error: ") and "build.sh failed" in broken.stderr
    )


def test_an_unbuilt_binary_is_a_one_line_error(tmp_path: Path) -> None:
    scaffold = create_plugin("unbuilt", "reranker", "wasm", parent=tmp_path)
    result = invoke("--no-discover", "test", str(scaffold.directory))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "plugin.wasm' does not exist" in result.stderr
