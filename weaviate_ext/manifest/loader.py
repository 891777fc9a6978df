"""Reading a ``plugin.yaml`` into a :class:`Manifest`, or a :class:`ManifestError`.

Three steps, each reporting every problem it finds as ``file:line: field: message``:

1. :func:`weaviate_ext.manifest._yaml.read_yaml`: safe YAML with the line of each field;
2. the JSON Schema (:mod:`weaviate_ext.manifest.schema`), its errors translated into
   readable messages (enum, unknown field with a did-you-mean, missing field, type,
   pattern with what was expected, const, minimum/maximum);
3. checks a schema cannot express: quantities, version ranges, dependency names,
   config defaults against their type, ``binary`` staying inside the plugin directory.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from jsonschema import ValidationError
from semantic_version import NpmSpec, Version

from weaviate_ext.errors import ManifestError, Problem
from weaviate_ext.manifest import quantities
from weaviate_ext.manifest._yaml import MAX_BYTES, Positions, read_yaml
from weaviate_ext.manifest.config import Secret
from weaviate_ext.manifest.model import (
    FRAMEWORK_NAME,
    Capabilities,
    ConfigField,
    Dependency,
    DirectoryGrant,
    Manifest,
    Metadata,
    Permissions,
    Resources,
    Spec,
)
from weaviate_ext.manifest.schema import manifest_validator

MAX_PROBLEMS = 50
"""At most this many problems are reported for one file; the rest are counted."""

_KNOWN_CAPABILITIES = ("dimensions", "maxBatchSize", "deterministic", "normalized")
_REFERENCE = re.compile(r"\$\{(env|file):[^{}]+\}")
_QUANTITIES: dict[str, Callable[[Any], object]] = {
    "spec.resources.memory": quantities.parse_memory,
    "spec.resources.cpu": quantities.parse_cpu,
    "spec.timeout": quantities.parse_duration,
}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
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
    With ``check_files``, ``spec.binary`` must exist inside that directory (the current
    directory without ``path``). Raises :class:`ManifestError` listing every problem,
    sorted by line. The default of a ``secret: true`` config key is held in a
    :class:`~weaviate_ext.manifest.Secret`.
    """
    data, positions = read_yaml(text, filename)
    checker = _Checker(filename, positions)
    checker.schema(data)
    checker.semantics(data, path, check_files)
    checker.raise_problems()
    return _build(data, positions, path)


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
        field = _dotted(error.absolute_path)
        for problem_field, message in _translate(error, field):
            parse = _QUANTITIES.get(problem_field)
            if parse is not None:
                message = _quantity_message(parse, error.instance) or message
            self.add(problem_field, message)

    def has_problem(self, field: str) -> bool:
        return any(p.field == field or p.field.startswith(field + ".") for p in self.problems)

    # -- step 3: what the schema cannot express -----------------------------------

    def semantics(self, data: dict[str, Any], path: Path | None, check_files: bool) -> None:
        metadata = _mapping(data.get("metadata"))
        spec = _mapping(data.get("spec"))
        name = metadata.get("name")
        self.reserved_name(name)
        self.version(metadata.get("version"))
        self.quantity("spec.resources.memory", _mapping(spec.get("resources")).get("memory"))
        self.quantity("spec.resources.cpu", _mapping(spec.get("resources")).get("cpu"))
        self.quantity("spec.timeout", spec.get("timeout"))
        self.dependencies(spec.get("dependencies"), name)
        self.config(_mapping(spec.get("config")))
        self.capabilities(_mapping(spec.get("capabilities")))
        self.command(spec.get("command"))
        self.binary(spec.get("binary"), path, check_files)

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
        message = _quantity_message(_QUANTITIES[field], value)
        if message:
            self.add(field, message)

    def dependencies(self, value: Any, own_name: Any) -> None:
        if not isinstance(value, list):
            return
        seen: dict[str, int] = {}
        for index, item in enumerate(value):
            entry = _mapping(item)
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
            spec = _mapping(entry)
            kind, default = spec.get("type"), spec.get("default")
            if not isinstance(kind, str) or default is None:
                continue
            if isinstance(default, str) and _REFERENCE.fullmatch(default):
                continue
            if not _matches_type(kind, default):
                secret = spec.get("secret") is True
                got = _type_name(default) if secret else f"{_type_name(default)} ({_show(default)})"
                self.add(
                    f"spec.config.{key}.default",
                    f"the default does not match the declared type {kind!r}: "
                    f"expected {_TYPE_NAMES.get(kind, kind)}, got {got}",
                )

    def capabilities(self, capabilities: dict[str, Any]) -> None:
        for key in capabilities:
            if key in _KNOWN_CAPABILITIES:
                continue
            close = difflib.get_close_matches(key, _KNOWN_CAPABILITIES, n=1, cutoff=0.8)
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

    def binary(self, value: Any, path: Path | None, check_files: bool) -> None:
        if not isinstance(value, str) or not value or self.has_problem("spec.binary"):
            return
        parts = re.split(r"[/\\]", value)
        if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value):
            self.add(
                "spec.binary",
                f"{value!r} is an absolute path; expected a path relative to the plugin directory",
            )
        elif ".." in parts:
            self.add("spec.binary", f"{value!r} leaves the plugin directory ('..' is not allowed)")
        elif check_files:
            directory = path.parent if path is not None else Path.cwd()
            problem = _binary_problem(directory, value)
            if problem:
                self.add("spec.binary", problem)


