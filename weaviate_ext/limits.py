"""Saying, once per load, which ``spec.resources`` a runtime cannot enforce.

A manifest may ask for ``resources.memory`` and ``resources.cpu``; whether they take
effect depends on where the plugin runs:

========================  ===========================  ===========================
runtime                   memory                       cpu
========================  ===========================  ===========================
wasm                      store limit                  instance pool size
grpc, ``spec.command``    ``RLIMIT_AS``                CPU affinity (pinning)
grpc, ``spec.address``    the service's business       the service's business
native                    not enforced (host process)  not enforced (host process)
python                    not enforced (host process)  not enforced (host process)
========================  ===========================  ===========================

Each runtime's make-plugin function calls :func:`warn_unenforced` with what it enforces;
a manifest asking for more gets exactly one warning naming the fields, so a limit that
does nothing never looks like a limit.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from weaviate_ext.manifest import Manifest

FIELDS: tuple[str, ...] = ("memory", "cpu")
"""The fields of ``spec.resources``, in the order warnings name them."""


def unenforced(manifest: Manifest, enforced: Collection[str]) -> list[str]:
    """The ``spec.resources`` fields ``manifest`` sets that are not in ``enforced``."""
    resources = manifest.spec.resources
    return [
        field for field in FIELDS if getattr(resources, field) is not None and field not in enforced
    ]


def warn_unenforced(
    manifest: Manifest,
    enforced: Collection[str],
    log: logging.Logger,
    why: str,
) -> list[str]:
    """Log one warning naming the ``spec.resources`` fields of ``manifest`` that its
    runtime does not enforce (none: no warning); returns those fields.

    ``why`` says why not, e.g. ``"the python runtime runs in the host process"``.
    """
    fields = unenforced(manifest, enforced)
    if fields:
        names = " and ".join(f"spec.resources.{field}" for field in fields)
        log.warning(
            "plugin %s: %s %s not enforced: %s (%s)",
            manifest.name,
            names,
            "is" if len(fields) == 1 else "are",
            why,
            manifest.where(f"spec.resources.{fields[0]}"),
        )
    return fields
