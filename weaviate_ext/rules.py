"""Role rules for auth plugins: who may do what, as configuration.

An auth plugin's ``authorize`` hook answers allow, deny or abstain (``True``,
``False``, ``None``). Most plugins decide from a list of rules in their config, each
``{role, resource, action, allow}`` with shell-style globs in ``resource`` and
``action`` and ``role: "*"`` for anyone. :func:`parse_rules` checks such a list (a
:class:`~weaviate_ext.ConfigError` naming the entry and field), :func:`decide` applies
it: a matching deny wins, else a matching allow allows, else the plugin abstains::

    from weaviate_ext.rules import decide, parse_rules

    class MyAuth:
        @hookimpl
        def plugin_setup(self, config, manifest):
            self.rules = parse_rules(config.get("rules", []))

        @hookimpl
        def authorize(self, identity, resource, action):
            return decide(self.rules, identity.roles, resource, action)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

import attrs

from weaviate_ext.errors import ConfigError

__all__ = ["Rule", "decide", "parse_rules"]

FIELDS = ("role", "resource", "action", "allow")


@attrs.frozen
class Rule:
    """One rule: ``role`` may (``allow``) or may not do ``action`` on ``resource``."""

    role: str
    resource: str
    action: str
    allow: bool

    def matches(self, roles: Iterable[str], resource: str, action: str) -> bool:
        """Whether the rule applies to an identity with ``roles`` doing ``action`` on
        ``resource`` (globs in the rule's ``resource`` and ``action``; role ``*``: any)."""
        return (
            (self.role == "*" or self.role in tuple(roles))
            and fnmatchcase(resource, self.resource)
            and fnmatchcase(action, self.action)
        )


def parse_rules(value: Any, key: str = "rules") -> tuple[Rule, ...]:
    """Check config ``key``: a list of ``{role, resource, action, allow}`` mappings.

    Every string field must be non-empty, ``allow`` a boolean, and no other field is
    allowed; a :class:`~weaviate_ext.ConfigError` names the first entry that is wrong.
    """
    if not isinstance(value, list):
        raise ConfigError(f"config key {key!r} must be a list")
    rules: list[Rule] = []
    for i, entry in enumerate(value):
        where = f"config {key}[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping of role, resource, action, allow")
        for field in FIELDS[:3]:
            if not isinstance(entry.get(field), str) or not entry[field]:
                raise ConfigError(f"{where}.{field} must be a non-empty string")
        if not isinstance(entry.get("allow"), bool):
            raise ConfigError(f"{where}.allow must be true or false")
        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            raise ConfigError(f"{where} has unknown fields {unknown}")
        rules.append(Rule(entry["role"], entry["resource"], entry["action"], entry["allow"]))
    return tuple(rules)


def decide(rules: Iterable[Rule], roles: Iterable[str], resource: str, action: str) -> bool | None:
    """``False`` if a matching rule denies, else ``True`` if one allows, else ``None``
    (abstain: another auth plugin, or the host's default, decides)."""
    roles = tuple(roles)
    matching = [rule for rule in rules if rule.matches(roles, resource, action)]
    if any(not rule.allow for rule in matching):
        return False
    if matching:
        return True
    return None
