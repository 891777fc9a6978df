"""Safe, position-aware YAML reading. The only module of weaviate-ext that imports ``yaml``.

:func:`read_yaml` composes the YAML node tree with :class:`yaml.SafeLoader` and builds
plain Python data from it itself, so that it can

- remember the line of every field (``spec.dependencies.0.version`` -> 21);
- refuse what a manifest never needs and an attacker might use: anchors and aliases
  (refused while composing, so an alias bomb costs nothing), merge keys, duplicate keys,
  non-string keys, tags outside the YAML core schema, deep nesting, several documents;
- turn every problem, including YAML syntax errors, into a :class:`ManifestError` with
  the file and line, never a ``yaml`` exception.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import yaml
from yaml.events import AliasEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from weaviate_ext.errors import ManifestError

MAX_BYTES = 256 * 1024
"""The largest manifest accepted, in bytes."""

MAX_DEPTH = 32
"""The deepest nesting of mappings and lists accepted."""

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp")
)
_MERGE_TAG = _CORE + "merge"

# The characters YAML itself refuses (the same set PyYAML's reader checks), found
# here first so that the message can say which line and that the file looks binary.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)

Positions = dict[str, int]


def _fail(filename: str, line: int, message: str, field: str = "") -> NoReturn:
    raise ManifestError.single(filename, line, field, message)


def _line_at(text: str | bytes, offset: int) -> int:
    newline: Any = b"\n" if isinstance(text, bytes) else "\n"
    return text.count(newline, 0, offset) + 1


def decode(data: str | bytes, filename: str) -> str:
    """Check the size and encoding of a manifest and return its text.

    Raises :class:`ManifestError` for a file over :data:`MAX_BYTES`, bytes that are not
    UTF-8, and NUL or other control characters (binary junk).
    """
    if isinstance(data, str):
        size = len(data) if len(data) > MAX_BYTES else len(data.encode("utf-8", "surrogatepass"))
    else:
        size = len(data)
    if size > MAX_BYTES:
        _fail(filename, 1, f"the file is too large ({size} bytes; the limit is {MAX_BYTES})")
    if isinstance(data, bytes):
        if b"\x00" in data:
            line = _line_at(data, data.index(b"\x00"))
            _fail(filename, line, "the file contains NUL bytes: it is binary data, not YAML")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = _line_at(data, error.start)
            _fail(
                filename,
                line,
                f"the file is not UTF-8 text (byte 0x{data[error.start]:02x} "
                f"at offset {error.start})",
            )
    else:
        text = data.removeprefix("\ufeff")
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line = _line_at(text, bad.start())
        char = ord(bad.group())
        what = (
            "NUL bytes: it is binary data" if char == 0 else f"the control character U+{char:04X}"
        )
        _fail(filename, line, f"the file contains {what}, which YAML does not allow")
    return text


class _Loader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses anchors, aliases and deep nesting at once."""

    def __init__(self, text: str, filename: str) -> None:
        super().__init__(text)
        self.filename = filename
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # (types-PyYAML)
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, AliasEvent):
            _fail(self.filename, line, f"YAML aliases (*{event.anchor}) are not allowed")
        if isinstance(event, NodeEvent) and event.anchor is not None:
            _fail(self.filename, line, f"YAML anchors (&{event.anchor}) are not allowed")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _fail(self.filename, line, f"the data is nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(text: str, filename: str) -> Node | None:
    loader = _Loader(text, filename)
    try:
        loader.get_event()  # type: ignore[no-untyped-call]  # StreamStartEvent
        if loader.check_event(yaml.StreamEndEvent):
            return None
        node = loader.compose_document()
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.peek_event()  # type: ignore[no-untyped-call]
            line = event.start_mark.line + 1 if event.start_mark else 1
            _fail(filename, line, "the file holds several YAML documents; expected one")
        return node
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = error.problem or error.context or "cannot be parsed"
        _fail(filename, line, f"invalid YAML: {problem}")
    except yaml.YAMLError as error:
        _fail(filename, 1, f"invalid YAML: {error}")
    finally:
        loader.dispose()


class _Builder:
    """Turns a composed node tree into plain data and a field -> line map."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.positions: Positions = {}
        self.constructor = yaml.SafeLoader("")

    def build(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            self.check_tag(node, _CORE + "seq", path)
            return self.sequence(node, path)
        if isinstance(node, MappingNode):
            self.check_tag(node, _CORE + "map", path)
            return self.mapping(node, path)
        _fail(self.filename, _line(node), "unsupported YAML node", path)  # pragma: no cover

    def check_tag(self, node: Node, expected: str, path: str) -> None:
        if node.tag != expected:
            _fail(self.filename, _line(node), f"the YAML tag {node.tag!r} is not allowed", path)

    def scalar(self, node: ScalarNode, path: str) -> Any:
        if node.tag not in _SCALAR_TAGS:
            _fail(self.filename, _line(node), f"the YAML tag {node.tag!r} is not allowed", path)
        try:
            return self.constructor.construct_object(node)
        except Exception:  # any failure of a constructor (bad date, huge int) is bad input
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            _fail(self.filename, _line(node), f"cannot read the value {shown!r}", path)

    def sequence(self, node: SequenceNode, path: str) -> list[Any]:
        items: list[Any] = []
        for index, child in enumerate(node.value):
            child_path = _join(path, str(index))
            self.positions[child_path] = _line(child)
            items.append(self.build(child, child_path))
        return items

    def mapping(self, node: MappingNode, path: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            child_path = _join(path, key)
            line = _line(key_node)
            if key in lines:
                message = (
                    f"duplicate key {key!r} (first at line {lines[key]}, again at line {line})"
                )
                _fail(self.filename, line, message, child_path)
            lines[key] = line
            self.positions[child_path] = line
            result[key] = self.build(value_node, child_path)
        return result

    def key(self, node: Node, path: str) -> str:
        line = _line(node)
        if node.tag == _MERGE_TAG:
            _fail(self.filename, line, "YAML merge keys (<<) are not allowed", path)
        if not isinstance(node, ScalarNode):
            _fail(self.filename, line, "a key must be a plain string, not a list or mapping", path)
        key = self.scalar(node, path)
        if not isinstance(key, str):
            message = (
                f"the key {node.value!r} is read as {type(key).__name__}, not a string (quote it)"
            )
            _fail(self.filename, line, message, path)
        return key


def _line(node: Node) -> int:
    return node.start_mark.line + 1 if node.start_mark is not None else 1


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


MANIFEST_TOP = "a mapping with apiVersion, kind, metadata and spec"


def read_yaml(
    text: str | bytes, filename: str, *, expected: str = MANIFEST_TOP, allow_empty: bool = False
) -> tuple[Any, Positions]:
    """Read one YAML document safely: plain data and the line of every field.

    The positions map dotted field paths (``spec.type``, ``spec.dependencies.0.version``,
    ``spec.config.modelPath.default``) to 1-based lines: the line of a mapping key, or of
    a list item; ``""`` is the top-level mapping. The document must be a mapping
    (``expected`` describes which, for messages; an empty document is ``{}`` when
    ``allow_empty``). Every problem raises :class:`ManifestError` naming ``filename``
    and a line.
    """
    source = decode(text, filename)
    node = _compose(source, filename)
    if node is None or (
        isinstance(node, ScalarNode) and node.tag == _CORE + "null" and node.value == ""
    ):
        if allow_empty:
            return {}, {"": 1}
        _fail(filename, 1, f"the file is empty; expected {expected}")
    builder = _Builder(filename)
    data = builder.build(node, "")
    if not isinstance(data, dict):
        _fail(filename, _line(node), f"the top level must be {expected}, not {_kind(data)}")
    builder.positions[""] = _line(node)
    return data, builder.positions


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"
