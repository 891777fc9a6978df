"""``weaviate-ext new``: a plugin directory from the templates, for every type and runtime.

The templates are package data (``weaviate_ext/scaffold/templates``), rendered with
Jinja2. A plugin of runtime ``R`` in language ``L`` is made from the folders
``common`` (manifest, README, tests, .gitignore) and ``<R>-<L>`` (sources and
``build.sh``); a template folder or file whose name starts with ``_`` is a partial
(included by the others, never copied), ``.j2`` files are rendered and the suffix
dropped, ``__module__`` in a path becomes the plugin's module name and a leading
``dot-`` becomes ``.``. SDK files are then copied in (:mod:`weaviate_ext.scaffold.sdk`).
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shutil
import stat
from collections.abc import Iterator, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from weaviate_ext._version import __version__
from weaviate_ext.errors import WeaviateExtError
from weaviate_ext.manifest import FRAMEWORK_NAME, PLUGIN_TYPES
from weaviate_ext.plugin_types import TypeTable
from weaviate_ext.scaffold import sdk

if TYPE_CHECKING:
    import jinja2

RUNTIMES = ("python", "wasm", "native", "grpc")
"""Every runtime a scaffold exists for."""

LANGUAGES: dict[str, tuple[str, ...]] = {
    "python": ("python",),
    "wasm": ("c", "rust"),
    "native": ("c", "rust"),
    "grpc": ("python", "node"),
}
"""The languages of each runtime's scaffolds; the first is the default."""

LANGUAGE_NAMES = {"python": "Python", "c": "C", "rust": "Rust", "node": "Node.js"}
"""How the docs and messages name each language."""

COMBINATIONS: tuple[tuple[str, str, str], ...] = tuple(
    (kind, runtime, lang)
    for kind in PLUGIN_TYPES
    for runtime in RUNTIMES
    for lang in LANGUAGES[runtime]
)
"""Every ``(type, runtime, language)`` a plugin can be scaffolded for."""

NAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
"""A plugin name, as the manifest schema wants it (a DNS label)."""

DIMENSIONS = 256
"""The dimensions of the scaffolded vectorizers."""

SERVICES: Mapping[str, str] = TypeTable(lambda t: t.grpc_service)
"""The gRPC service of each plugin type (from :mod:`weaviate_ext.plugin_types`)."""

DEV_API_KEY = "dev-key-change-me"
"""The scaffolded auth plugins' default key (the manifest says to replace it)."""


class ScaffoldError(WeaviateExtError):
    """A plugin could not be scaffolded, built, tested or packaged."""


@attrs.frozen
class Scaffold:
    """A plugin directory ``new`` wrote: where, what, and the files it holds."""

    directory: Path
    name: str
    type: str
    runtime: str
    lang: str
    files: tuple[Path, ...]

    @property
    def manifest(self) -> Path:
        """The plugin's ``plugin.yaml``."""
        return self.directory / "plugin.yaml"


def check_name(name: str) -> str:
    """``name`` if it is a valid plugin name, else a :class:`ScaffoldError` saying why."""
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a valid plugin name: use 1 to 63 lowercase letters, digits and "
            "'-', starting and ending with a letter or digit (e.g. my-reranker)"
        )
    if name == FRAMEWORK_NAME:
        raise ScaffoldError(f"{name!r} is the framework's own name; pick another plugin name")
    return name


def default_language(runtime: str) -> str:
    """The language a runtime's scaffold is written in when none is asked for."""
    return LANGUAGES[runtime][0]


