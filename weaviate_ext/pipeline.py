"""Transformer pipelines: several transformers applied one after another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weaviate_ext.handles import TransformerHandle


class Pipeline:
    """Transformers chained in order; built with ``manager.pipeline("a", "b")``.

    Each stage transforms every item the previous stage produced (through its
    ``transform_batch``, so batches cross each plugin boundary once). A stage that
    returns a ``list`` for an item (a chunker) fans out: each element becomes an item
    of the next stage. :meth:`run` returns the final items as a list.
    """

    def __init__(self, stages: Sequence[TransformerHandle]) -> None:
        self.stages = tuple(stages)

    def __repr__(self) -> str:
        return f"Pipeline({' -> '.join(s.name for s in self.stages)})"

    def run(self, data: Any, *, timeout: float | None = None) -> list[Any]:
        """Pass ``data`` through every stage; returns the resulting items."""
        return self.run_batch([data], timeout=timeout)

    def run_batch(self, items: Sequence[Any], *, timeout: float | None = None) -> list[Any]:
        """Pass several items through every stage; returns all resulting items, in order."""
        current = list(items)
        for stage in self.stages:
            if not current:
                break
            results = stage.transform_batch(current, timeout=timeout)
            current = []
            for result in results:
                if isinstance(result, list):
                    current.extend(result)
                else:
                    current.append(result)
        return current
