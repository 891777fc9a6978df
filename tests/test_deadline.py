"""weaviate_ext.deadline.Deadline: what plugins get as their ``deadline`` argument."""

from __future__ import annotations

import threading

import pytest

from weaviate_ext import DeadlineExceeded
from weaviate_ext.deadline import Deadline


def test_without_a_timeout_nothing_expires_and_locks_wait_for_ever() -> None:
    deadline = Deadline(None)
    assert deadline.remaining() == float("inf")
    assert not deadline.expired
    assert deadline.lock_timeout() == -1
    deadline.check()


def test_a_timeout_counts_down_and_gives_a_lock_timeout() -> None:
    deadline = Deadline(30.0, "p", "hook")
    assert 0 < deadline.lock_timeout() <= 30.0
    held = threading.Lock()
    held.acquire()
    assert not held.acquire(timeout=Deadline(0.01).lock_timeout())


def test_a_passed_deadline_raises_naming_plugin_and_hook() -> None:
    deadline = Deadline(0.0, "my-plugin", "vectorize_batch")
    assert deadline.expired and deadline.remaining() == 0.0 and deadline.lock_timeout() == 0.0
    with pytest.raises(DeadlineExceeded, match="my-plugin.*vectorize_batch.*deadline of 0s"):
        deadline.check()
