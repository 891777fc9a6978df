"""A plugin's configuration: the manifest's ``spec.config`` schema filled with values.

:func:`resolve_config` takes, for each key of the schema, the host's value, else the
manifest's default; resolves ``${env:NAME}`` and ``${file:PATH}`` references; checks and
converts the type; and wraps the value of every ``secret: true`` key in :class:`Secret`,
whose repr and str are redacted. No message of this module ever contains a secret value.
"""

from __future__ import annotations

import copy
import difflib
import hmac
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, NoReturn, final

from weaviate_ext.errors import ConfigError
from weaviate_ext.manifest.messages import type_name
from weaviate_ext.manifest.model import ConfigField, Manifest

REDACTED: Final = "**********"
"""What a secret looks like in every repr, str and message."""

MAX_FILE_BYTES: Final = 1024 * 1024
"""The largest file a ``${file:PATH}`` reference may read."""

ReferenceCheck = Callable[[str, str], "str | None"]
"""``check(kind, target) -> None | reason``: whether a reference in a default may resolve."""

_REFERENCE = re.compile(r"\$\{(env|file):([^{}]+)\}")
_INTEGER = re.compile(r"[+-]?[0-9]{1,100}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_BOOLEANS: Final = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}
_EXPECTED: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "array": "a list",
    "object": "a mapping with string keys",
}


