"""A client of the OCI distribution API: blobs, manifests, tags and the catalog.

Built on ``httpx`` rather than the ``oras`` package (oras-py 0.2): oras's ``Registry``
re-serialises manifests through ``requests``' ``json=`` on upload (the manifest digest
would not be the one computed from our canonical bytes), returns manifests parsed (the
raw bytes a digest must be checked against are gone), downloads blobs without checking
their digest, has no catalog call, and retries every connection error for minutes with
sleeps (``decorator.retry``) — an unreachable registry must be a quick, clear error.
The distribution API itself is small and stable; ``httpx`` does HTTP, TLS and the
connection pool, and its ``Auth`` flow answers the registry's ``WWW-Authenticate``
challenge (Basic, or a Bearer token from the registry's token service).

Plain HTTP is used only for loopback hosts or when the caller says ``insecure``;
everything else is HTTPS with certificate checks. Credentials (see
:mod:`~weaviate_ext.registry.credentials`) are sent only after the registry asks for
them and never appear in an error message.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx

from weaviate_ext.errors import ArtifactIntegrityError, RegistryError, RegistryUnreachable
from weaviate_ext.registry.artifact import MANIFEST_MEDIA_TYPE, Blob, sha256_digest
from weaviate_ext.registry.credentials import Credentials, find_credentials
from weaviate_ext.registry.reference import is_loopback

MANIFEST_ACCEPT = ", ".join(
    [
        MANIFEST_MEDIA_TYPE,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
"""Largest manifest accepted (the distribution spec's recommended limit)."""
MAX_PAGES = 1000
"""Most pages of a catalog or tag listing followed."""
CHUNK = 1 << 16

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class _ChallengeAuth(httpx.Auth):
    """Answers a registry's 401 challenge: Basic credentials, or a Bearer token fetched
    from the realm the challenge names (with the credentials, if any)."""

    def __init__(self, credentials: Credentials | None) -> None:
        self.credentials = credentials
        self.header: str | None = None
        self.refused = False

    def _basic(self) -> str:
        assert self.credentials is not None
        pair = f"{self.credentials.username}:{self.credentials.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send ``request``; on a 401, answer the challenge once and send it again."""
        if self.header is not None:
            request.headers["Authorization"] = self.header
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("www-authenticate", "")
        scheme, _, rest = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(rest))
        if scheme.lower() == "basic":
            if self.credentials is None:
                return
            header = self._basic()
        elif scheme.lower() == "bearer" and params.get("realm"):
            query = {k: params[k] for k in ("service", "scope") if k in params}
            token_request = httpx.Request("GET", params["realm"], params=query)
            if self.credentials is not None:
                token_request.headers["Authorization"] = self._basic()
            token_response = yield token_request
            token_response.read()
            if token_response.status_code != 200:
                self.refused = True
                return
            try:
                body = token_response.json()
            except ValueError:
                return
            token = body.get("token") or body.get("access_token")
            if not isinstance(token, str):
                return
            header = f"Bearer {token}"
        else:
            return
        self.header = header
        request.headers["Authorization"] = header
        response = yield request
        if response.status_code == 401:
            self.refused = True


