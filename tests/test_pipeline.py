"""Direct tests of weaviate_ext.pipeline: stages in order, fan-out, timeouts, failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest
from plugin_factory import write_plugin

from weaviate_ext import PluginManager
from weaviate_ext.errors import PluginCallError, PluginOutputError
from weaviate_ext.handles import TransformerHandle
from weaviate_ext.pipeline import Pipeline


class Stage:
    """A stand-in for a :class:`TransformerHandle`: records each ``transform_batch``."""

    def __init__(self, name: str, fn: Any) -> None:
        self.name = name
        self.fn = fn
        self.calls: list[tuple[list[Any], float | None]] = []

    def transform_batch(self, items: Sequence[Any], *, timeout: float | None = None) -> list[Any]:
        self.calls.append((list(items), timeout))
        return [self.fn(item) for item in items]


def pipeline(*stages: Stage) -> Pipeline:
    return Pipeline(cast("list[TransformerHandle]", list(stages)))


def upper() -> Stage:
    return Stage("upper", str.upper)


def split() -> Stage:
    return Stage("split", lambda text: [p for p in text.split(".") if p])


def test_stages_run_in_order_one_batch_each() -> None:
    first, second = Stage("a", lambda s: s + "a"), Stage("b", lambda s: s + "b")
    assert pipeline(first, second).run_batch(["x", "y"]) == ["xab", "yab"]
    assert first.calls == [(["x", "y"], None)]
    assert second.calls == [(["xa", "ya"], None)]


def test_run_is_run_batch_of_one_item() -> None:
    stage = upper()
    assert pipeline(stage).run("abc") == ["ABC"]
    assert stage.calls == [(["abc"], None)]


def test_a_list_fans_out_into_items_of_the_next_stage_in_order() -> None:
    chunker, shout = split(), upper()
    assert pipeline(chunker, shout).run_batch(["a.b", "c", "d.e.f"]) == [
        "A",
        "B",
        "C",
        "D",
        "E",
        "F",
    ]
    assert shout.calls == [(["a", "b", "c", "d", "e", "f"], None)]


def test_only_lists_fan_out() -> None:
    # a tuple (or any other value) is one item, so a transformer may return pairs
    stage = Stage("pairs", lambda s: (s, len(s)))
    assert pipeline(stage).run_batch(["ab"]) == [("ab", 2)]


def test_an_empty_batch_stops_the_pipeline_without_calling_later_stages() -> None:
    drop, after = Stage("drop", lambda s: []), upper()
    assert pipeline(drop, after).run("nothing here") == []
    assert after.calls == []
    assert pipeline(upper()).run_batch([]) == []


def test_the_timeout_reaches_every_stage() -> None:
    first, second = upper(), upper()
    pipeline(first, second).run("x", timeout=2.5)
    assert first.calls[0][1] == 2.5 and second.calls[0][1] == 2.5


def test_no_stages_passes_items_through() -> None:
    assert pipeline().run_batch(["a", 1]) == ["a", 1]


def test_the_input_sequence_is_not_changed() -> None:
    items = ["a.b"]
    pipeline(split()).run_batch(items)
    assert items == ["a.b"]


def test_a_failing_stage_stops_the_pipeline_and_its_error_passes_through() -> None:
    def fail(item: Any) -> Any:
        raise PluginCallError("broken", "transform", f"cannot handle {item!r}")

    before, broken, after = upper(), Stage("broken", fail), upper()
    with pytest.raises(PluginCallError) as info:
        pipeline(before, broken, after).run("x")
    assert (info.value.plugin, info.value.hook) == ("broken", "transform")
    assert info.value.reason == "cannot handle 'X'"
    assert len(before.calls) == 1 and after.calls == []


def test_repr_shows_the_chain() -> None:
    assert repr(pipeline(split(), upper())) == "Pipeline(split -> upper)"


# -- through real handles ---------------------------------------------------------------

SPLIT = """
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def transform(self, data):
            return [part for part in data.split(".") if part]
"""

FAIL_ON_B = """
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def transform(self, data):
            if data == "b":
                raise RuntimeError("b is not welcome")
            return data.upper()
"""

DROPS_ITEMS = """
    from weaviate_ext import hookimpl

    class Plugin:
        @hookimpl
        def transform_batch(self, items):
            return list(items[:1])  # one result, however many items
"""


def test_a_failing_plugin_stage_names_the_plugin_and_hook(
    manager: PluginManager, tmp_path: Any
) -> None:
    manager.load(write_plugin(tmp_path, "split", "transformer", SPLIT))
    manager.load(write_plugin(tmp_path, "picky", "transformer", FAIL_ON_B))
    chain = manager.pipeline("split", "picky")
    assert chain.run("a.c") == ["A", "C"]
    with pytest.raises(PluginCallError) as info:
        chain.run("a.b.c")
    error = info.value
    assert error.plugin == "picky" and error.hook in ("transform", "transform_batch")
    assert error.reason == "RuntimeError: b is not welcome"
    assert str(error).count("(see ") == 1


def test_a_stage_returning_a_wrong_shape_is_an_output_error(
    manager: PluginManager, tmp_path: Any
) -> None:
    manager.load(write_plugin(tmp_path, "split", "transformer", SPLIT))
    manager.load(write_plugin(tmp_path, "bad", "transformer", DROPS_ITEMS))
    with pytest.raises(PluginOutputError) as info:
        manager.pipeline("split", "bad").run("a.b")
    assert (info.value.plugin, info.value.hook) == ("bad", "transform_batch")
    assert info.value.reason == "returned 1 results for 2 items"


def test_a_pipeline_of_nothing_is_refused(manager: PluginManager) -> None:
    with pytest.raises(ValueError, match="at least one transformer"):
        manager.pipeline()
