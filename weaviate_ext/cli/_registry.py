"""``weaviate-ext push|pull|search|sign|cache``: plugins as OCI artifacts (docs/registry.md).

The registry settings (signature policy, digest pins, cache, plain-HTTP hosts) come
from the ``_registry`` section of the global ``--config-file``.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from weaviate_ext.cli._app import _state, cli
from weaviate_ext.cli._output import CliError, format_table

if TYPE_CHECKING:
    from weaviate_ext.registry.settings import RegistrySettings

NAME_KEY = "dev.weaviate-ext.plugin.name"
SEARCH_COLUMNS = ("reference", "name", "version", "type", "runtime", "description")


def registry_settings(ctx: click.Context) -> RegistrySettings:
    """The ``_registry`` section of the global ``--config-file`` (defaults without one)."""
    from weaviate_ext.registry.settings import RegistrySettings

    state = _state(ctx)
    if state.registry is None:
        return RegistrySettings.default()
    return RegistrySettings.from_data(state.registry, state.registry_base)


def _insecure_option(command: Any) -> Any:
    return click.option(
        "--insecure",
        is_flag=True,
        help="Plain HTTP to a registry that is not on loopback (loopback always is).",
    )(command)


def _json_option(command: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON and nothing else.")(
        command
    )


def _signing_key(path: Path) -> Any:
    from weaviate_ext.registry.signing import load_signing_key

    return load_signing_key(path)


@cli.command("push")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.argument("reference")
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="KEY",
    help="Also sign the pushed artifact with this cosign key (password: $COSIGN_PASSWORD).",
)
@_insecure_option
@_json_option
@click.pass_context
def push_command(
    ctx: click.Context,
    path: Path,
    reference: str,
    sign_key: Path | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Push the plugin at PATH (a directory's plugin.yaml, or a manifest file) to
    REFERENCE, oci://HOST[:PORT]/REPO:TAG.

    The artifact holds the manifest, the binary or program, the README and the other
    files of the plugin directory, one layer each; the same directory always gives the
    same digest. Build the plugin first (./build.sh).
    """
    from weaviate_ext.registry.push import push_plugin, sign_artifact

    state = _state(ctx)
    pushed = push_plugin(path, reference, insecure=insecure)
    signed = None
    if sign_key is not None:
        _, signed = sign_artifact(pushed.pinned, _signing_key(sign_key), insecure=insecure)
    if as_json:
        state.output.json(
            {
                "reference": str(pushed.reference),
                "digest": pushed.digest,
                "pinned": str(pushed.pinned),
                "uploaded": pushed.uploaded,
                "size": pushed.size,
                "signature_tag": signed,
            }
        )
        return
    echo = state.output.line
    echo(f"pushed {pushed.reference} ({pushed.size} bytes, {pushed.uploaded} blobs uploaded)")
    echo(f"  digest: {pushed.digest}")
    if signed:
        echo(f"  signed: {signed}")
    echo(f"  pull:   weaviate-ext pull {pushed.pinned}")


@cli.command("pull")
@click.argument("reference")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@_insecure_option
@_json_option
@click.pass_context
def pull_command(
    ctx: click.Context, reference: str, directory: Path | None, insecure: bool, as_json: bool
) -> None:
    """Pull REFERENCE (oci://HOST/REPO:TAG or @sha256:...) into the cache, verified
    against the registry policy of --config-file (unsigned artifacts are refused by
    default), and copy it to DIRECTORY if given."""
    from weaviate_ext.registry.pull import copy_out, pull

    state = _state(ctx)
    settings = registry_settings(ctx)
    pulled = pull(reference, settings=settings, insecure=insecure or None)
    target = pulled.directory
    if directory is not None:
        copy_out(pulled, directory)
        target = directory
    if as_json:
        state.output.json(
            {
                "reference": str(pulled.reference),
                "digest": pulled.digest,
                "pinned": str(pulled.pinned),
                "directory": str(target.resolve()),
                "manifest": str((target / pulled.manifest_name).resolve()),
                "annotations": pulled.annotations,
            }
        )
        return
    echo = state.output.line
    echo(f"pulled {pulled.reference}")
    echo(f"  digest: {pulled.digest}")
    echo(f"  in:     {target}")
    echo(f"  load:   manager.load({str(pulled.pinned)!r})")
    if directory is not None:
        name = pulled.annotations.get(NAME_KEY, "NAME")
        echo(f"  or:     weaviate-ext --plugins {target} call {name} ...")


def _search_rows(registry: str, term: str, insecure: bool) -> list[dict[str, Any]]:
    from weaviate_ext.registry.artifact import ARTIFACT_TYPE
    from weaviate_ext.registry.client import RegistryClient

    rows: list[dict[str, Any]] = []
    needle = term.lower()
    with RegistryClient(registry, insecure=insecure) as client:
        for repository in client.catalog():
            for tag in sorted(client.tags(repository)):
                if tag.endswith((".sig", ".att", ".sbom")):
                    continue
                what = f"oci://{registry}/{repository}:{tag}"
                found = client.find_manifest(repository, tag, what)
                if found is None:
                    continue
                try:
                    document = json.loads(found[0])
                except ValueError:
                    continue
                if not isinstance(document, dict) or document.get("artifactType") != ARTIFACT_TYPE:
                    continue
                notes = {str(k): str(v) for k, v in (document.get("annotations") or {}).items()}
                row = {
                    "reference": what,
                    "digest": found[1],
                    "name": notes.get("dev.weaviate-ext.plugin.name", ""),
                    "version": notes.get("dev.weaviate-ext.plugin.version", ""),
                    "type": notes.get("dev.weaviate-ext.plugin.type", ""),
                    "runtime": notes.get("dev.weaviate-ext.plugin.runtime", ""),
                    "description": notes.get("org.opencontainers.image.description", ""),
                    "author": notes.get("org.opencontainers.image.authors", ""),
                    "annotations": notes,
                }
                haystack = " ".join([repository, tag, *notes.values()]).lower()
                if needle in haystack:
                    rows.append(row)
    return rows


