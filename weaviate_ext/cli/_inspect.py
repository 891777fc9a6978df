"""``weaviate-ext inspect``."""

from __future__ import annotations

from typing import Any

import attrs
import click

from weaviate_ext.cli._app import (
    _plugin,
    _state,
    cli,
)
from weaviate_ext.cli._output import (
    render_text,
    shown,
)
from weaviate_ext.manifest import Manifest, PluginConfig
from weaviate_ext.manifest.config import REDACTED

# ---------------------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------------------


def config_info(manifest: Manifest, config: PluginConfig) -> dict[str, Any]:
    """The config schema with resolved values; secret values and defaults redacted."""
    info: dict[str, Any] = {}
    for key, field in manifest.spec.config.items():
        entry: dict[str, Any] = {
            "type": field.type,
            "required": field.required,
            "secret": field.secret,
            "default": shown(field.default),
            "description": field.description,
        }
        if field.secret and field.default is not None:
            entry["default"] = REDACTED
        if key in config:
            entry["value"] = REDACTED if field.secret else shown(config[key])
        else:
            entry["value"] = None
        info[key] = entry
    return info


def spec_info(manifest: Manifest) -> dict[str, Any]:
    """The fields of ``spec`` that say how the plugin runs."""
    spec = manifest.spec
    return {
        "type": spec.type,
        "runtime": spec.runtime,
        "binary": spec.binary,
        "entrypoint": spec.entrypoint,
        "command": list(spec.command) if spec.command else None,
        "address": spec.address,
        "sha256": spec.sha256,
        "timeout": spec.timeout,
    }


def capabilities_info(manifest: Manifest) -> dict[str, Any]:
    """``spec.capabilities`` under the manifest's own key names."""
    caps = manifest.spec.capabilities
    return {
        "dimensions": caps.dimensions,
        "maxBatchSize": caps.max_batch_size,
        "deterministic": caps.deterministic,
        "normalized": caps.normalized,
        **shown(caps.extra),
    }


def manifest_info(manifest: Manifest, config: PluginConfig) -> dict[str, Any]:
    """Everything ``inspect`` shows about a manifest, JSON-ready and redacted."""
    meta = manifest.metadata
    resources = manifest.spec.resources
    return {
        "name": meta.name,
        "version": meta.version,
        "author": meta.author,
        "description": meta.description,
        "apiVersion": manifest.api_version,
        "kind": manifest.kind,
        "path": str(manifest.path) if manifest.path else None,
        "spec": spec_info(manifest),
        "capabilities": capabilities_info(manifest),
        "resources": {"memoryBytes": resources.memory, "cpuCores": resources.cpu},
        "dependencies": [
            {"name": d.name, "version": d.version} for d in manifest.spec.dependencies
        ],
        "config": config_info(manifest, config),
    }


def permissions_info(permissions: dict[str, Any], isolation: str | None) -> dict[str, Any]:
    """Requested and granted side by side, and whether the runtime enforces the grants:
    an in-process runtime (isolation ``none: ...``) can read whatever the host can, so its
    requests are shown and checked at load, not enforced."""
    in_process = (isolation or "").startswith("none")
    enforced = (
        "no: in the host's process, it can reach whatever the host can" if in_process else "yes"
    )
    return {**permissions, "enforced": enforced}


@cli.command("inspect")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def inspect_command(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show the manifest, resolved configuration (secrets redacted) and stats of NAME."""
    state = _state(ctx)
    manager = state.open_manager(ctx)
    manifest, config = _plugin(state, manager, name)
    info = manifest_info(manifest, config)
    row = next((r for r in manager.plugins() if r.name == name), None)
    info["source"] = row.source if row is not None else None
    info["isolation"] = row.isolation if row is not None else None
    info["permissions"] = permissions_info(manager.permissions(name), info["isolation"])
    stats = manager.stats()[name]
    info["stats"] = {**attrs.asdict(stats), "mean_ms": stats.mean_ms}
    if as_json:
        state.output.json(info)
        return
    for line in render_text(info):
        state.output.line(line)
