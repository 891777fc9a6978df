"""Reading a ``plugin.yaml`` into a :class:`Manifest`, or a :class:`ManifestError`.

Three steps, each reporting every problem it finds as ``file:line: field: message``:

1. :func:`weaviate_ext.manifest._yaml.read_yaml`: safe YAML with the line of each field;
2. the JSON Schema (:mod:`weaviate_ext.manifest.schema`), its errors translated into
   readable messages (enum, unknown field with a did-you-mean, missing field, type,
   pattern with what was expected, const, minimum/maximum);
3. checks a schema cannot express: quantities, version ranges, dependency names,
   config defaults against their type, ``binary`` and the ``tls`` files staying inside
   the plugin directory.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semantic_version import NpmSpec, Version

from weaviate_ext.errors import ManifestError, Problem
from weaviate_ext.manifest import quantities
from weaviate_ext.manifest._yaml import MAX_BYTES, Positions, read_yaml
from weaviate_ext.manifest.build import KNOWN_CAPABILITIES, build_manifest
from weaviate_ext.manifest.messages import (
    TYPE_NAMES,
    dotted,
    join,
    mapping,
    matches_type,
    quantity_message,
    show,
    translate,
    type_name,
)
from weaviate_ext.manifest.model import (
    FRAMEWORK_NAME,
    Manifest,
)
from weaviate_ext.manifest.schema import manifest_validator

if TYPE_CHECKING:
    from jsonschema import ValidationError

MAX_PROBLEMS = 50
"""At most this many problems are reported for one file; the rest are counted."""

_REFERENCE = re.compile(r"\$\{(env|file):[^{}]+\}")
_QUANTITIES: dict[str, Callable[[Any], object]] = {
    "spec.resources.memory": quantities.parse_memory,
    "spec.resources.cpu": quantities.parse_cpu,
    "spec.timeout": quantities.parse_duration,
}


def load_manifest(path: str | os.PathLike[str], *, check_files: bool = True) -> Manifest:
    """Read and check the manifest file at ``path``.

    The file's size is checked before it is read. A missing or unreadable file, or a
    directory, is a :class:`ManifestError` too. With ``check_files`` (the default),
    ``spec.binary`` must exist as a regular file inside the manifest's directory.
    Messages name the file as ``path`` was given.
    """
    filename = os.fspath(path)
    data = _read_file(filename)
    return parse_manifest(data, filename, path=Path(filename), check_files=check_files)


def _read_file(filename: str) -> bytes:
    try:
        info = os.stat(filename)
        if stat.S_ISDIR(info.st_mode):
            raise ManifestError.single(
                filename, 0, "", "is a directory; expected a plugin.yaml file"
            )
        if not stat.S_ISREG(info.st_mode):
            raise ManifestError.single(filename, 0, "", "is not a regular file")
        if info.st_size > MAX_BYTES:
            message = f"the file is too large ({info.st_size} bytes; the limit is {MAX_BYTES})"
            raise ManifestError.single(filename, 1, "", message)
        with open(filename, "rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError.single(filename, 0, "", "no such file") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ManifestError.single(filename, 0, "", f"cannot be read: {reason}") from None


def parse_manifest(
    text: str | bytes,
    filename: str = "plugin.yaml",
    *,
    path: Path | None = None,
    check_files: bool = False,
) -> Manifest:
    """Check the manifest text ``text`` and build a :class:`Manifest`.

    ``filename`` names the file in messages; ``path`` is the file the text came from
    (it sets :attr:`Manifest.path`, so relative paths resolve against its directory).
    With ``check_files``, ``spec.binary`` and the ``spec.tls`` files must exist inside
    that directory (the current directory without ``path``). Raises
    :class:`ManifestError` listing every problem, sorted by line. The default of a
    ``secret: true`` config key is held in a :class:`~weaviate_ext.manifest.Secret`.
    """
    data, positions = read_yaml(text, filename)
    checker = _Checker(filename, positions)
    checker.schema(data)
    checker.semantics(data, path, check_files)
    checker.raise_problems()
    return build_manifest(data, positions, path)


class _Checker:
    """Collects the problems of one manifest."""

    def __init__(self, filename: str, positions: Positions) -> None:
        self.filename = filename
        self.positions = positions
        self.problems: set[Problem] = set()

    def line_of(self, field: str) -> int:
        while field:
            if field in self.positions:
                return self.positions[field]
            field = field.rpartition(".")[0]
        return self.positions.get("", 1)

    def add(self, field: str, message: str, line: int | None = None) -> None:
        if line is None:
            line = self.line_of(field)
        self.problems.add(Problem(self.filename, line, field, message))

    def raise_problems(self) -> None:
        if not self.problems:
            return
        ordered = sorted(self.problems, key=lambda p: (p.line, p.field, p.message))
        if len(ordered) > MAX_PROBLEMS:
            rest = len(ordered) - MAX_PROBLEMS
            last = ordered[MAX_PROBLEMS - 1].line
            ordered = [
                *ordered[:MAX_PROBLEMS],
                Problem(self.filename, last, "", f"... and {rest} more problems"),
            ]
        raise ManifestError(ordered)

    # -- step 2: the JSON Schema --------------------------------------------------

    def schema(self, data: dict[str, Any]) -> None:
        for error in manifest_validator().iter_errors(data):
            self.schema_error(error)

    def schema_error(self, error: ValidationError) -> None:
        field = dotted(error.absolute_path)
        if error.validator == "dependentRequired" and isinstance(error.instance, dict):
            self.dependent_required(error, field)
            return
        for problem_field, message in translate(error, field):
            parse = _QUANTITIES.get(problem_field)
            if parse is not None:
                message = quantity_message(parse, error.instance) or message
            self.add(problem_field, message)

    def dependent_required(self, error: ValidationError, field: str) -> None:
        for name, needed in dict(error.validator_value).items():
            if name not in error.instance:
                continue
            for other in needed:
                if other not in error.instance:
                    self.add(
                        join(field, name),
                        f"{name!r} needs {other!r} too (give both or neither)",
                    )

    def has_problem(self, field: str) -> bool:
        return any(p.field == field or p.field.startswith(field + ".") for p in self.problems)

    # -- step 3: what the schema cannot express -----------------------------------

    def semantics(self, data: dict[str, Any], path: Path | None, check_files: bool) -> None:
        metadata = mapping(data.get("metadata"))
        spec = mapping(data.get("spec"))
        name = metadata.get("name")
        self.reserved_name(name)
        self.version(metadata.get("version"))
        self.quantity("spec.resources.memory", mapping(spec.get("resources")).get("memory"))
        self.quantity("spec.resources.cpu", mapping(spec.get("resources")).get("cpu"))
        self.quantity("spec.timeout", spec.get("timeout"))
        self.dependencies(spec.get("dependencies"), name)
        self.config(mapping(spec.get("config")))
        self.capabilities(mapping(spec.get("capabilities")))
        self.command(spec.get("command"))
        self.relative_file("spec.binary", spec.get("binary"), path, check_files)
        tls = mapping(spec.get("tls"))
        for key in ("ca", "cert", "key"):
            self.relative_file(f"spec.tls.{key}", tls.get(key), path, check_files)

    def reserved_name(self, value: Any) -> None:
        if value == FRAMEWORK_NAME:
            self.add("metadata.name", f"{value!r} is reserved for the framework itself")

    def version(self, value: Any) -> None:
        if isinstance(value, str) and not self.has_problem("metadata.version"):
            try:
                Version(value)
            except ValueError:
                self.add("metadata.version", f"{value!r} is not a semantic version like 1.0.0")

    def quantity(self, field: str, value: Any) -> None:
        if value is None or self.has_problem(field):
            return
        message = quantity_message(_QUANTITIES[field], value)
        if message:
            self.add(field, message)

    def dependencies(self, value: Any, own_name: Any) -> None:
        if not isinstance(value, list):
            return
        seen: dict[str, int] = {}
        for index, item in enumerate(value):
            entry = mapping(item)
            field = f"spec.dependencies.{index}"
            name = entry.get("name")
            if isinstance(name, str):
                self.dependency_name(field, name, own_name, seen)
            version = entry.get("version")
            if isinstance(version, str) and version:
                try:
                    NpmSpec(version)
                except ValueError:
                    self.add(
                        f"{field}.version",
                        f"{version!r} is not an npm-style version range "
                        "like ^1.0.0, ~1.2, >=1.0 <2 or 1.x",
                    )

    def dependency_name(self, field: str, name: str, own_name: Any, seen: dict[str, int]) -> None:
        line = self.line_of(f"{field}.name")
        if name == own_name and name != FRAMEWORK_NAME:
            self.add(f"{field}.name", f"the plugin {name!r} cannot depend on itself")
        if name in seen:
            self.add(
                f"{field}.name",
                f"duplicate dependency {name!r} (first at line {seen[name]})",
            )
        else:
            seen[name] = line

    def config(self, config: dict[str, Any]) -> None:
        for key, entry in config.items():
            spec = mapping(entry)
            kind, default = spec.get("type"), spec.get("default")
            if not isinstance(kind, str) or default is None:
                continue
            if isinstance(default, str) and _REFERENCE.fullmatch(default):
                continue
            if not matches_type(kind, default):
                secret = spec.get("secret") is True
                got = type_name(default) if secret else f"{type_name(default)} ({show(default)})"
                self.add(
                    f"spec.config.{key}.default",
                    f"the default does not match the declared type {kind!r}: "
                    f"expected {TYPE_NAMES.get(kind, kind)}, got {got}",
                )

    def capabilities(self, capabilities: dict[str, Any]) -> None:
        for key in capabilities:
            if key in KNOWN_CAPABILITIES:
                continue
            close = difflib.get_close_matches(key, KNOWN_CAPABILITIES, n=1, cutoff=0.8)
            if close:
                self.add(
                    f"spec.capabilities.{key}",
                    f"unknown field {key!r} (did you mean {close[0]!r}?)",
                )

    def command(self, value: Any) -> None:
        if not isinstance(value, str) or not value:
            return
        try:
            words = shlex.split(value)
        except ValueError as error:
            self.add("spec.command", f"cannot be split into words: {error}")
            return
        if not words:
            self.add("spec.command", "must not be empty")

    def relative_file(self, field: str, value: Any, path: Path | None, check_files: bool) -> None:
        """``value`` names a file inside the plugin directory (``spec.binary``, TLS files)."""
        if not isinstance(value, str) or not value or self.has_problem(field):
            return
        parts = re.split(r"[/\\]", value)
        if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value):
            self.add(
                field,
                f"{value!r} is an absolute path; expected a path relative to the plugin directory",
            )
        elif ".." in parts:
            self.add(field, f"{value!r} leaves the plugin directory ('..' is not allowed)")
        elif check_files:
            directory = path.parent if path is not None else Path.cwd()
            problem = _file_problem(directory, value)
            if problem:
                self.add(field, problem)


def _file_problem(directory: Path, value: str) -> str | None:
    """Why ``value`` is not a regular file inside ``directory``, or ``None`` if it is."""
    try:
        root = directory.resolve()
        target = (directory / value).resolve()
        if not target.is_relative_to(root):
            return f"{value!r} points outside the plugin directory (to {str(target)!r})"
        if not target.exists():
            return f"the file {value!r} does not exist in {str(root)!r}"
        if not target.is_file():
            return f"{value!r} is not a regular file"
    except (OSError, RuntimeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        return f"{value!r} cannot be checked: {reason}"
    return None