@final
class Secret:
    """A secret configuration value: redacted in ``repr``, ``str``, ``format`` and pickling.

    ``reveal()`` returns the real value. Two secrets are equal when their values are
    (compared in constant time for strings and bytes). A secret refuses to be pickled,
    so it cannot leak into a file or another process by accident.
    """

    __slots__ = ("_value",)
    _value: Any

    def __init__(self, value: Any) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        object.__setattr__(self, "_value", value)

    def __init_subclass__(cls, **kwargs: Any) -> None:  # pragma: no cover - @final
        raise TypeError("Secret cannot be subclassed")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> Any:
        """The real value. Pass it only to the code that needs it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        try:
            return format(REDACTED, format_spec)
        except (ValueError, TypeError):
            return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        mine, theirs = self._value, other._value
        if isinstance(mine, str) and isinstance(theirs, str):
            return hmac.compare_digest(mine.encode(), theirs.encode())
        if isinstance(mine, bytes) and isinstance(theirs, bytes):
            return hmac.compare_digest(mine, theirs)
        return bool(mine == theirs)

    def __hash__(self) -> int:
        return hash((Secret, _hashable(self._value)))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled (it would be written in clear text)")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _reveal(value: Any) -> Any:
    return value.reveal() if isinstance(value, Secret) else value


class PluginConfig(Mapping[str, Any]):
    """A plugin's resolved configuration: an immutable mapping of key -> value.

    Values of secret keys are :class:`Secret` objects; the typed getters return plain
    values (revealing secrets). Keys that are neither given, defaulted nor required are
    absent. Build it with :func:`resolve_config`.
    """

    __slots__ = ("_plugin", "_values")

    def __init__(self, values: Mapping[str, Any] | None = None, *, plugin: str = "") -> None:
        self._values: Mapping[str, Any] = MappingProxyType(copy.deepcopy(dict(values or {})))
        self._plugin = plugin

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"PluginConfig({dict(self._values)!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a PluginConfig cannot be pickled (it may hold secrets)")

    @property
    def plugin(self) -> str:
        """The name of the plugin this configuration belongs to."""
        return self._plugin

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The clear text of every secret value, for the framework to scrub from messages.

        This is for the framework (log filters, error scrubbing, CLI output), not for
        plugins: a plugin reads its secrets with :meth:`reveal` or the typed getters.
        """
        found: list[str] = []
        for value in self._values.values():
            if isinstance(value, Secret):
                plain = value.reveal()
                text = plain if isinstance(plain, str) else json.dumps(plain, default=str)
                if text:
                    found.append(text)
        return tuple(found)

    def reveal(self, key: str) -> Any:
        """The plain value of ``key`` (a secret's real value); :class:`ConfigError` if unset."""
        return _reveal(self._get(key))

    def get_string(self, key: str) -> str:
        """The value of ``key`` as a ``str``; :class:`ConfigError` if unset or not a string."""
        value = self.reveal(key)
        if not isinstance(value, str):
            self._wrong_type(key, value, "a string")
        return value

    def get_int(self, key: str) -> int:
        """The value of ``key`` as an ``int`` (a bool is not one); :class:`ConfigError` if not."""
        value = self.reveal(key)
        if not isinstance(value, int) or isinstance(value, bool):
            self._wrong_type(key, value, "an integer")
        return value

    def get_float(self, key: str) -> float:
        """The value of ``key`` as a ``float`` (ints are converted); :class:`ConfigError` if not."""
        value = self.reveal(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self._wrong_type(key, value, "a number")
        return float(value)

    def get_bool(self, key: str) -> bool:
        """The value of ``key`` as a ``bool``; :class:`ConfigError` if unset or not a boolean."""
        value = self.reveal(key)
        if not isinstance(value, bool):
            self._wrong_type(key, value, "a boolean")
        return value

    def _get(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise ConfigError(
                f"config key {key!r} is not set", plugin=self._plugin or None
            ) from None

    def _wrong_type(self, key: str, value: Any, expected: str) -> NoReturn:
        raise ConfigError(
            f"config key {key!r} is {type_name(value)}, not {expected}",
            plugin=self._plugin or None,
        )


class _Missing:
    """Marks a key that has no value at all."""


_MISSING: Final = _Missing()


class _Resolver:
    """Resolves one manifest's config; collects every problem before raising."""

    def __init__(
        self,
        manifest: Manifest,
        environ: Mapping[str, str],
        default_reference: ReferenceCheck | None,
    ) -> None:
        self.manifest = manifest
        self.environ = environ
        self.default_reference = default_reference
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"config key {key!r}: {message}")

    def resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        self.check_unknown(values)
        resolved: dict[str, Any] = {}
        for key, field in self.manifest.spec.config.items():
            value = self.value_of(field, values)
            if not isinstance(value, _Missing):
                resolved[key] = Secret(value) if field.secret else value
        return resolved

    def check_unknown(self, values: Mapping[str, Any]) -> None:
        known = list(self.manifest.spec.config)
        for key in sorted(str(k) for k in values if k not in self.manifest.spec.config):
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            listed = ", ".join(known) if known else "none"
            self.problems.append(f"unknown config key {key!r}{hint}; the keys are: {listed}")

    def value_of(self, field: ConfigField, values: Mapping[str, Any]) -> Any:
        raw = _reveal(values.get(field.name))
        from_default = raw is None
        if from_default:
            raw = _reveal(field.default)
        if raw is None:
            if field.required:
                self.problem(field.name, "is required but has no value (and no default)")
            return _MISSING
        from_reference = False
        if isinstance(raw, str):
            match = _REFERENCE.fullmatch(raw)
            if match is not None:
                check = self.default_reference if from_default else None
                raw = self.dereference(field.name, match[1], match[2], check)
                from_reference = True
                if isinstance(raw, _Missing):
                    return raw
        return self.coerce(field, raw, from_reference)

    def dereference(
        self, key: str, kind: str, target: str, check: ReferenceCheck | None
    ) -> str | _Missing:
        reference = f"${{{kind}:{target}}}"
        if kind == "env":
            refused = check(kind, target) if check is not None else None
            if refused is not None:
                self.problem(key, f"{reference}: {refused}")
                return _MISSING
            if target not in self.environ:
                self.problem(key, f"the environment variable {target!r} ({reference}) is not set")
                return _MISSING
            return self.environ[target]
        return self.read_file(key, target, reference, check)

    def read_file(
        self, key: str, target: str, reference: str, check: ReferenceCheck | None
    ) -> str | _Missing:
        path = Path(target).expanduser()
        if not path.is_absolute():
            path = self.manifest.directory / path
        if check is not None:
            path = Path(os.path.realpath(path))
            refused = check("file", str(path))
            if refused is not None:
                self.problem(key, f"{reference}: {refused}")
                return _MISSING
        try:
            data = _read_regular_file(path, MAX_FILE_BYTES + 1)
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error) or "cannot be opened"
            self.problem(key, f"cannot read the file {str(path)!r} ({reference}): {reason}")
            return _MISSING
        if len(data) > MAX_FILE_BYTES:
            self.problem(key, f"the file {str(path)!r} ({reference}) is larger than 1 MiB")
            return _MISSING
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(key, f"the file {str(path)!r} ({reference}) is not UTF-8 text")
            return _MISSING
        return _strip_newline(text)

    def coerce(self, field: ConfigField, value: Any, from_reference: bool) -> Any:
        converted = _convert(field.type, value, from_reference)
        if isinstance(converted, _Missing):
            got = type_name(value)  # never the value: it may be a secret in the wrong key
            source = " from a reference" if from_reference else ""
            expected = _EXPECTED.get(field.type, field.type)
            self.problem(field.name, f"expected {expected}, got {got}{source}")
        elif not _encodable(converted):
            # a lone surrogate (e.g. from os.fsdecode or a JSON "\\ud800"): no runtime
            # can pass it on as UTF-8, so it is refused here, for every runtime alike
            self.problem(field.name, "is not valid Unicode text (it has a lone surrogate)")
            return _MISSING
        return converted


