"""The host's registry policy: which keys it trusts for which repositories, whether it
accepts unsigned artifacts there, and which tags it pins to which digests.

It is the ``_registry.policy`` section of a host config file::

    _registry:
      policy:
        repositories:                      # first match wins; fnmatch on HOST[:PORT]/REPO
          - match: "127.0.0.1:5000/plugins/*"
            keys: [keys/team.pub]          # cosign public keys, relative to the file
          - match: "127.0.0.1:5000/scratch/*"
            allowUnsigned: true
        pins:                              # HOST[:PORT]/REPO[:TAG] -> manifest digest
          "127.0.0.1:5000/plugins/echo:1.0": "sha256:<64 hex digits>"

A repository no rule matches trusts no key and refuses unsigned artifacts, and so does
:data:`RegistryPolicy.DEFAULT`, the policy without a section. :meth:`RegistryPolicy.check`
enforces it for one artifact, before anything of it is unpacked or loaded.
"""

from __future__ import annotations

import fnmatch
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from weaviate_ext.errors import (
    ArtifactIntegrityError,
    ConfigError,
    RegistryError,
    SignatureError,
)
from weaviate_ext.registry.reference import SCHEME, Reference, is_oci, parse_reference
from weaviate_ext.registry.signing import (
    VerifyKey,
    check_digest,
    check_payload,
    load_public_key,
    signer_of,
)

POLICY_SECTION = "_registry.policy"
"""Where the policy lives in a host config file (for messages)."""

DEFAULT_TAG = "latest"
"""The tag a reference without tag or digest means."""

_RULE_KEYS = ("match", "keys", "allowUnsigned")
_POLICY_KEYS = ("repositories", "pins")


def _parse(reference: str) -> Reference:
    """``HOST[:PORT]/REPO[:TAG|@DIGEST]``, with or without ``oci://``, parsed."""
    return parse_reference(reference if is_oci(reference) else SCHEME + reference)


def _pin_key(reference: str) -> str:
    """A reference as pins are keyed: ``HOST[:PORT]/REPO:TAG`` (tag ``latest`` when none)."""
    parsed = _parse(reference)
    if parsed.digest is not None:
        raise RegistryError(f"{reference}: a reference by digest needs no pin")
    return f"{parsed.docker_reference}:{parsed.tag or DEFAULT_TAG}"


def _frozen(pins: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(pins))


@attrs.frozen
class PolicyRule:
    """What the policy says about the repositories ``match`` (an fnmatch pattern on
    ``HOST[:PORT]/REPO``; ``*`` spans ``/``): the keys trusted to sign there, and
    whether an unsigned artifact is accepted. A rule with neither refuses everything
    it matches (a deny rule, placed before broader ones)."""

    match: str
    keys: tuple[VerifyKey, ...] = ()
    allow_unsigned: bool = False

    def matches(self, repository: str) -> bool:
        """Whether this rule is about ``repository`` (``HOST[:PORT]/REPO``)."""
        return fnmatch.fnmatchcase(repository, self.match)


_NO_RULE = PolicyRule(match="*")


