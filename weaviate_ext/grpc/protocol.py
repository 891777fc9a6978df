"""What host and plugin agree on beyond the .proto: handshake, limits, encodings."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from weaviate_ext.grpc import weaviate_plugin_pb2 as pb
from weaviate_ext.plugin_types import HookTable, TypeTable

PROTOCOL_VERSION: Final = 1
"""The protocol version of ``hookspecs/weaviate_plugin.proto``."""

HANDSHAKE_PREFIX: Final = "weaviate-ext"
"""First field of the handshake line a host-started plugin prints on stdout."""

SOCKET_ENV: Final = "WEAVIATE_EXT_GRPC_SOCKET"
"""Environment variable with the unix socket path a host-started plugin must serve on."""

PLUGIN_NAME_ENV: Final = "WEAVIATE_EXT_PLUGIN_NAME"
"""Environment variable with the plugin's manifest name (for its logs)."""

MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""What the SDK's server and the host's channel accept in one message."""

PORTABLE_MESSAGE_BYTES: Final = 4 * 1024 * 1024 - 64 * 1024
"""The batch size the host aims for: under gRPC's default 4 MiB receive limit, so a
plugin in any language with default settings accepts and can answer every request."""

CHANNEL_OPTIONS: Final = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)

SERVICES: Final[Mapping[str, str]] = TypeTable(lambda t: t.grpc_service)
"""The service of each plugin type in package ``weaviate.plugin.v1`` (derived from
:mod:`weaviate_ext.plugin_types`)."""

RPCS: Final[Mapping[str, str]] = HookTable(lambda t: t.grpc_rpcs)
"""The RPC of each plugin hook (derived from :mod:`weaviate_ext.plugin_types`; a plain
dict, read on every call)."""

Matrix = npt.NDArray[np.float32]


class HandshakeError(ValueError):
    """A handshake line that is not ``weaviate-ext|<version>|<network>|<address>``."""


def format_handshake(network: str, address: str) -> str:
    """The handshake line (without newline): ``weaviate-ext|1|unix|/path/to.sock``."""
    return f"{HANDSHAKE_PREFIX}|{PROTOCOL_VERSION}|{network}|{address}"


def parse_handshake(line: str) -> str:
    """The gRPC target named by a handshake line (``unix:/path`` or ``host:port``)."""
    parts = line.strip().split("|")
    if len(parts) != 4 or parts[0] != HANDSHAKE_PREFIX:
        raise HandshakeError(
            f"expected a handshake line 'weaviate-ext|{PROTOCOL_VERSION}|unix|/path', "
            f"got {line.strip()[:120]!r}"
        )
    _, version, network, address = parts
    if version != str(PROTOCOL_VERSION):
        raise HandshakeError(
            f"speaks protocol version {version!r}, this host speaks {PROTOCOL_VERSION}"
        )
    if network == "unix":
        return f"unix:{address}"
    if network == "tcp":
        host = address.rpartition(":")[0].strip("[]")
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise HandshakeError(f"a host-started plugin must listen on loopback, not {address}")
        return address
    raise HandshakeError(f"unknown network {network!r} (expected unix or tcp)")


# -- vectors -------------------------------------------------------------------------


def pack_vector(vector: Any) -> bytes:
    """One vector as packed little-endian float32 bytes."""
    if isinstance(vector, (bytes, bytearray, memoryview)):
        data = bytes(vector)
        if len(data) % 4:
            raise ValueError(f"{len(data)} bytes are not packed float32")
        return data
    array = np.asarray(vector, dtype="<f4")
    if array.ndim != 1:
        raise ValueError(f"a vector must be 1-D, got shape {array.shape}")
    return array.tobytes()


def pack_matrix(matrix: Any, count: int) -> tuple[bytes, int]:
    """``count`` vectors as (packed float32 bytes, dimensions)."""
    if isinstance(matrix, (bytes, bytearray, memoryview)):
        data = bytes(matrix)
        if len(data) % 4 or (count and (len(data) // 4) % count):
            raise ValueError(f"{len(data)} bytes are not {count} packed float32 vectors")
        return data, (len(data) // 4 // count if count else 0)
    array = np.asarray(matrix, dtype="<f4")
    if array.ndim != 2 or array.shape[0] != count:
        raise ValueError(f"expected {count} vectors, got an array of shape {array.shape}")
    return array.tobytes(), int(array.shape[1])


def vector_of(response: pb.VectorizeResponse) -> Matrix:
    """The vector of a response: ``packed`` read without a copy, else ``vector``."""
    if response.packed:
        return np.frombuffer(response.packed, dtype="<f4")
    return np.array(response.vector, dtype=np.float32)


def matrix_of(response: pb.VectorizeBatchResponse, count: int) -> Matrix:
    """The ``(count, dims)`` matrix of a batch response."""
    if response.packed:
        flat = np.frombuffer(response.packed, dtype="<f4")
        dims = response.dimensions or (flat.shape[0] // count if count else 0)
        if not dims or flat.shape[0] != count * dims:
            raise ValueError(
                f"packed {flat.shape[0]} floats, not {count} vectors of {dims} dimensions"
            )
        return flat.reshape(count, dims)
    rows = [vector_of(v) for v in response.vectors]
    if len(rows) != count:
        raise ValueError(f"returned {len(rows)} vectors for {count} texts")
    if not rows:
        return np.empty((0, 0), dtype=np.float32)
    if len({r.shape[0] for r in rows}) != 1:
        raise ValueError("returned vectors of different lengths")
    return np.stack(rows)


# -- items and JSON ------------------------------------------------------------------


def to_item(value: Any) -> pb.Item:
    """A transformer item: ``str`` as text, bytes as raw, anything else as JSON."""
    if isinstance(value, str):
        return pb.Item(text=value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return pb.Item(raw=bytes(value))
    return pb.Item(json=json.dumps(value, default=_jsonable))


def from_item(item: pb.Item) -> Any:
    """The value of a transformer item (JSON text decoded)."""
    kind = item.WhichOneof("value")
    if kind == "text":
        return item.text
    if kind == "raw":
        return item.raw
    if kind == "json":
        return json.loads(item.json)
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """JSON text of config values and options (numpy values and mappings allowed)."""
    return json.dumps(value, default=_jsonable, separators=(",", ":"))


def batches_by_size(texts: Sequence[str], limit: int, per_item: int = 0) -> list[Sequence[str]]:
    """Split ``texts`` into slices whose encoded size stays under ``limit`` bytes.

    ``per_item`` is the size of each item's answer (for example ``dims * 4``), which
    must fit too. A single item larger than the limit is sent alone.
    """
    slices: list[Sequence[str]] = []
    start, size = 0, 0
    for i, text in enumerate(texts):
        cost = max(len(text.encode("utf-8", "surrogatepass")) + 8, per_item + 8)
        if i > start and size + cost > limit:
            slices.append(texts[start:i])
            start, size = i, 0
        size += cost
    if start < len(texts):
        slices.append(texts[start:])
    return slices
