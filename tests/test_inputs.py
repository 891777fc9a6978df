"""weaviate_ext.inputs: the argument checks handles and plugins share."""

from __future__ import annotations

from typing import Any

import pytest

from weaviate_ext import InvalidInput
from weaviate_ext.inputs import check_data, check_key, key_bytes


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "key must be str, got NoneType"),
        (b"k", "key must be str, got bytes"),
        ("", "key must not be empty"),
    ],
)
def test_bad_keys(key: Any, message: str) -> None:
    for check in (check_key, key_bytes):
        with pytest.raises(InvalidInput) as caught:
            check(key)
        assert str(caught.value).startswith(message)


def test_key_bytes_keep_every_key_distinct() -> None:
    assert key_bytes("ключ") == "ключ".encode()
    assert key_bytes("a\udc80") != key_bytes("a\udc81")  # lone surrogates kept
    assert key_bytes("a\x00b") == b"a\x00b"


def test_check_data() -> None:
    assert check_data(b"x") == b"x"
    assert check_data(bytearray(b"x")) == b"x"
    assert check_data(memoryview(b"xy")[1:]) == b"y"
    for bad in ("text", 1.5, [1.0], None):
        with pytest.raises(InvalidInput, match="data must be bytes, got"):
            check_data(bad)