def check_combination(kind: str, runtime: str, lang: str | None) -> str:
    """The language to use for ``(kind, runtime, lang)``, or a :class:`ScaffoldError`."""
    if kind not in PLUGIN_TYPES:
        raise ScaffoldError(f"unknown plugin type {kind!r}: one of {', '.join(PLUGIN_TYPES)}")
    if runtime not in LANGUAGES:
        raise ScaffoldError(f"unknown runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    lang = lang or default_language(runtime)
    if lang not in LANGUAGES[runtime]:
        offered = ", ".join(LANGUAGES[runtime])
        raise ScaffoldError(f"runtime {runtime} has no {lang!r} scaffold; --lang: {offered}")
    return lang


def module_name(name: str) -> str:
    """A Python/Rust/C identifier for plugin ``name`` (``my-reranker`` -> ``my_reranker``)."""
    ident = name.replace("-", "_")
    if ident[0].isdigit() or keyword.iskeyword(ident):
        ident = f"plugin_{ident}"
    return ident


def class_name(name: str) -> str:
    """A class name for plugin ``name`` (``my-reranker`` -> ``MyReranker``)."""
    ident = "".join(part[:1].upper() + part[1:] for part in name.split("-") if part)
    return f"Plugin{ident}" if ident[0].isdigit() else ident


def template_context(
    name: str, kind: str, runtime: str, lang: str, description: str | None, author: str | None
) -> dict[str, Any]:
    """The variables every template sees."""
    module = module_name(name)
    a_type = f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
    return {
        "name": name,
        "module": module,
        "crate": module,
        "class_name": class_name(name),
        "type": kind,
        "a_type": a_type,
        "dist_module": "weaviate_ext_" + name.replace("-", "_"),
        "dist_name": f"weaviate-ext-{name}",
        "runtime": runtime,
        "lang": lang,
        "lang_name": LANGUAGE_NAMES[lang],
        "service": SERVICES[kind],
        "dims": DIMENSIONS,
        "dev_api_key": DEV_API_KEY,
        "description": description
        or f"{a_type.capitalize()} plugin ({runtime} runtime, {LANGUAGE_NAMES[lang]})",
        "author": author or "",
        "framework_version": __version__,
        "binary": {"wasm": "plugin.wasm", "native": "plugin.so"}.get(runtime),
    }


def templates_root() -> Traversable:
    """The package's template folder."""
    return files("weaviate_ext.scaffold") / "templates"


def _environment() -> jinja2.Environment:
    import jinja2  # imported when a template is rendered, not with the command line

    root = templates_root()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    # a double-quoted scalar that is valid YAML, JSON, Python, Rust and JavaScript
    env.filters["yaml_str"] = lambda text: json.dumps(str(text), ensure_ascii=False)
    return env


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    """``(relative path, file)`` of every non-partial file below ``folder``."""
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("_") and not entry.name.startswith("__module__"):
            continue
        if entry.name == "__pycache__":
            continue
        rel = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _walk(entry, f"{rel}/")
        else:
            yield rel, entry


def _target(rel: str, context: dict[str, Any]) -> str:
    parts = []
    for part in rel.split("/"):
        part = part.replace("__module__", context["module"])
        if part.startswith("dot-"):
            part = "." + part[len("dot-") :]
        parts.append(part.removesuffix(".j2"))
    return "/".join(parts)


def render_plugin(destination: Path, context: dict[str, Any]) -> list[Path]:
    """Render the templates of ``context``'s runtime and language into ``destination``."""
    env = _environment()
    root = templates_root()
    written: list[Path] = []
    for folder in ("common", f"{context['runtime']}-{context['lang']}"):
        for rel, entry in _walk(root / folder):
            path = destination / _target(rel, context)
            path.parent.mkdir(parents=True, exist_ok=True)
            if rel.endswith(".j2"):
                text = env.get_template(f"{folder}/{rel}").render(context)
                path.write_text(text, encoding="utf-8")
            else:
                path.write_bytes(entry.read_bytes())
            if path.name.endswith(".sh"):
                path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            written.append(path)
    return written


def create_plugin(
    name: str,
    kind: str,
    runtime: str,
    lang: str | None = None,
    parent: str | os.PathLike[str] = ".",
    *,
    description: str | None = None,
    author: str | None = None,
) -> Scaffold:
    """Write a new plugin ``parent/name``: manifest, sources, ``build.sh``, README, tests.

    Refuses an invalid name, an unknown combination and an existing directory
    (:class:`ScaffoldError`). Nothing is built.
    """
    check_name(name)
    lang = check_combination(kind, runtime, lang)
    directory = Path(parent) / name
    if directory.exists() or directory.is_symlink():
        raise ScaffoldError(f"{directory} already exists; pick another name or remove it first")
    if not Path(parent).is_dir():
        raise ScaffoldError(f"{parent}: not a directory")
    context = template_context(name, kind, runtime, lang, description, author)
    # find the SDK files before writing anything: a missing SDK leaves no half plugin
    if lang == "c":
        sdk.sdk_root(sdk.C_SDK_FILES[0][0])
    elif lang == "rust":
        sdk.sdk_root(f"{sdk.RUST_SDK_DIR}/Cargo.toml")
    elif lang == "node":
        sdk.sdk_root(sdk.PROTO_FILES[0][0])
    directory.mkdir()
    try:
        written = render_plugin(directory, context)
        if lang == "c":
            written += sdk.vendor(sdk.C_SDK_FILES, directory)
        elif lang == "rust":
            written += sdk.vendor_rust_sdk(directory)
        elif lang == "node":
            written += sdk.vendor(sdk.PROTO_FILES, directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # never leave half a plugin behind
        raise
    return Scaffold(directory, name, kind, runtime, lang, tuple(written))
