"""weaviate_ext.rules: the role rules auth plugins share."""

from __future__ import annotations

from typing import Any

import pytest

from weaviate_ext import ConfigError
from weaviate_ext.rules import Rule, decide, parse_rules

RULES = parse_rules(
    [
        {"role": "reader", "resource": "docs*", "action": "read", "allow": True},
        {"role": "writer", "resource": "docs*", "action": "*", "allow": True},
        {"role": "*", "resource": "docs/secret*", "action": "*", "allow": False},
    ]
)


@pytest.mark.parametrize(
    ("roles", "resource", "action", "expected"),
    [
        (["reader"], "docs", "read", True),
        (["reader"], "docs/a", "write", None),  # nothing matches: abstain
        (["writer"], "docs/a", "write", True),
        (["reader", "writer"], "docs/secret-plan", "read", False),  # a deny wins
        ([], "docs/secret-plan", "read", False),  # role "*" is anyone
        ([], "docs", "read", None),
        (["READER"], "docs", "read", None),  # roles are case-sensitive
        (["reader"], "DOCS", "read", None),  # globs too (fnmatchcase)
    ],
)
def test_decide(roles: list[str], resource: str, action: str, expected: bool | None) -> None:
    assert decide(RULES, roles, resource, action) is expected


def test_parse_rules_gives_frozen_rules() -> None:
    assert RULES[0] == Rule("reader", "docs*", "read", True)
    with pytest.raises(AttributeError):
        RULES[0].allow = False  # type: ignore[misc]
    assert parse_rules([]) == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"role": "r"}, "config key 'rules' must be a list"),
        (["x"], "config rules[0] must be a mapping of role, resource, action, allow"),
        (
            [{"role": "", "resource": "d", "action": "a", "allow": True}],
            "config rules[0].role must be a non-empty string",
        ),
        (
            [{"role": "r", "resource": 5, "action": "a", "allow": True}],
            "config rules[0].resource must be a non-empty string",
        ),
        (
            [{"role": "r", "resource": "d", "action": "a", "allow": "yes"}],
            "config rules[0].allow must be true or false",
        ),
        (
            [{"role": "r", "resource": "d", "action": "a", "allow": True, "deny": 1}],
            "config rules[0] has unknown fields ['deny']",
        ),
    ],
)
def test_bad_rules_are_config_errors_naming_the_entry(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rules(value)
    assert str(caught.value) == message


def test_the_config_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"config policy\[1\]\.action"):
        parse_rules(
            [
                {"role": "r", "resource": "d", "action": "a", "allow": True},
                {"role": "r", "resource": "d", "action": "", "allow": True},
            ],
            key="policy",
        )
