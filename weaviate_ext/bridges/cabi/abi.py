"""The C ABI of ``hookspecs/weaviate_plugin.h``, as data both bridges share.

Each export is described by a string of argument kinds, from which the wasm bridge
derives the wasm signature it checks at load and the native bridge derives its
``cffi`` declarations:

* ``b``: a byte buffer, passed as pointer + length (``const uint8_t *, uint32_t``);
* ``i``: a ``uint32_t`` (a count);
* ``o``: the output, passed as ``const uint8_t **out_ptr, uint32_t *out_len``;
* ``f``: a float32 buffer the host owns and the plugin fills, passed as
  ``float *out, uint32_t out_floats`` (``wv_vectorize_into``).

Every hook export returns an ``int32_t`` status (see :data:`WV_OK` and friends).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from weaviate_ext.errors import InvalidInput, PluginLoadError, PluginOutputError
from weaviate_ext.inputs import AsciiTexts, ascii_strs
from weaviate_ext.plugin_types import HookTable, TypeTable

ABI_VERSION = 1
"""``WV_ABI_VERSION`` of the header this host speaks."""

WV_OK = 0
WV_NOT_FOUND = 1
WV_ABSTAIN = 2
WV_ERROR = -1
WV_ERR_NOMEM = -2
WV_ERR_INVALID = -3
WV_ERR_DENIED = -4

EMIT_MODULE = "weaviate"
EMIT_NAME = "wv_emit"

HOOK_EXPORTS: Mapping[str, str] = HookTable(lambda t: t.c_exports, {"wv_init": "b"})
"""Hook exports (returning an ``int32_t`` status) and their argument kinds: ``wv_init``
and each plugin type's ``c_exports`` in :mod:`weaviate_ext.plugin_types`."""

COMMON_EXPORTS: tuple[str, ...] = (
    "wv_abi_version",
    "wv_alloc",
    "wv_free",
    "wv_init",
    "wv_last_error",
)
"""Exports every plugin must have."""

REQUIRED_EXPORTS: Mapping[str, tuple[str, ...]] = TypeTable(lambda t: t.c_required)
"""The exports each plugin type must have, besides :data:`COMMON_EXPORTS`."""

OPTIONAL_EXPORTS: Mapping[str, tuple[str, ...]] = TypeTable(lambda t: t.c_optional)
"""Exports a plugin type may have; the bridge falls back without them."""


def wasm_params(export: str) -> tuple[int, int]:
    """``(parameters, results)`` of an export in wasm32, where every value is an i32."""
    fixed = {
        "wv_abi_version": (0, 1),
        "wv_alloc": (1, 1),
        "wv_free": (2, 0),
        "wv_last_error": (2, 0),
    }
    if export in fixed:
        return fixed[export]
    kinds = HOOK_EXPORTS[export]
    return sum(1 if k == "i" else 2 for k in kinds), 1


def c_declaration(export: str, buffer: str = "const uint8_t *", floats: str = "float *") -> str:
    """The C prototype of an export, for ``cffi``.

    ``buffer`` is the C type declared for a byte buffer's pointer: the native bridge
    declares ``const char *`` (the same ABI), so that ``cffi`` passes a ``bytes`` object's
    own storage without a conversion object per call; ``floats`` the same for the float
    buffer of ``wv_vectorize_into`` (``char *`` takes ``ffi.from_buffer(array)`` as is)."""
    fixed = {
        "wv_abi_version": "uint32_t wv_abi_version(void);",
        "wv_alloc": "void *wv_alloc(uint32_t size);",
        "wv_free": "void wv_free(void *ptr, uint32_t size);",
        "wv_last_error": "void wv_last_error(const uint8_t **ptr, uint32_t *len);",
        "wv_set_emit": "void wv_set_emit(int32_t (*emit)(const uint8_t *, uint32_t));",
    }
    if export in fixed:
        return fixed[export]
    kind_types = {
        "b": f"{buffer}, uint32_t",
        "i": "uint32_t",
        "o": "const uint8_t **, uint32_t *",
        "f": f"{floats}, uint32_t",
    }
    params = ", ".join(kind_types[k] for k in HOOK_EXPORTS[export])
    return f"int32_t {export}({params});"


def expected_exports(plugin_type: str) -> tuple[str, ...]:
    """Every export a plugin of ``plugin_type`` must have."""
    return COMMON_EXPORTS + REQUIRED_EXPORTS[plugin_type]


def missing_exports_error(name: str, plugin_type: str, missing: Sequence[str]) -> PluginLoadError:
    """The load error for a binary that lacks exports of the ABI."""
    listed = ", ".join(missing)
    return PluginLoadError(
        name,
        f"the binary does not export {listed} (a {plugin_type} plugin needs "
        f"{', '.join(expected_exports(plugin_type))}; see hookspecs/weaviate_plugin.h)",
    )