def _binary_problem(directory: Path, value: str) -> str | None:
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


# -- translation of JSON Schema errors ---------------------------------------------


def _translate(error: ValidationError, field: str) -> Iterator[tuple[str, str]]:
    """(field, message) pairs for one schema error."""
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if "propertyNames" in error.relative_schema_path or "propertyNames" in (
        error.absolute_schema_path
    ):
        expected = schema.get("x-expected", "an allowed key")
        yield _join(field, str(instance)), f"the key {_show(instance)} is not {expected}"
    elif kind == "additionalProperties" and isinstance(instance, dict):
        yield from _unknown_fields(instance, schema, field)
    elif kind == "required" and isinstance(instance, dict):
        for name in error.validator_value:
            if name not in instance:
                yield field, f"missing required field {name!r}"
    elif kind in ("anyOf", "oneOf"):
        yield from _alternatives(error, field)
    else:
        yield field, _message(error, field)


def _unknown_fields(
    instance: dict[str, Any], schema: dict[str, Any], field: str
) -> Iterator[tuple[str, str]]:
    known = list(schema.get("properties", {}))
    for key in instance:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        else:
            hint = f" (expected one of: {', '.join(known)})" if known else ""
        yield _join(field, str(key)), f"unknown field {key!r}{hint}"


def _alternatives(error: ValidationError, field: str) -> Iterator[tuple[str, str]]:
    """An anyOf/oneOf error: the errors of the one branch of the right type, if any."""
    failed_type: set[int] = set()
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branch = sub.relative_schema_path[0]
        if sub.validator == "type" and not sub.relative_path:
            failed_type.add(branch)
        by_branch.setdefault(branch, []).append(sub)
    candidates = [b for b in by_branch if b not in failed_type]
    if len(candidates) == 1 and not _has_pattern(by_branch[candidates[0]]):
        for sub in by_branch[candidates[0]]:
            yield from _translate(sub, _dotted(sub.absolute_path))
        return
    expected = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if expected:
        yield field, f"{_show(error.instance)} is not {expected}"
    else:
        yield field, f"{_show(error.instance)} does not have an allowed form"


def _has_pattern(errors: Iterable[ValidationError]) -> bool:
    return any(sub.validator == "pattern" for sub in errors)


def _message(error: ValidationError, field: str) -> str:
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    label = field.rpartition(".")[2] or "the value"
    if kind == "enum":
        return f"{_show(instance)} is not one of {', '.join(str(v) for v in value)}"
    if kind == "const":
        return f"must be {value!r}, got {_show(instance)}"
    if kind == "type":
        types = [value] if isinstance(value, str) else list(value)
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        hint = ""
        if types == ["string"] and not isinstance(instance, dict | list) and instance is not None:
            hint = " (quote it to make it a string)"
        return f"expected {expected}, got {_show(instance)}{hint}"
    if kind == "pattern":
        expected = schema.get("x-expected", f"matching {value}")
        return f"{_show(instance)} is not {expected}"
    bounds = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "more than",
        "exclusiveMaximum": "less than",
    }
    if kind in bounds:
        return f"{label} must be {bounds[kind]} {value}, got {_show(instance)}"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if kind == "maxLength":
        return f"must be at most {value} characters long"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"must have at least {value} items"
    if kind == "uniqueItems":
        return "must not repeat an item"
    text = error.message
    return text if len(text) <= 200 else text[:197] + "..."


