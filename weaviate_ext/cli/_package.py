"""``weaviate-ext package``: a plugin directory as a pip-installable package."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from weaviate_ext.cli._app import _state, cli
from weaviate_ext.cli._new import shown_path
from weaviate_ext.cli._output import CliError
from weaviate_ext.progress import step
from weaviate_ext.scaffold.build import build_with_progress, find_manifest
from weaviate_ext.scaffold.package import build_wheel, package_plugin


def _wheel(project: Path, out: Path) -> Path:
    """The wheel of ``project`` built into ``out``, as a progress step."""
    with step(f"building the wheel of {project.name}", "built the wheel"):
        return build_wheel(project, out)


@cli.command("package")
@click.argument("path", type=click.Path(path_type=Path), default=Path("."), required=False)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Where the package project (and the wheel) go.",
)
@click.option(
    "--wheel",
    is_flag=True,
    help=(
        "Also build the wheel (pip wheel: offline with this environment's setuptools "
        ">= 70.1, else in an isolated build environment from the package index)."
    ),
)
@click.option("--build", "build_first", is_flag=True, help="Run the plugin's build.sh first.")
@click.option("--dist-name", help="The pip distribution name [default: weaviate-ext-NAME].")
@click.option("--version", "version", help="The package version [default: the manifest's].")
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Leave out files matching PATTERN (a name or a path in the plugin; repeatable).",
)
@click.option("--force", is_flag=True, help="Replace an existing package project.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (names, version, project, files, wheel) and nothing else.",
)
@click.pass_context
def package_command(
    ctx: click.Context,
    path: Path,
    out: Path,
    wheel: bool,
    build_first: bool,
    dist_name: str | None,
    version: str | None,
    exclude: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Wrap the plugin at PATH as a pip package that registers it with weaviate-ext.

    The package registers the plugin under its name in the entry-point group
    weaviate_ext and ships the plugin directory (manifest, binary, sources, a gRPC
    server) as package data; a wasm or native binary's sha256 is written into the
    shipped manifest and checked at every load. After `pip install` the plugin is in
    `weaviate-ext list` and can be called by name.
    """
    state = _state(ctx)
    echo = state.output.line
    manifest_path = find_manifest(path)
    if build_first:
        name = manifest_path.parent.resolve().name
        result = build_with_progress(manifest_path.parent, name, stream=state.verbose)
        if not result.ok:
            if not state.verbose:  # with -v the output has been shown as it came
                for line in result.tail().splitlines():
                    echo(f"    {line}", err=True)
            raise CliError(f"{path}: build.sh failed (exit {result.returncode})")
    packaged = package_plugin(
        manifest_path, out, dist_name=dist_name, version=version, exclude=exclude, force=force
    )
    if as_json:
        made = _wheel(packaged.project, out) if wheel else None
        state.output.json(
            {
                "name": packaged.name,
                "version": packaged.version,
                "dist_name": packaged.dist_name,
                "package": packaged.package,
                "sha256": packaged.sha256,
                "project": str(packaged.project.resolve()),
                "files": sorted(str(p.resolve()) for p in packaged.files),
                "wheel": str(made.resolve()) if made is not None else None,
            }
        )
        return
    echo(
        f"packaged {packaged.name} {packaged.version} as {packaged.dist_name} "
        f"(import package {packaged.package}) in {shown_path(packaged.project)}/"
    )
    if packaged.sha256:
        echo(f"  spec.sha256 of the shipped binary: {packaged.sha256}")
    target = shown_path(packaged.project)
    if wheel:
        made = _wheel(packaged.project, out)
        target = shown_path(made)
        echo(f"  wheel: {target}")
    echo("next:")
    echo(f"  pip install {shlex.quote(target)}")
    echo("  weaviate-ext list")
    echo(f"  weaviate-ext inspect {packaged.name}")
