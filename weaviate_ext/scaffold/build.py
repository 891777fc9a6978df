"""Running a plugin's ``build.sh``, finding its manifest, editing a manifest's text.

Shared by ``weaviate-ext dev``, ``test`` and ``package``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from weaviate_ext import progress
from weaviate_ext.manifest import Manifest
from weaviate_ext.scaffold.create import ScaffoldError

BUILD_SCRIPT = "build.sh"
"""The script every plugin directory has (the product spec's layout)."""

MANIFEST_NAME = "plugin.yaml"
"""The manifest a plugin directory stands for."""

BUILD_TIMEOUT = 900.0
"""Seconds a build may take (a first Rust or npm build is the slow case)."""


@attrs.frozen
class BuildResult:
    """What running ``build.sh`` gave: success, its output (stdout and stderr), seconds."""

    ok: bool
    output: str
    seconds: float
    returncode: int | None = None

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the output (where a compiler's errors end)."""
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def find_manifest(path: str | os.PathLike[str]) -> Path:
    """The manifest ``path`` stands for: the file itself, or a directory's plugin.yaml."""
    given = Path(path)
    if given.is_dir():
        manifest = given / MANIFEST_NAME
        if not manifest.is_file():
            raise ScaffoldError(f"{given}: no {MANIFEST_NAME} in this directory")
        return manifest
    if not given.exists():
        raise ScaffoldError(f"{given}: no such file or directory")
    return given


def run_build(
    directory: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = BUILD_TIMEOUT,
    on_output: Callable[[str], None] | None = None,
) -> BuildResult:
    """Run ``directory/build.sh`` (with ``PYTHON`` set to this interpreter).

    ``on_output`` is called with each line of the build's output as it comes (``-v``);
    the result has all of it. A directory without ``build.sh`` has nothing to build: a
    successful result.
    """
    script = Path(directory) / BUILD_SCRIPT
    if not script.is_file():
        return BuildResult(True, f"no {BUILD_SCRIPT}: nothing to build", 0.0)
    command = [str(script.resolve())] if os.access(script, os.X_OK) else ["sh", str(script)]
    environ = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command,
            cwd=script.parent,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        return BuildResult(False, f"cannot run {script}: {exc}", time.monotonic() - started)
    lines: list[str] = []
    reader = threading.Thread(
        target=_read_lines, args=(process, lines, on_output), name="build-output", daemon=True
    )
    reader.start()
    try:
        returncode: int | None = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        returncode = None
    finally:
        if process.poll() is None:  # interrupted (Ctrl-C): the build does not outlive us
            process.kill()
            process.wait()
    reader.join(timeout=5.0)  # a grandchild may still hold the pipe open
    output = "".join(lines)
    if returncode is None:
        output += f"\n{BUILD_SCRIPT} did not finish within {timeout:g}s"
        return BuildResult(False, output, time.monotonic() - started)
    return BuildResult(returncode == 0, output, time.monotonic() - started, returncode)


def _read_lines(
    process: subprocess.Popen[bytes], lines: list[str], on_output: Callable[[str], None] | None
) -> None:
    assert process.stdout is not None
    with process.stdout:
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            if on_output is not None:
                on_output(line.rstrip("\r\n"))


def build_with_progress(
    directory: str | os.PathLike[str],
    name: str,
    *,
    stream: bool = False,
    env: Mapping[str, str] | None = None,
) -> BuildResult:
    """:func:`run_build` as a progress step (``building NAME``, ``built NAME in 3.1 s``);
    with ``stream`` the build's output is shown as it comes."""
    with progress.step(f"building {name}", f"built {name}") as step:
        result = run_build(directory, env=env, on_output=step.output if stream else None)
        if not result.ok:
            step.fail()
    return result


# ---------------------------------------------------------------------------------------
# editing one spec field of a manifest's text (comments and layout stay as they are)
# ---------------------------------------------------------------------------------------


def set_spec_field(manifest: Manifest, text: str, field: str, value: str, after: str) -> str:
    """``text`` (the manifest's YAML) with ``spec.<field>: value``.

    An existing ``field:`` line is replaced; otherwise a line is added after the line of
    ``spec.<after>``, with its indentation. Only block style (``key: value`` on its own
    line) can be edited; anything else is a :class:`ScaffoldError`.
    """
    lines = text.splitlines(keepends=True)
    existing = manifest.line_of(f"spec.{field}")
    if getattr(manifest.spec, field, None) is not None and existing:
        index, anchor = existing - 1, field
    else:
        line = manifest.line_of(f"spec.{after}")
        if not line:
            raise ScaffoldError(f"{manifest.path}: cannot find spec.{after} to add spec.{field}")
        index, anchor = line - 1, after
    text_line = lines[index] if index < len(lines) else ""
    match = re.match(rf"^(\s*){re.escape(anchor)}:\s*\S", text_line)
    if match is None:
        raise ScaffoldError(
            f"{manifest.path}:{index + 1}: cannot edit spec.{anchor} there; write it as "
            f"'{anchor}: ...' on a line of its own"
        )
    new = f"{match.group(1)}{field}: {value}\n"
    if anchor == field:
        lines[index] = new
    else:
        if not lines[index].endswith("\n"):
            lines[index] += "\n"
        lines.insert(index + 1, new)
    return "".join(lines)