def check_abi_version(name: str, version: int) -> None:
    """Refuse a plugin built against another ABI version."""
    if version != ABI_VERSION:
        raise PluginLoadError(
            name,
            f"the binary was built for weaviate_plugin.h ABI version {version}, this host "
            f"speaks version {ABI_VERSION}; rebuild it against the current header",
        )


def read_binary(name: str, path: Path | None, declared_sha256: str | None) -> tuple[bytes, str]:
    """The binary's bytes and sha256, refusing a missing file or a declared digest mismatch."""
    if path is None:
        raise PluginLoadError(name, "spec.binary is required for this runtime")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PluginLoadError(
            name, f"cannot read spec.binary {path}: {exc.strerror or exc} (was it built?)"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if declared_sha256 is not None and declared_sha256.lower() != digest:
        raise PluginLoadError(
            name,
            f"spec.sha256 is {declared_sha256.lower()} but {path.name} has sha256 {digest}; "
            "refusing to load a binary that does not match its manifest",
        )
    return data, digest


# -- encoding ------------------------------------------------------------------------


def utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8; :class:`InvalidInput` for text that has no UTF-8 form."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode text ({exc.reason})") from None


_U32 = struct.Struct("<I").pack

_PREFIX: list[str] = [_U32(n).decode("latin-1") for n in range(256)]
"""The u32 length prefix of a text of ``n`` < 256 bytes, as latin-1 characters: for
ASCII texts the whole packed buffer is built as one ``str`` and encoded once."""


def pack_one(text: str, what: str = "text") -> bytes:
    """One packed string (:func:`pack_strings` of ``[text]`` without the list)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = utf8(text, what)
    return _U32(len(data)) + data


SEPARATOR = b"\xff"
"""What separates the texts of ``wv_vectorize_into``: a byte no UTF-8 text contains."""


def join_texts(texts: Sequence[str], what: str = "texts") -> bytes:
    """The texts of ``wv_vectorize_into``: UTF-8, joined by :data:`SEPARATOR` (no length
    prefixes). ASCII texts (the common case) are joined as one ``str`` and encoded once
    (``"\\xff"`` is the separator's latin-1 character); others one ``encode`` each.
    Text without a UTF-8 form is :class:`InvalidInput` naming it (:func:`utf8`)."""
    if type(texts) is AsciiTexts or ascii_strs(texts):  # (AsciiTexts: checked by the handle)
        return "\xff".join(texts).encode("latin-1")
    parts = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInput(f"{what}[{i}] must be str, got {type(text).__name__}")
        parts.append(utf8(text, f"{what}[{i}]"))
    return SEPARATOR.join(parts)


def pack_strings(texts: Sequence[str], what: str = "texts") -> bytes:
    """Packed strings: each a u32 little-endian byte length followed by UTF-8 bytes.

    ASCII texts shorter than 256 bytes (the common case) are packed as one ``str``
    (length prefixes as latin-1 characters) encoded once; other texts with one
    ``encode`` per text and one ``join``. The per-text error message (and the refusal
    of text without a UTF-8 form) comes from :func:`utf8`."""
    if len(texts) == 1:
        return pack_one(texts[0], what)
    if ascii_strs(texts):  # else the per-text path says which text is not str or UTF-8
        prefix = _PREFIX
        try:
            heads = [prefix[len(text)] for text in texts]
        except IndexError:
            pass  # a text of 256 bytes or more
        else:
            parts: list[str] = [""] * (2 * len(heads))
            parts[::2] = heads
            parts[1::2] = texts
            return "".join(parts).encode("latin-1")
    try:
        encoded = [text.encode("utf-8") for text in texts]
    except UnicodeEncodeError:
        encoded = [utf8(text, what) for text in texts]
    chunks: list[bytes] = [b""] * (2 * len(encoded))
    chunks[::2] = [_U32(len(data)) for data in encoded]
    chunks[1::2] = encoded
    return b"".join(chunks)


def vector_bytes_error(plugin: str, hook: str, size: int, count: int) -> PluginOutputError:
    """The error for a vectorizer output of ``size`` bytes that is not ``count``
    non-empty packed float32 vectors."""
    return PluginOutputError(
        plugin,
        hook,
        f"returned {size} bytes for {count} texts, not {count} packed float32 vectors",
    )


def unpack_strings(data: bytes, count: int) -> list[str] | None:
    """The ``count`` packed strings in ``data``, or ``None`` if it is malformed."""
    out: list[str] = []
    pos = 0
    end = len(data)
    for _ in range(count):
        if end - pos < 4:
            return None
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if end - pos < size:
            return None
        try:
            out.append(data[pos : pos + size].decode("utf-8"))
        except UnicodeDecodeError:
            return None
        pos += size
    return out if pos == end else None


def _plain(value: Any) -> Any:
    reveal = getattr(value, "reveal", None)
    return reveal() if callable(reveal) else value


def config_json(config: Mapping[str, Any]) -> bytes:
    """The plugin's config as the JSON object ``wv_init`` receives (secrets revealed)."""
    values = {key: _plain(config[key]) for key in config}
    return json.dumps(values, default=str, ensure_ascii=False).encode("utf-8")