class RegistryClient:
    """The distribution API of one registry (``HOST[:PORT]``).

    :param insecure: use plain HTTP even for a host that is not loopback.
    :param credentials: ``None`` to look them up (:func:`find_credentials`), ``False``
        for anonymous access, or :class:`Credentials`.
    :param timeout: seconds for connecting and for each read.
    """

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        credentials: Credentials | bool | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.registry = registry
        self.plain_http = insecure or is_loopback(registry)
        scheme = "http" if self.plain_http else "https"
        self.base = f"{scheme}://{registry}/v2/"
        if credentials is None or credentials is True:
            credentials = find_credentials(registry)
        self.credentials = credentials or None
        self._auth = _ChallengeAuth(self.credentials)
        self._http = httpx.Client(auth=self._auth, timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests and errors ----------------------------------------------------------------

    def _fail(self, response: httpx.Response, what: str, action: str) -> RegistryError:
        status = response.status_code
        if status == 401 or (status == 403 and self._auth.refused):
            if self.credentials is None:
                return RegistryError(
                    f"{what}: the registry {self.registry} needs credentials to {action} and "
                    "none were found (docker/podman auth.json, or "
                    "WEAVIATE_EXT_REGISTRY_USERNAME/_PASSWORD)"
                )
            return RegistryError(
                f"{what}: the registry {self.registry} refused the credentials of user "
                f"{self.credentials.username!r} (from {self.credentials.source}) to {action}"
            )
        if status == 403:
            return RegistryError(f"{what}: the registry {self.registry} forbids to {action}")
        if status == 404:
            return RegistryError(f"{what}: not found in the registry {self.registry} ({action})")
        detail = ""
        with contextlib.suppress(Exception):
            response.read()
            errors = response.json().get("errors") or []
            detail = "; ".join(str(e.get("message", e.get("code", ""))) for e in errors[:3])
        detail = f": {detail}" if detail else ""
        return RegistryError(
            f"{what}: the registry {self.registry} answered {status} to {action}{detail}"
        )

    def _send(self, what: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(what, exc) from None

    def _unreachable(self, what: str, exc: httpx.HTTPError) -> RegistryError:
        hint = "" if self.plain_http else " (HTTPS; --insecure for a plain-HTTP registry)"
        kind = type(exc).__name__
        return RegistryUnreachable(
            f"{what}: cannot reach the registry {self.registry}{hint}: {kind}"
        )

    def _url(self, repository: str, kind: str, ref: str) -> str:
        return f"{self.base}{repository}/{kind}/{ref}"

    # -- manifests --------------------------------------------------------------------------

    def get_manifest(self, repository: str, ref: str, what: str) -> tuple[bytes, str]:
        """The manifest at ``ref`` (tag or digest): its bytes and digest. A manifest asked
        for by digest must have that digest (else :class:`ArtifactIntegrityError`)."""
        found = self.find_manifest(repository, ref, what)
        if found is None:
            raise RegistryError(f"{what}: no such artifact in the registry {self.registry}")
        return found

    def find_manifest(self, repository: str, ref: str, what: str) -> tuple[bytes, str] | None:
        """Like :meth:`get_manifest`, ``None`` when the registry has no such manifest."""
        url = self._url(repository, "manifests", ref)
        headers = {"Accept": MANIFEST_ACCEPT}
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise self._fail(response, what, "read the manifest")
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_MANIFEST_SIZE:
                        raise ArtifactIntegrityError(f"{what}: the manifest is over the size cap")
        except httpx.HTTPError as exc:
            raise self._unreachable(what, exc) from None
        digest = sha256_digest(data)
        if ref.startswith("sha256:") and digest != ref:
            raise ArtifactIntegrityError(
                f"{what}: the registry sent a manifest with digest {digest}, not {ref}"
            )
        return data, digest

    def push_manifest(
        self,
        repository: str,
        ref: str,
        data: bytes,
        what: str,
        media_type: str = MANIFEST_MEDIA_TYPE,
    ) -> str:
        """Put manifest ``data`` at ``ref`` (a tag); returns its digest."""
        url = self._url(repository, "manifests", ref)
        response = self._send(what, "PUT", url, content=data, headers={"Content-Type": media_type})
        if response.status_code not in (200, 201):
            raise self._fail(response, what, "push the manifest")
        return sha256_digest(data)

    # -- blobs ------------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str, what: str) -> bool:
        """Whether the repository has blob ``digest``."""
        response = self._send(what, "HEAD", self._url(repository, "blobs", digest))
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._fail(response, what, "check a blob")

    def push_blob(self, repository: str, blob: Blob, what: str) -> bool:
        """Upload ``blob`` unless the repository has it; whether it was uploaded."""
        if self.blob_exists(repository, blob.digest, what):
            return False
        start = self._send(what, "POST", f"{self.base}{repository}/blobs/uploads/")
        if start.status_code != 202 or "location" not in start.headers:
            raise self._fail(start, what, "start a blob upload")
        location = httpx.URL(self.base).join(start.headers["location"])
        location = location.copy_merge_params({"digest": blob.digest})
        headers = {"Content-Type": "application/octet-stream"}
        done = self._send(what, "PUT", str(location), content=blob.read(), headers=headers)
        if done.status_code != 201:
            raise self._fail(done, what, f"upload the blob {blob.digest}")
        return True

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str, what: str) -> Iterator[Iterator[bytes]]:
        """The bytes of blob ``digest`` as they come (unchecked: see :func:`verified`)."""
        url = self._url(repository, "blobs", digest)
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise self._fail(response, what, f"download the blob {digest}")
                yield response.iter_bytes(CHUNK)
        except httpx.HTTPError as exc:
            raise self._unreachable(what, exc) from None

    def read_blob(self, repository: str, digest: str, size_cap: int, what: str) -> bytes:
        """A small blob's bytes, checked against its digest."""
        data = b""
        with self.open_blob(repository, digest, what) as chunks:
            for chunk in verified(chunks, digest, size_cap, what):
                data += chunk
        return data

    # -- listings ---------------------------------------------------------------------------

    def _paged(self, url: str, key: str, what: str) -> list[str]:
        items: list[str] = []
        next_url: str | None = url
        for _ in range(MAX_PAGES):
            if next_url is None:
                break
            response = self._send(what, "GET", next_url)
            if response.status_code != 200:
                raise self._fail(response, what, f"list {key}")
            try:
                page = response.json().get(key) or []
            except ValueError:
                raise RegistryError(f"{what}: the registry's {key} listing is not JSON") from None
            items.extend(str(item) for item in page)
            link = response.links.get("next", {}).get("url")
            next_url = str(httpx.URL(self.base).join(link)) if link else None
        return items

    def catalog(self) -> list[str]:
        """Every repository of the registry (``/v2/_catalog``, all pages)."""
        return self._paged(f"{self.base}_catalog?n=1000", "repositories", self.registry)

    def tags(self, repository: str) -> list[str]:
        """The tags of ``repository``."""
        what = f"{self.registry}/{repository}"
        return self._paged(f"{self.base}{repository}/tags/list?n=1000", "tags", what)


def verified(
    chunks: Iterator[bytes],
    digest: str,
    size_cap: int,
    what: str,
    on_chunk: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Pass ``chunks`` on while hashing them; at the end (or past ``size_cap`` bytes) an
    :class:`ArtifactIntegrityError` if they are not the blob ``digest``."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > size_cap:
            raise ArtifactIntegrityError(f"{what}: blob {digest} is larger than declared")
        hasher.update(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
        yield chunk
    got = "sha256:" + hasher.hexdigest()
    if got != digest:
        raise ArtifactIntegrityError(
            f"{what}: blob {digest} does not match its digest (got {got}): tampered or truncated"
        )
