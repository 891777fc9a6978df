"""Pulling a plugin artifact: resolve, check the policy, download, verify, unpack.

The order is fixed, so nothing unchecked is ever unpacked or loaded:

1. resolve the reference to a manifest digest (a reference by digest must get exactly
   that manifest; a digest pinned in the host's policy must match);
2. fetch the signature manifest at cosign's tag (``sha256-<hex>.sig``) and its payloads;
3. check them against the host's :class:`~weaviate_ext.registry.policy.RegistryPolicy`
   (which keys it trusts for the repository, whether unsigned is allowed) — before any
   layer is downloaded;
4. download the config and every layer into the cache, each checked against its digest
   while it streams;
5. unpack the files into a temporary directory, renamed into the cache by manifest
   digest once complete (under the digest's lock, so two processes do not collide),
   with the signatures it was verified with kept beside it.

When the registry cannot be reached (:class:`~weaviate_ext.errors.RegistryUnreachable`),
a reference by digest whose artifact is complete in the cache is taken from there, its
kept signatures checked again against the host's current policy (:func:`from_cache`);
a reference by tag needs the registry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from weaviate_ext import progress
from weaviate_ext.errors import ArtifactIntegrityError, RegistryError, RegistryUnreachable
from weaviate_ext.registry.artifact import ArtifactManifest, read_artifact_manifest
from weaviate_ext.registry.cache import OciCache
from weaviate_ext.registry.client import RegistryClient, verified
from weaviate_ext.registry.reference import Reference, parse_reference
from weaviate_ext.registry.settings import RegistrySettings

if TYPE_CHECKING:
    from weaviate_ext.registry.policy import RegistryPolicy

log = logging.getLogger("weaviate_ext.registry")

MAX_SIGNATURE_PAYLOAD = 64 * 1024
"""Largest signature payload read (cosign's simple-signing payloads are a few hundred bytes)."""
MAX_SIGNATURES = 64
"""Most signatures of one artifact considered."""


@attrs.frozen
class Pulled:
    """A pulled, verified and unpacked plugin artifact."""

    reference: Reference
    """What was asked for (tag or digest)."""
    digest: str
    """The artifact's manifest digest."""
    directory: Path
    """The unpacked plugin directory in the cache (do not modify it)."""
    manifest_name: str
    """The file name of the plugin's manifest in :attr:`directory`."""
    annotations: dict[str, str] = attrs.field(factory=dict)

    @property
    def manifest_path(self) -> Path:
        """The plugin's manifest file in the cache."""
        return self.directory / self.manifest_name

    @property
    def pinned(self) -> Reference:
        """The reference by digest (``oci://HOST/REPO@sha256:...``)."""
        return self.reference.with_digest(self.digest)


def fetch_signatures(
    client: RegistryClient, reference: Reference, digest: str
) -> list[tuple[bytes, str]]:
    """The ``(payload, base64 signature)`` pairs stored at the artifact's cosign
    signature tag (empty when it has none)."""
    from weaviate_ext.registry.signing import (
        SIGNATURE_ANNOTATION,
        SIMPLE_SIGNING_MEDIA_TYPE,
        signature_tag,
    )

    what = str(reference.with_digest(digest))
    found = client.find_manifest(reference.repository, signature_tag(digest), what)
    if found is None:
        return []
    try:
        document = json.loads(found[0])
        layers = document.get("layers") or []
    except (ValueError, AttributeError):
        raise ArtifactIntegrityError(f"{what}: its signature manifest is not valid JSON") from None
    pairs: list[tuple[bytes, str]] = []
    for layer in layers[:MAX_SIGNATURES]:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        signature = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        blob_digest = layer.get("digest")
        if not isinstance(signature, str) or not isinstance(blob_digest, str):
            continue
        payload = client.read_blob(
            reference.repository, blob_digest, MAX_SIGNATURE_PAYLOAD, f"{what} (signature)"
        )
        pairs.append((payload, signature))
    return pairs


def check_policy(
    policy: RegistryPolicy,
    client: RegistryClient,
    reference: Reference,
    digest: str,
) -> list[tuple[bytes, str]]:
    """Refuse (:class:`SignatureError`, :class:`ArtifactIntegrityError`) an artifact the
    host's policy does not accept: a pinned digest that differs, no signature where one
    is required, or no signature by a key trusted for its repository. Returns the
    signatures found (what the cache keeps for an offline load)."""
    signatures = fetch_signatures(client, reference, digest)
    policy.check(str(reference), digest, signatures)
    return signatures


def from_cache(ref: Reference, policy: RegistryPolicy, cache: OciCache) -> Pulled | None:
    """The artifact of a reference *by digest* from the cache, when its registry cannot
    be reached: the signatures it was verified with are checked again against the
    host's current ``policy`` (a key no longer trusted refuses it, as online). ``None``
    when the reference is by tag (a tag can move: it needs the registry) or the cache has
    no complete, verified copy."""
    if ref.digest is None:
        return None
    found = cache.verified(ref.digest)
    if found is None:
        return None
    signatures, manifest_name, annotations = found
    policy.check(str(ref), ref.digest, signatures)
    cache.touch(ref.digest)
    log.warning(
        "%s: the registry cannot be reached; loading the cached copy (its signatures "
        "checked again against the policy)",
        ref,
    )
    return Pulled(ref, ref.digest, cache.plugin_path(ref.digest), manifest_name, annotations)


def _write_layer(blob: Path, target: Path, mode: int, where: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise ArtifactIntegrityError(f"{where}: the file {target.name!r} is in it twice")
        shutil.copyfile(blob, target)
        os.chmod(target, mode)
    except OSError as exc:
        raise ArtifactIntegrityError(
            f"{where}: cannot unpack {target.name}: {exc.strerror}"
        ) from None


def _download(
    client: RegistryClient, cache: OciCache, repository: str, digest: str, size: int, what: str
) -> Path:
    existing = cache.blob_path(digest)
    if existing.is_file():
        return existing
    with client.open_blob(repository, digest, what) as chunks:
        return cache.write_blob(digest, verified(chunks, digest, size, what))


def _unpack(
    client: RegistryClient,
    cache: OciCache,
    reference: Reference,
    artifact: ArtifactManifest,
    work: Path,
) -> None:
    what = str(reference)
    config = _download(
        client, cache, reference.repository, artifact.config.digest, artifact.config.size, what
    )
    try:
        json.loads(config.read_bytes())
    except ValueError:
        raise ArtifactIntegrityError(f"{what}: its config blob is not JSON") from None
    for layer in artifact.layers:
        with cache.lock(layer.digest):  # a prune does not remove the blob under us
            blob = _download(client, cache, reference.repository, layer.digest, layer.size, what)
            _write_layer(blob, work / layer.path, layer.mode, what)
    if not (work / artifact.manifest_name).is_file():
        raise ArtifactIntegrityError(f"{what}: the artifact has no {artifact.manifest_name}")


@contextlib.contextmanager
def _client(reference: Reference, insecure: bool) -> Iterator[RegistryClient]:
    client = RegistryClient(reference.registry, insecure=insecure)
    try:
        yield client
    finally:
        client.close()


def pull(
    reference: str | Reference,
    *,
    settings: RegistrySettings | None = None,
    policy: RegistryPolicy | None = None,
    cache: OciCache | None = None,
    insecure: bool | None = None,
) -> Pulled:
    """Pull the plugin artifact ``reference`` into the cache, verified (see the module
    docstring for the order); returns where it is unpacked.

    :param settings: the host's registry settings (policy, cache, insecure hosts);
        default :meth:`RegistrySettings.default` (unsigned artifacts refused).
    :param policy: overrides the settings' policy.
    :param cache: overrides the settings' cache.
    :param insecure: plain HTTP to a non-loopback registry (default: the settings').
    """
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    settings = settings or RegistrySettings.default()
    policy = policy if policy is not None else settings.policy
    cache = cache if cache is not None else settings.cache()
    plain = settings.is_insecure(ref.registry) if insecure is None else insecure
    try:
        return _pull_online(ref, policy, cache, plain)
    except RegistryUnreachable:
        cached = from_cache(ref, policy, cache)
        if cached is None:
            raise
        return cached


def _pull_online(ref: Reference, policy: RegistryPolicy, cache: OciCache, plain: bool) -> Pulled:
    with _client(ref, plain) as client:
        data, digest = client.get_manifest(ref.repository, ref.ref, str(ref))
        artifact = read_artifact_manifest(data, str(ref))
        signatures = check_policy(policy, client, ref, digest)
        info: dict[str, Any] = {
            "reference": str(ref),
            "name": artifact.annotations.get("dev.weaviate-ext.plugin.name", ""),
            "version": artifact.annotations.get("dev.weaviate-ext.plugin.version", ""),
            "blobs": sorted({artifact.config.digest, *(la.digest for la in artifact.layers)}),
        }
        fill = lambda work: _unpack(client, cache, ref, artifact, work)  # noqa: E731
        with progress.step(f"pulling {ref}", f"pulled {ref}", after=0.5), cache.lock(digest):
            directory = cache.install_plugin(digest, fill, info)
            cache.record_verified(digest, signatures, artifact.manifest_name, artifact.annotations)
    return Pulled(ref, digest, directory, artifact.manifest_name, dict(artifact.annotations))


def copy_out(pulled: Pulled, destination: Path) -> list[Path]:
    """Copy a pulled plugin directory to ``destination`` (which must not exist or be
    empty); returns the files written."""
    if destination.exists() and any(destination.iterdir()):
        raise RegistryError(f"{destination}: exists and is not empty")
    shutil.copytree(pulled.directory, destination, dirs_exist_ok=True)
    return sorted(p for p in destination.rglob("*") if p.is_file())


def signatures_of(
    reference: str | Reference, *, insecure: bool = False
) -> tuple[str, Sequence[tuple[bytes, str]]]:
    """The manifest digest of ``reference`` and the signatures stored for it."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    with _client(ref, insecure) as client:
        _, digest = client.get_manifest(ref.repository, ref.ref, str(ref))
        return digest, fetch_signatures(client, ref, digest)
