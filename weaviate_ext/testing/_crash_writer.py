"""The writer child of :func:`weaviate_ext.testing.check_crash_durability`.

    python -m weaviate_ext.testing._crash_writer SPEC_JSON START

``SPEC_JSON`` names the plugin (``{"target": {"name": ...} | {"manifest": ...},
"config": {...}}``). The writer loads it through a :class:`~weaviate_ext.PluginManager`,
prints ``ready``, then performs :func:`~weaviate_ext.testing.durability.operation`
START, START+1, ... forever, printing ``ack <i>`` (flushed) after each one returned: an
acknowledged write. The check kills it with SIGKILL mid-loop.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from weaviate_ext.testing.durability import open_storage, operation, record


def main(spec_path: str, start: int) -> None:
    """Write forever from operation ``start``, printing ``ack <i>`` after each one."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    with open_storage(spec["target"], spec["config"]) as storage:
        print("ready", flush=True)
        i = start
        while True:
            kind, key, version = operation(i)
            if kind == "put":
                storage.store(key, record(key, version))
            else:
                storage.delete(key)
            print(f"ack {i}", flush=True)
            i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
