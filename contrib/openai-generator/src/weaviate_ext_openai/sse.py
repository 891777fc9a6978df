"""A small parser of server-sent events (the ``text/event-stream`` format).

It follows the WHATWG rules that matter for API streams: an event is the ``data:``
lines before a blank line, joined by ``\\n``; ``event:`` names it; lines starting with
``:`` are comments (keep-alive pings); one space after the colon is dropped; unknown
fields are ignored. Line endings are the reader's job (``httpx``'s ``iter_lines``
accepts ``\\n``, ``\\r\\n`` and ``\\r``).

One leniency: an event that is not followed by a blank line before the stream ends is
still delivered (the standard drops it), since some servers end with ``data: [DONE]``
and close the connection at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["Event", "parse_events"]


@dataclass(frozen=True)
class Event:
    """One server-sent event: its type (``message`` unless named) and its data."""

    data: str
    event: str = "message"
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    """The events in ``lines`` (text lines without their line endings), in order."""
    data: list[str] = []
    event = ""
    last_id: str | None = None
    for line in lines:
        if not line:
            if data:
                yield Event("\n".join(data), event or "message", last_id)
            data, event = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id" and "\0" not in value:
            last_id = value
    if data:
        yield Event("\n".join(data), event or "message", last_id)
