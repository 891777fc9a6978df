"""``weaviate-ext dev``: a real dev process, driven through its prompt while its plugin's
source is edited. An edit shows up as new behaviour without a restart; a syntax
error keeps the last good version serving."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from scaffold_helpers import Scaffolds, invoke

from weaviate_ext.scaffold.create import module_name

# (file, text, replacement) making the scaffolded transformer upper-case its output
UPPER = {
    ("python", "python"): (
        "src/{module}.py",
        'return out.decode("utf-8")',
        'return out.decode("utf-8").upper()',
    ),
    ("wasm", "c"): (
        "src/{module}.c",
        "out->data[out->len++] = lowercase ? lower(text[i]) : text[i];",
        "out->data[out->len++] = (text[i] >= 'a' && text[i] <= 'z') ? "
        "(uint8_t)(text[i] - 32) : text[i];",
    ),
    ("native", "c"): (
        "src/{module}.c",
        "out->data[out->len++] = lowercase ? lower(text[i]) : text[i];",
        "out->data[out->len++] = (text[i] >= 'a' && text[i] <= 'z') ? "
        "(uint8_t)(text[i] - 32) : text[i];",
    ),
    ("wasm", "rust"): ("src/lib.rs", "Ok(out) // or:", "Ok(out.to_ascii_uppercase()) // or:"),
    ("grpc", "node"): (
        "src/plugin.js",
        "return lowercase ? asciiLower(out) : out;",
        "return out.toUpperCase();",
    ),
}

BROKEN = {
    "python": "\ndef broken(:\n",
    "c": "\nthis is not C;\n",
    "rust": "\nfn broken( {\n",
    "node": "\nfunction broken( {\n",
}


class DevProcess:
    """``weaviate-ext dev DIR`` in a subprocess: lines of its output, lines to its prompt."""

    def __init__(self, directory: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "weaviate_ext", "dev", str(directory), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> int:
        """The index of the first line from ``start`` on matching ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.lines)):
                if regex.search(self.lines[i]):
                    return i
            left = deadline - time.monotonic()
            if left <= 0 or (self.process.poll() is not None and self._new.empty()):
                pytest.fail(f"no line matching {pattern!r} in {timeout}s; output:\n{self.output}")
            with contextlib.suppress(queue.Empty):
                self._new.get(timeout=min(left, 0.5))

    def send(self, line: str) -> int:
        """Type ``line`` at the prompt; the output index from which its answer comes."""
        start = len(self.lines)
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return start

    def call_until(self, args: str, pattern: str, timeout: float) -> None:
        """Call the plugin again and again until an answer matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            start = self.send(f"call {args}")
            try:
                self.wait_for(pattern, 2.0, start)
                return
            except pytest.fail.Exception:
                continue
        pytest.fail(f"no answer matching {pattern!r} in {timeout}s; output:\n{self.output}")

    def quit(self, timeout: float = 60) -> int:
        """Ask it to stop (``quit``); its exit code."""
        self.send("quit")
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        """Make sure it is gone."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _scaffold(root: Path, runtime: str, lang: str, kind: str = "transformer") -> Path:
    name = f"dev-{runtime}-{lang}"
    result = invoke(
        "new", name, "--type", kind, "--runtime", runtime, "--lang", lang, "--dir", str(root)
    )
    assert result.exit_code == 0, result.output
    return root / name


@pytest.mark.parametrize(("runtime", "lang"), list(UPPER), ids=[f"{r}-{lang}" for r, lang in UPPER])
def test_an_edit_is_served_without_a_restart_and_a_broken_build_keeps_the_old_version(
    tmp_path: Path, scaffolds: Scaffolds, build_env: dict[str, str], runtime: str, lang: str
) -> None:
    directory = _scaffold(tmp_path, runtime, lang)
    if lang == "node":
        scaffolds.link_node_modules(directory)
    file, old, new = UPPER[(runtime, lang)]
    source = directory / file.format(module=module_name(directory.name))
    dev = DevProcess(directory, env=build_env)
    try:
        dev.wait_for(r"^watching ", timeout=300)
        assert re.search(r"conformance: \d+ passed, 0 failed", dev.output), dev.output
        start = dev.send('call "  Hello   World "')
        dev.wait_for(r"^Hello World$", 30, start)

        text = source.read_text()
        assert old in text
        source.write_text(text.replace(old, new))
        dev.call_until('"  Hello   World "', r"^HELLO WORLD$", timeout=180)
        reloaded = dev.wait_for(r"reloaded dev-", 30)
        dev.wait_for(r"conformance: \d+ passed, 0 failed", 60, reloaded)

        mark = len(dev.lines)
        source.write_text(source.read_text() + BROKEN[lang])
        dev.wait_for(r"build FAILED", 180, mark)
        kept = dev.wait_for(r"keeping the last good version loaded", 30, mark)
        start = dev.send('call "  Hello   World "')
        dev.wait_for(r"^HELLO WORLD$", 30, start)  # the old version still serves
        assert kept < len(dev.lines)

        if runtime == "python":  # SIGTERM ends a session as cleanly as quit
            dev.process.send_signal(signal.SIGTERM)
            assert dev.process.wait(timeout=60) == 0, dev.output
        else:
            assert dev.quit() == 0, dev.output
        dev.wait_for(r"^stopped \(\d+ builds, [1-9]\d* reloads\)", 10)
    finally:
        dev.close()
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".wvx-dev")]
    assert leftovers == []


def test_a_failed_load_keeps_the_old_version_serving(tmp_path: Path) -> None:
    """Without build.sh (--no-build) a syntax error reaches the manager: the reload fails
    before the swap and the loaded version keeps answering."""
    directory = _scaffold(tmp_path, "python", "python")
    source = directory / "src" / "dev_python_python.py"
    dev = DevProcess(directory, "--no-build", "--no-test")
    try:
        dev.wait_for(r"^watching ", timeout=120)
        assert "building" not in dev.output
        mark = len(dev.lines)
        source.write_text(source.read_text() + BROKEN["python"])
        dev.wait_for(r"load FAILED; the last good version keeps serving", 60, mark)
        dev.wait_for(r"SyntaxError|invalid syntax|cannot import", 10, mark)
        start = dev.send('call "  Hello   World "')
        dev.wait_for(r"^Hello World$", 30, start)
        start = dev.send("help")
        dev.wait_for(r"^call TEXT$", 10, start)
        start = dev.send("call one two")  # a transformer takes one text: a usage error
        dev.wait_for(r"^error: got 2 argument\(s\)", 10, start)
        assert dev.quit() == 0, dev.output
    finally:
        dev.close()


def test_dev_of_a_missing_plugin_is_a_one_line_error(tmp_path: Path) -> None:
    result = invoke("dev", str(tmp_path / "nothing"))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ") and "no such file or directory" in result.stderr