@attrs.frozen
class RegistryPolicy:
    """The host's registry policy: ordered :class:`PolicyRule` s and pinned digests."""

    DEFAULT: ClassVar[RegistryPolicy]
    """No trusted key and no pin: every signed artifact is refused as signed by an
    untrusted key, every unsigned one as unsigned."""

    rules: tuple[PolicyRule, ...] = ()
    pins: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen, hash=False)

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None, base_dir: Path) -> RegistryPolicy:
        """The policy from a host config file's ``_registry.policy`` section (``None``:
        :data:`DEFAULT`); key paths are relative to ``base_dir`` (the file's folder).

        Raises :class:`ConfigError` naming the entry that is malformed, or the key file
        that cannot be read.
        """
        if data is None:
            return cls.DEFAULT
        where = POLICY_SECTION
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping with 'repositories' and 'pins'")
        _no_unknown(data, _POLICY_KEYS, where)
        raw_rules = data.get("repositories") or []
        if not isinstance(raw_rules, list):
            raise ConfigError(f"{where}.repositories: expected a list of rules")
        rules = tuple(
            _rule(entry, f"{where}.repositories[{index}]", base_dir)
            for index, entry in enumerate(raw_rules)
        )
        raw_pins = data.get("pins") or {}
        if not isinstance(raw_pins, Mapping):
            raise ConfigError(f"{where}.pins: expected a mapping of references to digests")
        pins: dict[str, str] = {}
        for reference, digest in raw_pins.items():
            here = f"{where}.pins.{reference}"
            try:
                key = _pin_key(str(reference))
                if not isinstance(digest, str):
                    raise RegistryError(f"expected a digest, got {digest!r}")
                check_digest(digest)
            except RegistryError as exc:
                raise ConfigError(f"{here}: {exc.reason}") from None
            if key in pins and pins[key] != digest:
                raise ConfigError(f"{here}: {key} is pinned twice, to different digests")
            pins[key] = digest
        return cls(rules, pins)

    def rule_for(self, repository: str) -> PolicyRule:
        """The first rule that matches ``repository`` (``HOST[:PORT]/REPO``; a tag or
        digest is ignored), or a rule that trusts no key and refuses unsigned ones."""
        name = _parse(repository).docker_reference
        return next((rule for rule in self.rules if rule.matches(name)), _NO_RULE)

    def pinned_digest(self, reference: str) -> str | None:
        """The digest ``reference`` (``HOST[:PORT]/REPO[:TAG]``) is pinned to, if any."""
        parsed = _parse(reference)
        if parsed.digest is not None:
            return None
        return self.pins.get(f"{parsed.docker_reference}:{parsed.tag or DEFAULT_TAG}")

    def check(
        self,
        reference: str,
        manifest_digest: str,
        signatures: Sequence[tuple[bytes, str]],
    ) -> VerifyKey | None:
        """Enforce the policy on the artifact ``reference`` resolved to ``manifest_digest``
        whose signature tag held ``signatures`` (``(payload, base64 signature)`` pairs).

        Returns the trusted key that verified a signature, or ``None`` when the rule
        accepts unsigned artifacts and trusts no key (signatures are not looked at then).
        Raises :class:`ArtifactIntegrityError` when a pin (or the reference's own
        ``@digest``) names another digest, and :class:`SignatureError` when the artifact
        is unsigned and that is not allowed, or no signature is both made by a key
        trusted for the repository and about this very artifact.
        """
        parsed = _parse(reference)
        repository, asked_digest = parsed.docker_reference, parsed.digest
        artifact = f"{repository}@{manifest_digest}"
        check_digest(manifest_digest)
        if asked_digest is not None and asked_digest != manifest_digest:
            raise ArtifactIntegrityError(
                f"{reference}: the registry returned manifest {manifest_digest}, "
                f"not the {asked_digest} asked for"
            )
        pinned = self.pinned_digest(reference)
        if pinned is not None and pinned != manifest_digest:
            raise ArtifactIntegrityError(
                f"{reference} resolved to {manifest_digest}, but the host's registry "
                f"policy pins it to {pinned}"
            )
        rule = self.rule_for(repository)
        if not rule.keys and rule.allow_unsigned:
            return None
        if not signatures:
            if rule.allow_unsigned:
                return None
            raise SignatureError(
                f"unsigned artifact {artifact} refused by the host's registry policy; "
                "sign it with `weaviate-ext sign` or allow unsigned for this repository"
            )
        if not rule.keys:
            raise SignatureError(
                f"{artifact}: signed, but the host's registry policy trusts no key for "
                f"{repository}; add its public key to {POLICY_SECTION}.repositories"
            )
        problems: list[SignatureError] = []
        for payload, signature in signatures:
            signer = signer_of(payload, signature, rule.keys)
            if signer is None:
                continue
            try:
                check_payload(payload, manifest_digest=manifest_digest, docker_reference=repository)
            except SignatureError as exc:
                problems.append(exc)
                continue
            return signer
        if problems:
            raise problems[0]
        trusted = ", ".join(f"{key.key_id} ({key.source})" for key in rule.keys)
        count = f"{len(signatures)} signature{'s' if len(signatures) != 1 else ''}"
        raise SignatureError(
            f"{artifact}: {count} found, none made by a key the host's registry policy "
            f"trusts for {repository} (trusted key ids: {trusted})"
        )


RegistryPolicy.DEFAULT = RegistryPolicy()


def _no_unknown(entry: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in entry:
        if key not in known:
            expected = ", ".join(repr(k) for k in known)
            raise ConfigError(f"{where}: unknown key {key!r} (expected {expected})")


def _rule(entry: Any, where: str, base_dir: Path) -> PolicyRule:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'match', 'keys', 'allowUnsigned'")
    _no_unknown(entry, _RULE_KEYS, where)
    match = entry.get("match")
    if not isinstance(match, str) or not match:
        raise ConfigError(f"{where}.match: expected a pattern such as 'HOST:PORT/REPO/*'")
    allow_unsigned = entry.get("allowUnsigned", False)
    if not isinstance(allow_unsigned, bool):
        raise ConfigError(f"{where}.allowUnsigned: expected true or false")
    raw_keys = entry.get("keys") or []
    if isinstance(raw_keys, str) or not isinstance(raw_keys, list):
        raise ConfigError(f"{where}.keys: expected a list of public key files")
    keys: list[VerifyKey] = []
    for index, raw in enumerate(raw_keys):
        if not isinstance(raw, str) or not raw:
            raise ConfigError(f"{where}.keys[{index}]: expected the path of a public key file")
        try:
            keys.append(load_public_key(base_dir / Path(raw).expanduser()))
        except SignatureError as exc:
            raise ConfigError(f"{where}.keys[{index}]: {exc.reason}") from None
    return PolicyRule(match=match, keys=tuple(keys), allow_unsigned=allow_unsigned)
