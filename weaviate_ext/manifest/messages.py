"""Readable messages for manifest problems: JSON Schema errors translated into
``field: message`` pairs (enum, unknown field with a did-you-mean, missing field, type,
pattern with what was expected, const, minimum/maximum), and value renderings."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import ValidationError

TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


# -- translation of JSON Schema errors ---------------------------------------------


def translate(error: ValidationError, field: str) -> Iterator[tuple[str, str]]:
    """(field, message) pairs for one schema error."""
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if "propertyNames" in error.relative_schema_path or "propertyNames" in (
        error.absolute_schema_path
    ):
        expected = schema.get("x-expected", "an allowed key")
        yield join(field, str(instance)), f"the key {show(instance)} is not {expected}"
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
        yield join(field, str(key)), f"unknown field {key!r}{hint}"


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
            yield from translate(sub, dotted(sub.absolute_path))
        return
    expected = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if expected:
        yield field, f"{show(error.instance)} is not {expected}"
    else:
        yield field, f"{show(error.instance)} does not have an allowed form"


def _has_pattern(errors: Iterable[ValidationError]) -> bool:
    return any(sub.validator == "pattern" for sub in errors)


def _message(error: ValidationError, field: str) -> str:
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    label = field.rpartition(".")[2] or "the value"
    if kind == "enum":
        return f"{show(instance)} is not one of {', '.join(str(v) for v in value)}"
    if kind == "const":
        return f"must be {value!r}, got {show(instance)}"
    if kind == "type":
        types = [value] if isinstance(value, str) else list(value)
        expected = " or ".join(TYPE_NAMES.get(t, t) for t in types)
        hint = ""
        if types == ["string"] and not isinstance(instance, dict | list) and instance is not None:
            hint = " (quote it to make it a string)"
        return f"expected {expected}, got {show(instance)}{hint}"
    if kind == "pattern":
        expected = schema.get("x-expected", f"matching {value}")
        return f"{show(instance)} is not {expected}"
    bounds = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "more than",
        "exclusiveMaximum": "less than",
    }
    if kind in bounds:
        return f"{label} must be {bounds[kind]} {value}, got {show(instance)}"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if kind == "maxLength":
        return f"must be at most {value} characters long"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"must have at least {value} items"
    if kind == "uniqueItems":
        return "must not repeat an item"
    text = str(error.message)
    return text if len(text) <= 200 else text[:197] + "..."


# -- small helpers ------------------------------------------------------------------


def quantity_message(parse: Callable[[Any], object], value: Any) -> str | None:
    """The quantity parser's complaint about ``value``, or ``None`` if it parses."""
    if isinstance(value, bool):
        return None
    try:
        parse(value)
    except ValueError as error:
        return str(error)
    return None


def dotted(path: Iterable[Any]) -> str:
    return ".".join(str(part) for part in path)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def show(value: Any) -> str:
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


def type_name(value: Any) -> str:
    """``value``'s kind in the manifest's words (``an integer``, ``a mapping``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def matches_type(kind: str, value: Any) -> bool:
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
