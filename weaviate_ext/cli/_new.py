"""``weaviate-ext new``: scaffold a plugin of any type for any runtime."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from weaviate_ext.cli._app import _state, cli
from weaviate_ext.manifest import PLUGIN_TYPES
from weaviate_ext.scaffold.create import (
    LANGUAGE_NAMES,
    LANGUAGES,
    RUNTIMES,
    create_plugin,
)

ALL_LANGUAGES = tuple(dict.fromkeys(lang for langs in LANGUAGES.values() for lang in langs))


def shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it, for commands."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def next_commands(directory: Path, kind: str) -> list[str]:
    """The three commands to run after ``new``: build, test, dev."""
    rel = shown_path(directory)
    where = shlex.quote(rel)
    build = f"{where}/build.sh" if rel.startswith(("/", ".")) else f"./{where}/build.sh"
    test = f"weaviate-ext test {where}"
    if kind == "auth":
        test += " --credentials api_key=dev-key-change-me --invalid-credentials api_key=wrong"
    return [build, test, f"weaviate-ext dev {where}"]


@cli.command("new")
@click.argument("name")
@click.option(
    "--type",
    "kind",
    required=True,
    type=click.Choice(PLUGIN_TYPES),
    help="The plugin type.",
)
@click.option("--runtime", required=True, type=click.Choice(RUNTIMES), help="How the host runs it.")
@click.option(
    "--lang",
    type=click.Choice(ALL_LANGUAGES),
    help="The language: python (python, grpc), c or rust (wasm, native), node (grpc). "
    "Default: python for python and grpc, c for wasm and native.",
)
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the NAME directory.",
)
@click.option("--description", help="metadata.description of the manifest.")
@click.option("--author", help="metadata.author of the manifest.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (name, type, runtime, lang, directory, files, next) "
    "and nothing else.",
)
@click.pass_context
def new_command(
    ctx: click.Context,
    name: str,
    kind: str,
    runtime: str,
    lang: str | None,
    parent: Path,
    description: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Create a new plugin NAME: plugin.yaml, src/, build.sh, README.md and tests/.

    The plugin is a small working implementation of its type that builds, loads and
    passes the conformance suite. An existing directory is never overwritten.

    \b
    weaviate-ext new my-reranker --type reranker --runtime wasm --lang rust
    """
    state = _state(ctx)
    scaffold = create_plugin(
        name, kind, runtime, lang, parent, description=description, author=author
    )
    out = state.output
    if as_json:
        directory = scaffold.directory.resolve()
        out.json(
            {
                "name": scaffold.name,
                "type": scaffold.type,
                "runtime": scaffold.runtime,
                "lang": scaffold.lang,
                "directory": str(directory),
                "manifest": str(directory / "plugin.yaml"),
                "files": sorted(str(p.resolve()) for p in scaffold.files),
                "next": next_commands(scaffold.directory, kind),
            }
        )
        return
    where = shown_path(scaffold.directory)
    out.line(
        f"created {where}/: a {kind} plugin for the {runtime} runtime, "
        f"in {LANGUAGE_NAMES[scaffold.lang]}"
    )
    for path in sorted(scaffold.files):
        rel = path.relative_to(scaffold.directory)
        if rel.parts[0] not in ("sdk", "proto", "hookspecs"):
            out.line(f"  {rel.as_posix()}")
    vendored = sorted({p.relative_to(scaffold.directory).parts[0] for p in scaffold.files})
    for folder in ("hookspecs", "sdk", "proto"):
        if folder in vendored:
            out.line(f"  {folder}/ (copied from weaviate-ext)")
    out.line("next:")
    for command in next_commands(scaffold.directory, kind):
        out.line(f"  {command}")