# -- small helpers ------------------------------------------------------------------


def _quantity_message(parse: Callable[[Any], object], value: Any) -> str | None:
    """The quantity parser's complaint about ``value``, or ``None`` if it parses."""
    if isinstance(value, bool):
        return None
    try:
        parse(value)
    except ValueError as error:
        return str(error)
    return None


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(part) for part in path)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _show(value: Any) -> str:
    """A short YAML-flavoured rendering of a value for a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _matches_type(kind: str, value: Any) -> bool:
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    check = checks.get(kind)
    return check(value) if check is not None else True


# -- building the model -------------------------------------------------------------


def _build(data: dict[str, Any], positions: Positions, path: Path | None) -> Manifest:
    metadata = data["metadata"]
    spec = data["spec"]
    return Manifest(
        metadata=Metadata(
            name=metadata["name"],
            version=metadata["version"],
            author=metadata.get("author", ""),
            description=metadata.get("description", ""),
        ),
        spec=_build_spec(spec, positions),
        api_version=data["apiVersion"],
        kind=data["kind"],
        path=path,
        positions=positions,
    )


def _build_spec(spec: dict[str, Any], positions: Positions) -> Spec:
    command = spec.get("command")
    timeout = spec.get("timeout")
    return Spec(
        type=spec["type"],
        runtime=spec["runtime"],
        binary=spec.get("binary"),
        entrypoint=spec.get("entrypoint"),
        command=tuple(shlex.split(command) if isinstance(command, str) else command)
        if command is not None
        else None,
        address=spec.get("address"),
        sha256=spec["sha256"].lower() if "sha256" in spec else None,
        timeout=quantities.parse_duration(timeout) if timeout is not None else None,
        dependencies=tuple(
            Dependency(
                name=item["name"],
                version=item["version"],
                line=positions.get(f"spec.dependencies.{index}", 0),
            )
            for index, item in enumerate(spec.get("dependencies", []))
        ),
        resources=_build_resources(spec.get("resources", {})),
        capabilities=_build_capabilities(spec.get("capabilities", {})),
        config={
            key: _build_config_field(key, entry, positions.get(f"spec.config.{key}", 0))
            for key, entry in spec.get("config", {}).items()
        },
        permissions=_build_permissions(spec.get("permissions", {})),
    )


def _build_resources(resources: dict[str, Any]) -> Resources:
    memory, cpu = resources.get("memory"), resources.get("cpu")
    return Resources(
        memory=quantities.parse_memory(memory) if memory is not None else None,
        cpu=quantities.parse_cpu(cpu) if cpu is not None else None,
    )


def _build_capabilities(capabilities: dict[str, Any]) -> Capabilities:
    return Capabilities(
        dimensions=capabilities.get("dimensions"),
        max_batch_size=capabilities.get("maxBatchSize"),
        deterministic=capabilities.get("deterministic", False),
        normalized=capabilities.get("normalized", False),
        extra={k: v for k, v in capabilities.items() if k not in _KNOWN_CAPABILITIES},
    )


def _build_config_field(name: str, entry: dict[str, Any], line: int) -> ConfigField:
    secret = entry.get("secret", False)
    default = entry.get("default")
    return ConfigField(
        name=name,
        type=entry["type"],
        required=entry.get("required", False),
        secret=secret,
        default=Secret(default) if secret and default is not None else default,
        description=entry.get("description", ""),
        line=line,
    )


def _build_permissions(permissions: dict[str, Any]) -> Permissions:
    return Permissions(
        env=tuple(permissions.get("env", ())),
        directories=tuple(
            DirectoryGrant(host=d["host"], guest=d["guest"], mode=d.get("mode", "ro"))
            for d in permissions.get("directories", ())
        ),
    )