@cli.command("search")
@click.argument("term", default="", required=False)
@click.option("--registry", required=True, metavar="HOST[:PORT]", help="The registry to search.")
@_insecure_option
@_json_option
@click.pass_context
def search_command(
    ctx: click.Context, term: str, registry: str, insecure: bool, as_json: bool
) -> None:
    """Find plugin artifacts in a registry whose repository, tag or annotations contain
    TERM (case-insensitive; empty: all), from its catalog and tags."""
    state = _state(ctx)
    registry = registry.removeprefix("oci://").rstrip("/")
    rows = _search_rows(registry, term, insecure or registry_settings(ctx).is_insecure(registry))
    if as_json:
        state.output.json(rows)
        return
    if not rows:
        state.output.line(f"no plugin artifacts matching {term!r} in {registry}", err=True)
        return
    header = [c.upper() for c in SEARCH_COLUMNS]
    table = [[str(row[c]) or "-" for c in SEARCH_COLUMNS] for row in rows]
    for line in format_table(header, table):
        state.output.line(line)


@cli.command("sign")
@click.argument("reference")
@click.option(
    "--key",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The cosign private key (cosign.key; password: $COSIGN_PASSWORD).",
)
@_insecure_option
@_json_option
@click.pass_context
def sign_command(
    ctx: click.Context, reference: str, key: Path, insecure: bool, as_json: bool
) -> None:
    """Sign the artifact REFERENCE with KEY, as `cosign sign --key` does: the signature
    goes to the registry at the tag sha256-<hex>.sig, where cosign finds it."""
    from weaviate_ext.registry.push import sign_artifact
    from weaviate_ext.registry.reference import parse_reference

    state = _state(ctx)
    ref = parse_reference(reference)
    digest, tag = sign_artifact(ref, _signing_key(key), insecure=insecure)
    if as_json:
        state.output.json({"reference": str(ref), "digest": digest, "signature_tag": tag})
        return
    state.output.line(f"signed {ref.with_digest(digest)}")
    state.output.line(f"  signature: {ref.docker_reference}:{tag}")


# ---------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------


@cli.group("cache")
def cache_group() -> None:
    """The local cache of pulled plugin artifacts ($WEAVIATE_EXT_OCI_CACHE)."""


def _size(value: str | None) -> int | None:
    from weaviate_ext.registry.settings import parse_size

    if value is None:
        return None
    try:
        return parse_size(value, "--max-size")
    except Exception as exc:
        raise click.BadParameter(str(exc)) from None


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


@cache_group.command("list")
@_json_option
@click.pass_context
def cache_list(ctx: click.Context, as_json: bool) -> None:
    """List the plugins in the cache, most recently used first."""
    state = _state(ctx)
    cache = registry_settings(ctx).cache()
    entries = cache.entries()
    if as_json:
        state.output.json(
            {
                "root": str(cache.root),
                "size": cache.size(),
                "max_size": cache.max_size,
                "entries": [
                    {
                        "digest": e.digest,
                        "reference": e.reference,
                        "name": e.name,
                        "version": e.version,
                        "size": e.size,
                        "last_used": _when(e.last_used),
                        "directory": str(e.directory),
                    }
                    for e in entries
                ],
            }
        )
        return
    state.output.line(f"cache {cache.root}: {cache.size()} of {cache.max_size} bytes")
    if not entries:
        return
    header = ["NAME", "VERSION", "SIZE", "LAST USED", "DIGEST", "REFERENCE"]
    table = [
        [e.name or "-", e.version or "-", str(e.size), _when(e.last_used), e.digest, e.reference]
        for e in entries
    ]
    for line in format_table(header, table):
        state.output.line(line)


@cache_group.command("prune")
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Prune down to SIZE (bytes, or like 512Mi; 0 empties the cache) [default: the cap].",
)
@_json_option
@click.pass_context
def cache_prune(ctx: click.Context, max_size: str | None, as_json: bool) -> None:
    """Remove leftovers of interrupted pulls, then the least recently used plugins until
    the cache is under its size cap."""
    state = _state(ctx)
    cache = registry_settings(ctx).cache()
    try:
        removed = cache.prune(_size(max_size))
    except OSError as exc:
        raise CliError(f"cannot prune {cache.root}: {exc.strerror}") from None
    if as_json:
        state.output.json(
            {"removed": [e.digest for e in removed], "size": cache.size(), "root": str(cache.root)}
        )
        return
    for entry in removed:
        state.output.line(f"removed {entry.name} {entry.version} ({entry.digest})")
    state.output.line(f"cache {cache.root}: {cache.size()} bytes")


@cli.command("generate-key-pair")
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False
)
@_json_option
@click.pass_context
def generate_key_pair_command(ctx: click.Context, directory: Path, as_json: bool) -> None:
    """Make cosign.key and cosign.pub in DIRECTORY, as `cosign generate-key-pair` does
    (the private key is encrypted under $COSIGN_PASSWORD; empty if unset). Give
    cosign.pub to the hosts that should trust your artifacts; keep cosign.key."""
    from weaviate_ext.registry.signing import generate_key_pair

    state = _state(ctx)
    directory.mkdir(parents=True, exist_ok=True)
    private, public = generate_key_pair(directory)
    if as_json:
        state.output.json({"private_key": str(private), "public_key": str(public)})
        return
    state.output.line(f"private key: {private} (keep it secret)")
    state.output.line(f"public key:  {public} (trusted by hosts in _registry.policy)")
