"""``weaviate-ext validate``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import click

from weaviate_ext.cli._app import (
    _state,
    cli,
)
from weaviate_ext.cli._output import (
    one_line,
)
from weaviate_ext.errors import ManifestError, Problem
from weaviate_ext.manifest import Manifest, load_manifest

# ---------------------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------------------


def manifest_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Each path; for a directory, every ``plugin.yaml`` below it (hidden ones skipped).

    A directory without any is yielded itself, so that it is reported as a problem.
    """
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        found = [
            p
            for p in sorted(path.rglob("plugin.yaml"))
            if not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        yield from found or [path]


def validate_one(path: Path) -> tuple[Manifest | None, list[dict[str, Any]]]:
    """The manifest at ``path`` or its problems (as dicts); the binary must exist, and a
    native one must be an ELF shared library for this host."""
    if path.is_dir():
        problem = {"file": str(path), "line": 0, "field": "", "message": "no plugin.yaml below"}
        return None, [problem]
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        return None, [attrs.asdict(problem) for problem in exc.problems]
    binary_problem = native_binary_problem(manifest, path)
    if binary_problem is not None:
        return None, [attrs.asdict(binary_problem)]
    return manifest, []


def native_binary_problem(manifest: Manifest, path: Path) -> Problem | None:
    """The ELF header check of a ``runtime: native`` binary (the check the native bridge
    makes before it maps the file), as a problem at the line of ``spec.binary``."""
    binary = manifest.binary_path
    if manifest.spec.runtime != "native" or binary is None:
        return None
    from weaviate_ext.bridges.cabi import elfcheck  # pyelftools, only when needed

    try:
        elfcheck.check_file(binary)
    except elfcheck.ElfCheckError as exc:
        line = manifest.line_of("spec.binary")
        return Problem(str(path), line, "spec.binary", f"{manifest.spec.binary} {exc}")
    return None


@cli.command("validate")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH..."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per file.")
@click.pass_context
def validate_command(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Check manifests: each PATH is a plugin.yaml or a directory searched for them.

    Prints 'PATH: ok (...)' per valid file and 'file:line: field: message' per problem;
    exits 1 if any file is invalid. The binary must exist (a native one must be an ELF
    shared library for this host); dependencies are checked at load time, not here.
    """
    out = _state(ctx).output
    report = []
    for path in manifest_files(paths):
        manifest, problems = validate_one(path)
        report.append({"path": str(path), "valid": manifest is not None, "problems": problems})
        if as_json:
            continue
        if manifest is not None:
            spec = manifest.spec
            out.line(
                f"{path}: ok ({manifest.name} {manifest.version}, {spec.type}, {spec.runtime})"
            )
        for problem in problems:
            out.line(one_line(str(_problem_text(problem))))
    if as_json:
        out.json(report)
    if not all(entry["valid"] for entry in report):
        ctx.exit(1)


def _problem_text(problem: Mapping[str, Any]) -> str:
    where = f"{problem['file']}:{problem['line']}" if problem["line"] else problem["file"]
    field = f"{problem['field']}: " if problem["field"] else ""
    return f"{where}: {field}{problem['message']}"
