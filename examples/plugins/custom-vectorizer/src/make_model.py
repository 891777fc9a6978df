"""Write custom-embedder's model file: b"WVHM", u32 version 1, u32 dims, u32 seed, then
dims float32 weights (little-endian), a deterministic function of the dimension, so
every build writes the same bytes.

    python3 src/make_model.py OUT [DIMS]
"""

from __future__ import annotations

import struct
import sys

SEED = 0x0BADC0DE


def weight(i: int) -> float:
    """A weight in [0.5, 1.5) from a 32-bit integer hash of ``i``."""
    h = (i * 2246822519 + SEED) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & 0xFFFFFFFF
    h ^= h >> 12
    return 0.5 + (h % 1000) / 1000.0


def main(path: str, dims: int) -> None:
    """Write the model to ``path``."""
    data = struct.pack("<4sIII", b"WVHM", 1, dims, SEED)
    data += struct.pack(f"<{dims}f", *(weight(i) for i in range(dims)))
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 768)
