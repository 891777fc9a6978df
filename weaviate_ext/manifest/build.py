"""Building the frozen attrs model from manifest data that has passed every check."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from weaviate_ext.manifest import quantities
from weaviate_ext.manifest._yaml import Positions
from weaviate_ext.manifest.config import Secret
from weaviate_ext.manifest.model import (
    Capabilities,
    ConfigField,
    Dependency,
    DirectoryGrant,
    Manifest,
    Metadata,
    Permissions,
    Resources,
    Spec,
    Tls,
)

KNOWN_CAPABILITIES = (
    "dimensions",
    "maxBatchSize",
    "deterministic",
    "normalized",
    "batchSafe",
)
"""Capability keys with a field of their own; others go to ``Capabilities.extra``."""


# -- building the model -------------------------------------------------------------


def build_manifest(data: dict[str, Any], positions: Positions, path: Path | None) -> Manifest:
    metadata = data["metadata"]
    spec = data["spec"]
    return Manifest(
        metadata=Metadata(
            name=metadata["name"],
            version=metadata["version"],
            author=metadata.get("author", ""),
            description=metadata.get("description", ""),
        ),
        spec=_build_spec(spec, positions),
        api_version=data["apiVersion"],
        kind=data["kind"],
        path=path,
        positions=positions,
    )


def _build_spec(spec: dict[str, Any], positions: Positions) -> Spec:
    command = spec.get("command")
    timeout = spec.get("timeout")
    return Spec(
        type=spec["type"],
        runtime=spec["runtime"],
        binary=spec.get("binary"),
        entrypoint=spec.get("entrypoint"),
        command=tuple(shlex.split(command) if isinstance(command, str) else command)
        if command is not None
        else None,
        address=spec.get("address"),
        sha256=spec["sha256"].lower() if "sha256" in spec else None,
        timeout=quantities.parse_duration(timeout) if timeout is not None else None,
        max_concurrency=spec.get("maxConcurrency"),
        dependencies=tuple(
            Dependency(
                name=item["name"],
                version=item["version"],
                line=positions.get(f"spec.dependencies.{index}", 0),
            )
            for index, item in enumerate(spec.get("dependencies", []))
        ),
        resources=_build_resources(spec.get("resources", {})),
        capabilities=_build_capabilities(spec.get("capabilities", {})),
        config={
            key: _build_config_field(key, entry, positions.get(f"spec.config.{key}", 0))
            for key, entry in spec.get("config", {}).items()
        },
        permissions=_build_permissions(spec.get("permissions", {})),
        tls=_build_tls(spec["tls"]) if "tls" in spec else None,
    )


def _build_resources(resources: dict[str, Any]) -> Resources:
    memory, cpu = resources.get("memory"), resources.get("cpu")
    return Resources(
        memory=quantities.parse_memory(memory) if memory is not None else None,
        cpu=quantities.parse_cpu(cpu) if cpu is not None else None,
    )


def _build_capabilities(capabilities: dict[str, Any]) -> Capabilities:
    return Capabilities(
        dimensions=capabilities.get("dimensions"),
        max_batch_size=capabilities.get("maxBatchSize"),
        deterministic=capabilities.get("deterministic", False),
        normalized=capabilities.get("normalized", False),
        batch_safe=capabilities.get("batchSafe", False),
        extra={k: v for k, v in capabilities.items() if k not in KNOWN_CAPABILITIES},
    )


def _build_config_field(name: str, entry: dict[str, Any], line: int) -> ConfigField:
    secret = entry.get("secret", False)
    default = entry.get("default")
    return ConfigField(
        name=name,
        type=entry["type"],
        required=entry.get("required", False),
        secret=secret,
        default=Secret(default) if secret and default is not None else default,
        description=entry.get("description", ""),
        line=line,
    )


def _build_permissions(permissions: dict[str, Any]) -> Permissions:
    return Permissions(
        env=tuple(permissions.get("env", ())),
        directories=tuple(
            DirectoryGrant(host=d["host"], guest=d["guest"], mode=d.get("mode", "ro"))
            for d in permissions.get("directories", ())
        ),
        network=permissions.get("network", False),
    )


def _build_tls(tls: dict[str, Any]) -> Tls:
    return Tls(
        ca=tls.get("ca"),
        cert=tls.get("cert"),
        key=tls.get("key"),
        server_name=tls.get("serverName"),
    )