def _read_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file at ``path``; never blocks.

    A FIFO, a device, a socket or a directory is refused before anything is read: the
    type is checked first, then again on the descriptor (opened non-blocking, so a FIFO
    swapped in between cannot hang the host either).
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise ValueError(_not_regular(mode))
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb") as handle:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(_not_regular(mode))
        return handle.read(limit)


def _not_regular(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"it is {kind}; a reference reads regular files only"


def _encodable(value: Any) -> bool:
    """Whether every string in ``value`` (nested in lists and mappings too) has a UTF-8
    form."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list | tuple):
        return all(_encodable(item) for item in value)
    if isinstance(value, Mapping):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    return True


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def _convert(kind: str, value: Any, from_reference: bool) -> Any:
    """``value`` as the config type ``kind``, or ``_MISSING`` when it is not one."""
    if from_reference and isinstance(value, str):
        return _from_text(kind, value)
    if kind == "string":
        return value if isinstance(value, str) else _MISSING
    if kind == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISSING
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value if math.isfinite(value) else _MISSING
        return _MISSING
    if kind == "boolean":
        return value if isinstance(value, bool) else _MISSING
    if kind == "array":
        return list(value) if isinstance(value, list | tuple) else _MISSING
    if kind == "object":
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            return dict(value)
        return _MISSING
    return _MISSING


def _from_text(kind: str, text: str) -> Any:
    """Convert the text of an ``${env:..}``/``${file:..}`` reference to ``kind``."""
    stripped = text.strip()
    if kind == "string":
        return text
    if kind == "integer":
        return int(stripped) if _INTEGER.fullmatch(stripped) else _MISSING
    if kind == "number":
        if not _NUMBER.fullmatch(stripped):
            return _MISSING
        number = float(stripped)
        return number if math.isfinite(number) else _MISSING
    if kind == "boolean":
        return _BOOLEANS.get(stripped.lower(), _MISSING)
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return _MISSING
    return _convert(kind, parsed, from_reference=False)


def resolve_config(
    manifest: Manifest,
    values: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    default_reference: ReferenceCheck | None = None,
) -> PluginConfig:
    """Fill the manifest's config schema with values and check them.

    For each key: the host's value (``values``; ``None`` counts as not given), else the
    manifest's ``default``. A string that is exactly ``${env:NAME}`` is replaced by the
    environment variable (from ``environ``, default :data:`os.environ`); ``${file:PATH}``
    by the file's text without one trailing newline (a relative path is relative to the
    manifest's directory; only a regular file is read, never blocking). Text from a
    reference is converted to the key's type (``"42"`` -> 42, ``"true"``/``"yes"``/``"1"``
    -> True, JSON for arrays and objects).

    A reference in a manifest *default* was written by the plugin's author, not the
    host: ``default_reference(kind, target)`` (the variable's name, or the file's
    resolved path) returns ``None`` to allow it or the reason it is refused (see
    :func:`weaviate_ext.grants.default_reference_check`); ``None`` allows every one.

    Raises :class:`ConfigError` naming every unknown key (with a did-you-mean), missing
    required key, unresolvable reference and value of the wrong type; the message never
    contains a secret's value.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"config must be a mapping of key to value, not {type_name(values)}",
            plugin=manifest.name,
        )
    resolver = _Resolver(manifest, os.environ if environ is None else environ, default_reference)
    resolved = resolver.resolve(values)
    if resolver.problems:
        raise ConfigError("; ".join(resolver.problems), plugin=manifest.name)
    return PluginConfig(resolved, plugin=manifest.name)
