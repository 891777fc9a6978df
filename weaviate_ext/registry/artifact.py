"""A plugin directory as an OCI artifact, and back.

The artifact is an OCI image manifest (``application/vnd.oci.image.manifest.v1+json``)
with ``artifactType`` :data:`ARTIFACT_TYPE`:

* a config blob (:data:`CONFIG_MEDIA_TYPE`): JSON with the manifest's metadata and the
  name of the manifest file in the directory (a directory can hold several, e.g. a
  ``plugin-native.yaml`` beside the ``plugin.yaml``);
* one layer per file, sorted by path, its media type by role (:func:`media_type_for`),
  annotated with ``org.opencontainers.image.title`` (the path relative to the plugin
  directory, ``/``-separated) and :data:`MODE_ANNOTATION` (``0755`` or ``0644``);
* annotations: ``org.opencontainers.image.title/version/description/authors`` and
  ``dev.weaviate-ext.plugin.name/version/type/runtime/manifest``.

The files are those ``weaviate-ext package`` ships (build leftovers, caches, dotfiles and
``tests/`` left out). Nothing time-dependent goes in and every JSON document is written
with sorted keys and no spaces, so the same directory always gives the same manifest
digest. Symlinks pointing out of the directory are refused, as are (on unpack) absolute
or ``..`` paths and anything larger than :data:`MAX_FILE_SIZE` / :data:`MAX_TOTAL_SIZE`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from weaviate_ext.errors import ArtifactIntegrityError, RegistryError, WeaviateExtError
from weaviate_ext.manifest import Manifest, load_manifest

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
"""The OCI image manifest media type (the artifact's own kind is its ``artifactType``)."""
ARTIFACT_TYPE = "application/vnd.weaviate-ext.plugin.v1"
"""``artifactType`` of a plugin artifact."""
CONFIG_MEDIA_TYPE = "application/vnd.weaviate-ext.plugin.config.v1+json"
"""Media type of the config blob (the plugin's metadata as JSON)."""
LAYER_MANIFEST = "application/vnd.weaviate-ext.plugin.manifest.v1+yaml"
LAYER_WASM = "application/vnd.weaviate-ext.plugin.wasm.v1"
LAYER_NATIVE = "application/vnd.weaviate-ext.plugin.native.v1"
LAYER_PROGRAM = "application/vnd.weaviate-ext.plugin.program.v1"
LAYER_README = "application/vnd.weaviate-ext.plugin.readme.v1+markdown"
LAYER_FILE = "application/vnd.weaviate-ext.plugin.file.v1"
LAYER_MEDIA_TYPES = frozenset(
    {LAYER_MANIFEST, LAYER_WASM, LAYER_NATIVE, LAYER_PROGRAM, LAYER_README, LAYER_FILE}
)

TITLE_ANNOTATION = "org.opencontainers.image.title"
MODE_ANNOTATION = "dev.weaviate-ext.file.mode"
PLUGIN_ANNOTATION = "dev.weaviate-ext.plugin"
"""Prefix of the plugin's own annotations (``dev.weaviate-ext.plugin.name`` ...)."""

MAX_FILE_SIZE = 512 * 1024 * 1024
"""Largest single file of an artifact (bytes)."""
MAX_TOTAL_SIZE = 1024 * 1024 * 1024
"""Largest artifact (bytes, all layers)."""
MAX_LAYERS = 10_000
"""Most files in an artifact."""


@attrs.frozen
class Blob:
    """One blob of an artifact: where its bytes are (a file or in memory) and its descriptor."""

    media_type: str
    digest: str
    size: int
    path: Path | None = None
    data: bytes | None = None
    annotations: Mapping[str, str] = attrs.field(factory=dict)

    def descriptor(self) -> dict[str, Any]:
        """The OCI descriptor of the blob."""
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        return desc

    def read(self) -> bytes:
        """The blob's bytes."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


@attrs.frozen
class Artifact:
    """A plugin directory as an OCI artifact, ready to push."""

    manifest: Manifest
    config: Blob
    layers: tuple[Blob, ...]
    manifest_bytes: bytes
    """The OCI manifest, byte for byte as pushed."""

    @property
    def digest(self) -> str:
        """The manifest digest (``sha256:...``): the artifact's identity."""
        return sha256_digest(self.manifest_bytes)

    @property
    def size(self) -> int:
        """Bytes of all blobs together."""
        return self.config.size + sum(layer.size for layer in self.layers)


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """``value`` as JSON with sorted keys and no whitespace (reproducible bytes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _file_digest(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def media_type_for(manifest: Manifest, rel: str) -> str:
    """The layer media type of file ``rel`` (a ``/`` path in the plugin directory)."""
    spec = manifest.spec
    if manifest.path is not None and rel == manifest.path.name:
        return LAYER_MANIFEST
    if spec.binary and PurePosixPath(rel) == PurePosixPath(spec.binary):
        return LAYER_WASM if spec.runtime == "wasm" else LAYER_NATIVE
    if spec.command and any(PurePosixPath(rel) == PurePosixPath(a) for a in spec.command[1:]):
        return LAYER_PROGRAM
    if spec.command and PurePosixPath(rel) == PurePosixPath(spec.command[0]):
        return LAYER_PROGRAM
    if rel.lower().startswith("readme"):
        return LAYER_README
    if rel.endswith((".yaml", ".yml")) and "/" not in rel:
        return LAYER_MANIFEST
    return LAYER_FILE


def _mode(path: Path) -> str:
    return "0755" if path.stat().st_mode & stat.S_IXUSR else "0644"


def plugin_files(directory: Path) -> list[tuple[str, Path]]:
    """The files of the plugin in ``directory`` as ``(relative posix path, path)``, sorted:
    what ``weaviate-ext package`` would ship. Refuses symlinks pointing outside it."""
    from weaviate_ext.scaffold.package import _excluded

    root = directory.resolve()
    found: list[tuple[str, Path]] = []
    for here, dirs, names in os.walk(directory, followlinks=False):
        base = Path(here)
        rel_base = base.relative_to(directory)
        kept = []
        for name in sorted(dirs):
            path = base / name
            if _excluded(rel_base / name, True, ()):
                continue
            if path.is_symlink():
                raise RegistryError(f"{path}: a symlinked directory cannot go into an artifact")
            kept.append(name)
        dirs[:] = kept
        for name in sorted(names):
            path = base / name
            rel = rel_base / name
            if _excluded(rel, False, ()):
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    raise RegistryError(f"{path}: symlink points outside the plugin directory")
            if not path.is_file():
                continue
            found.append((rel.as_posix(), path))
    return sorted(found)


def build_artifact(path: str | os.PathLike[str]) -> Artifact:
    """The artifact of the plugin at ``path`` (a directory's ``plugin.yaml``, or a manifest
    file such as ``plugin-native.yaml``). Its binary must exist (build the plugin first)."""
    given = Path(path)
    manifest_path = given / "plugin.yaml" if given.is_dir() else given
    if not manifest_path.is_file():
        raise RegistryError(f"{given}: no plugin.yaml there")
    manifest = load_manifest(manifest_path)
    directory = manifest_path.parent
    binary = manifest.binary_path
    if binary is not None and not binary.is_file():
        raise RegistryError(f"{binary}: does not exist; build the plugin first (./build.sh)")
    layers: list[Blob] = []
    total = 0
    for rel, file in plugin_files(directory):
        digest, size = _file_digest(file)
        if size > MAX_FILE_SIZE:
            raise RegistryError(f"{file}: {size} bytes is over the {MAX_FILE_SIZE}-byte cap")
        total += size
        annotations = {TITLE_ANNOTATION: rel, MODE_ANNOTATION: _mode(file)}
        layers.append(Blob(media_type_for(manifest, rel), digest, size, file, None, annotations))
    if total > MAX_TOTAL_SIZE:
        raise RegistryError(f"{directory}: {total} bytes is over the {MAX_TOTAL_SIZE}-byte cap")
    meta = plugin_metadata(manifest)
    config_bytes = canonical_json({**meta, "manifest": manifest_path.name, "schemaVersion": 1})
    config = Blob(
        CONFIG_MEDIA_TYPE, sha256_digest(config_bytes), len(config_bytes), None, config_bytes
    )
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
        "annotations": annotations_of(manifest, manifest_path.name),
    }
    return Artifact(manifest, config, tuple(layers), canonical_json(document))


def plugin_metadata(manifest: Manifest) -> dict[str, str]:
    """The manifest's metadata that travels with the artifact (name, version, type ...)."""
    meta = manifest.metadata
    values = {
        "name": manifest.name,
        "version": manifest.version,
        "type": manifest.spec.type,
        "runtime": manifest.spec.runtime,
        "description": getattr(meta, "description", None) or "",
        "author": getattr(meta, "author", None) or "",
    }
    return values


def annotations_of(manifest: Manifest, manifest_name: str) -> dict[str, str]:
    """The OCI manifest annotations of a plugin artifact."""
    meta = plugin_metadata(manifest)
    annotations = {
        "org.opencontainers.image.title": meta["name"],
        "org.opencontainers.image.version": meta["version"],
        "org.opencontainers.image.description": meta["description"],
        "org.opencontainers.image.authors": meta["author"],
        f"{PLUGIN_ANNOTATION}.manifest": manifest_name,
    }
    for key in ("name", "version", "type", "runtime"):
        annotations[f"{PLUGIN_ANNOTATION}.{key}"] = meta[key]
    return {k: v for k, v in annotations.items() if v}


# -- reading an artifact ------------------------------------------------------------------


@attrs.frozen
class Layer:
    """One file of a pulled artifact: its digest, size, path and mode."""

    digest: str
    size: int
    path: str
    mode: int
    media_type: str


@attrs.frozen
class ArtifactManifest:
    """A checked plugin artifact manifest, as pulled."""

    config: Layer
    layers: tuple[Layer, ...]
    annotations: Mapping[str, str]

    @property
    def manifest_name(self) -> str:
        """The file name of the plugin's manifest in the artifact."""
        return self.annotations.get(f"{PLUGIN_ANNOTATION}.manifest", "plugin.yaml")

    @property
    def size(self) -> int:
        """Bytes of all layers together."""
        return sum(layer.size for layer in self.layers)


def safe_path(text: str, where: str) -> str:
    """``text`` if it is a plain relative path inside a directory, else an error."""
    path = PurePosixPath(text)
    if (
        not text
        or "\\" in text
        or "\x00" in text
        or path.is_absolute()
        or any(part in ("..", "") for part in text.split("/"))
        or text.startswith("./")
    ):
        raise ArtifactIntegrityError(f"{where}: refusing the file path {text!r} (not relative)")
    return text


def _descriptor(value: Any, where: str) -> tuple[str, int, str]:
    if not isinstance(value, dict):
        raise ArtifactIntegrityError(f"{where}: a descriptor is not an object")
    digest, size, media_type = value.get("digest"), value.get("size"), value.get("mediaType")
    if not isinstance(digest, str) or not isinstance(size, int) or not isinstance(media_type, str):
        raise ArtifactIntegrityError(f"{where}: a descriptor lacks digest, size or mediaType")
    from weaviate_ext.registry.reference import check_digest

    try:
        check_digest(digest, where)
    except WeaviateExtError as exc:
        raise ArtifactIntegrityError(exc.reason) from None
    if size < 0 or size > MAX_FILE_SIZE:
        raise ArtifactIntegrityError(f"{where}: a blob of {size} bytes is over the cap")
    return digest, size, media_type


def read_artifact_manifest(data: bytes, where: str) -> ArtifactManifest:
    """Check that ``data`` is a plugin artifact manifest and read its layers."""
    try:
        document = json.loads(data)
    except ValueError:
        raise ArtifactIntegrityError(f"{where}: the manifest is not JSON") from None
    if not isinstance(document, dict):
        raise ArtifactIntegrityError(f"{where}: the manifest is not a JSON object")
    kind = document.get("artifactType")
    if kind != ARTIFACT_TYPE:
        raise ArtifactIntegrityError(
            f"{where}: not a weaviate-ext plugin artifact (artifactType {kind!r}, "
            f"expected {ARTIFACT_TYPE})"
        )
    digest, size, media_type = _descriptor(document.get("config"), where)
    if media_type != CONFIG_MEDIA_TYPE:
        raise ArtifactIntegrityError(f"{where}: config media type {media_type!r} is not a plugin's")
    config = Layer(digest, size, "", 0o644, media_type)
    raw_layers = document.get("layers")
    if not isinstance(raw_layers, list) or len(raw_layers) > MAX_LAYERS:
        raise ArtifactIntegrityError(f"{where}: the manifest's layers are not a list (or too many)")
    layers: list[Layer] = []
    seen: set[str] = set()
    for raw in raw_layers:
        digest, size, media_type = _descriptor(raw, where)
        annotations = raw.get("annotations") or {}
        title = annotations.get(TITLE_ANNOTATION) if isinstance(annotations, dict) else None
        if not isinstance(title, str):
            raise ArtifactIntegrityError(f"{where}: a layer has no {TITLE_ANNOTATION}")
        path = safe_path(title, where)
        if path.lower() in seen:
            raise ArtifactIntegrityError(f"{where}: the file {path!r} is in the artifact twice")
        seen.add(path.lower())
        mode = 0o755 if annotations.get(MODE_ANNOTATION) == "0755" else 0o644
        layers.append(Layer(digest, size, path, mode, media_type))
    total = sum(layer.size for layer in layers)
    if total > MAX_TOTAL_SIZE:
        raise ArtifactIntegrityError(f"{where}: {total} bytes is over the artifact size cap")
    annotations = document.get("annotations") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    clean = {str(k): str(v) for k, v in annotations.items()}
    result = ArtifactManifest(config, tuple(layers), clean)
    safe_path(result.manifest_name, where)
    return result
