"""The server-sent events parser, on the cases of the WHATWG examples."""

from __future__ import annotations

from weaviate_ext_openai.sse import Event, parse_events


def test_events_are_separated_by_blank_lines() -> None:
    lines = ["data: a", "", "data: b", ""]
    assert [e.data for e in parse_events(lines)] == ["a", "b"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert list(parse_events(["data: one", "data: two", ""])) == [Event("one\ntwo")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    lines = [": ping - 2024-01-01", "retry: 100", "foo: bar", "data: x", ""]
    assert list(parse_events(lines)) == [Event("x")]


def test_only_one_space_after_the_colon_is_dropped() -> None:
    lines = ["data:no space", "", "data:  two spaces", "", "data", ""]
    assert [e.data for e in parse_events(lines)] == ["no space", " two spaces", ""]


def test_event_type_and_id() -> None:
    lines = ["event: error", "id: 7", "data: {}", "", "data: next", ""]
    assert list(parse_events(lines)) == [Event("{}", "error", "7"), Event("next", "message", "7")]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert list(parse_events(["", "", "event: x", "", ""])) == []


def test_a_last_event_without_blank_line_is_kept() -> None:
    assert [e.data for e in parse_events(["data: a", "", "data: [DONE]"])] == ["a", "[DONE]"]
