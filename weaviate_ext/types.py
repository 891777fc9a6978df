"""Value types that cross plugin hooks: rerank results and identities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs


@attrs.frozen(order=False)
class RankResult:
    """One reranked document: its ``index`` in the input, its ``score``, and the text."""

    index: int
    score: float
    document: str | None = None


def _roles(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _freeze_claims(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Identity:
    """Who a set of credentials belongs to, as an auth plugin recognised it.

    ``subject`` names the principal, ``roles`` are what ``authorize`` rules check, and
    ``claims`` keeps whatever else the plugin knows (token claims, key id). ``plugin``
    is filled in by the manager with the name of the auth plugin that answered.
    """

    subject: str
    roles: tuple[str, ...] = attrs.field(default=(), converter=_roles)
    claims: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_claims)
    plugin: str | None = None
