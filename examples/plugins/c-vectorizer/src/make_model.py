"""Write c-embedder's model file: dims, seed and one weight per dimension.

Format (little-endian): b"WVHM", u32 version 1, u32 dims, u32 seed, dims x float32.
The weights are a deterministic function of the dimension, so every build writes the
same bytes.
"""

from __future__ import annotations

import struct
import sys

DIMS = 768
SEED = 0x5EED1234


def weight(i: int) -> float:
    """A weight in [0.5, 1.5), from a 32-bit integer hash of ``i``."""
    h = (i * 2654435761 + SEED) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x45D9F3B) & 0xFFFFFFFF
    h ^= h >> 16
    return 0.5 + (h % 1000) / 1000.0


def main(path: str) -> None:
    """Write the model to ``path``."""
    data = struct.pack("<4sIII", b"WVHM", 1, DIMS, SEED)
    data += struct.pack(f"<{DIMS}f", *(weight(i) for i in range(DIMS)))
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
