"""Pushing a plugin artifact and its cosign signature to a registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from weaviate_ext import progress
from weaviate_ext.errors import RegistryError
from weaviate_ext.registry.artifact import (
    MANIFEST_MEDIA_TYPE,
    Artifact,
    Blob,
    build_artifact,
    canonical_json,
    sha256_digest,
)
from weaviate_ext.registry.client import RegistryClient
from weaviate_ext.registry.reference import Reference, parse_reference

if TYPE_CHECKING:
    from weaviate_ext.registry.signing import SigningKey

OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"


@attrs.frozen
class Pushed:
    """A pushed artifact: where, its digest, and how many blobs were uploaded."""

    reference: Reference
    digest: str
    uploaded: int
    size: int

    @property
    def pinned(self) -> Reference:
        """The reference by digest."""
        return self.reference.with_digest(self.digest)


def push_artifact(artifact: Artifact, reference: Reference, *, insecure: bool = False) -> Pushed:
    """Upload the artifact's blobs (those the registry lacks), then its manifest at the
    reference's tag."""
    if reference.digest is not None:
        raise RegistryError(f"{reference}: push to a tag, not a digest")
    what = str(reference)
    uploaded = 0
    client = RegistryClient(reference.registry, insecure=insecure)
    with client, progress.step(f"pushing {what}", f"pushed {what}", after=0.5) as step:
        for blob in (artifact.config, *artifact.layers):
            if client.push_blob(reference.repository, blob, what):
                uploaded += 1
                title = blob.annotations.get("org.opencontainers.image.title", "config")
                step.output(f"uploaded {title} ({blob.size} bytes)")
        digest = client.push_manifest(
            reference.repository, reference.ref, artifact.manifest_bytes, what
        )
    return Pushed(reference, digest, uploaded, artifact.size)


def push_plugin(
    path: str | os.PathLike[str], reference: str | Reference, *, insecure: bool = False
) -> Pushed:
    """Build the artifact of the plugin at ``path`` and push it to ``reference``."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    return push_artifact(build_artifact(Path(path)), ref, insecure=insecure)


def sign_artifact(
    reference: str | Reference, key: SigningKey, *, insecure: bool = False
) -> tuple[str, str]:
    """Sign the artifact ``reference`` as ``cosign sign --key`` does and push the
    signature to its cosign tag (added to the signatures already there); returns the
    manifest digest signed and the signature tag."""
    from weaviate_ext.registry.signing import (
        SIGNATURE_ANNOTATION,
        SIMPLE_SIGNING_MEDIA_TYPE,
        sign_payload,
        signature_tag,
        simple_signing_payload,
    )

    ref = parse_reference(reference) if isinstance(reference, str) else reference
    what = str(ref)
    with RegistryClient(ref.registry, insecure=insecure) as client:
        _, digest = client.get_manifest(ref.repository, ref.ref, what)
        payload = simple_signing_payload(digest, ref.docker_reference)
        signature = sign_payload(payload, key)
        tag = signature_tag(digest)
        layers: list[dict[str, object]] = []
        existing = client.find_manifest(ref.repository, tag, what)
        if existing is not None:
            try:
                layers = list(json.loads(existing[0]).get("layers") or [])
            except (ValueError, AttributeError):
                layers = []
        payload_blob = Blob(
            SIMPLE_SIGNING_MEDIA_TYPE,
            sha256_digest(payload),
            len(payload),
            None,
            payload,
            {SIGNATURE_ANNOTATION: signature},
        )
        descriptor = payload_blob.descriptor()
        if descriptor not in layers:
            layers.append(descriptor)
        diff_ids = [str(layer.get("digest")) for layer in layers]
        config_bytes = canonical_json(
            {
                "architecture": "",
                "config": {},
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        )
        config = Blob(
            OCI_CONFIG_MEDIA_TYPE,
            sha256_digest(config_bytes),
            len(config_bytes),
            None,
            config_bytes,
        )
        client.push_blob(ref.repository, payload_blob, what)
        client.push_blob(ref.repository, config, what)
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": config.descriptor(),
                "layers": layers,
            }
        )
        client.push_manifest(ref.repository, tag, manifest, what)
    return digest, tag
