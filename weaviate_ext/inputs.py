"""Checks of call arguments that handles and plugins share.

Handles check every argument before a plugin is called; a plugin's hooks can also be
called directly (``manager.registry.hook``, another framework), so a careful plugin
checks them again. These functions give both the same rules and the same
:class:`~weaviate_ext.InvalidInput` messages::

    from weaviate_ext.inputs import check_data, key_bytes

    @hookimpl
    def store(self, key, data, deadline):
        self.db.put(key_bytes(key), check_data(data))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from weaviate_ext.errors import InvalidInput

__all__ = [
    "AsciiTexts",
    "ascii_strs",
    "check_data",
    "check_key",
    "check_text",
    "key_bytes",
    "lone_surrogate",
]


class AsciiTexts(list[str]):
    """A list of texts checked to be ``str`` and all ASCII (what the handles pass on
    when that holds): a bridge encoding texts can skip its own check of that
    (:func:`weaviate_ext.bridges.cabi.abi.join_texts` does). Anything else is checked
    as usual."""

    __slots__ = ()


def ascii_strs(texts: Iterable[Any]) -> bool:
    """Whether every item of ``texts`` is a ``str`` and every one is ASCII, in one pass at
    C speed: ``"".join`` refuses anything but ``str``, and ``str.isascii`` reads a flag.
    ``False`` says only that some item needs a closer look."""
    try:
        return "".join(texts).isascii()
    except TypeError:
        return False


def lone_surrogate(text: str) -> int | None:
    """The position of the first lone surrogate in ``text`` (a code point in
    U+D800..U+DFFF, which a JSON ``"\\ud800"`` escape or ``os.fsdecode`` can produce and
    UTF-8 cannot encode), or ``None`` when ``text`` can be encoded as UTF-8."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_text(value: Any, what: str) -> str:
    """``value`` when it is a ``str`` that UTF-8 can encode; else
    :class:`~weaviate_ext.InvalidInput` naming ``what`` (and the position of a lone
    surrogate), so that every runtime refuses the text the same way before a plugin
    sees it (a wasm, native or gRPC plugin receives UTF-8 bytes)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be str, got {type(value).__name__}")
    position = lone_surrogate(value)
    if position is not None:
        raise InvalidInput(
            f"{what} is not valid Unicode text: a lone surrogate "
            f"(U+{ord(value[position]):04X}) at position {position} cannot be encoded as UTF-8"
        )
    return value


def check_key(key: Any) -> str:
    """``key`` when it is a non-empty ``str``; :class:`~weaviate_ext.InvalidInput` else."""
    if not isinstance(key, str):
        raise InvalidInput(f"key must be str, got {type(key).__name__}")
    if not key:
        raise InvalidInput("key must not be empty")
    return key


def key_bytes(key: Any) -> bytes:
    """The bytes a storage key is stored under: its UTF-8 form, lone surrogates kept
    (``surrogatepass``), so every ``str`` key has one and distinct keys stay distinct."""
    return check_key(key).encode("utf-8", "surrogatepass")


def check_data(data: Any) -> bytes:
    """``data`` as ``bytes`` (``bytearray`` and ``memoryview`` are copied);
    :class:`~weaviate_ext.InvalidInput` for anything that is not bytes-like."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise InvalidInput(f"data must be bytes, got {type(data).__name__}")
