"""Reports, checks and the sample inputs shared by every type's checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import attrs

from weaviate_ext.handles import (
    PluginHandle,
)

ATOL = 1e-5
"""Absolute tolerance when comparing a batch's rows with single calls."""

NORM_TOLERANCE = 1e-3
"""How far from 1.0 the L2 norm of a vector may be when ``normalized`` is declared."""

UNICODE_TEXTS: tuple[str, ...] = (
    "emoji 🚀🔥👩\u200d💻 and flags 🇩🇪",
    "中文文本\uff1a向量搜索引擎",
    "日本語のテキストと한국어 텍스트",
    "עברית מימין לשמאל וערבית: مرحبا بالعالم",
    "combining marks: e\u0301 a\u0308 n\u0303 Z\u0335\u0321\u0300",
    "zero\u200bwidth\ufeff and nul-free control \t\r\n",
)
"""Texts in many scripts: emoji (with ZWJ), CJK, RTL, combining marks, odd spaces."""

LONG_TEXT_CHARS = 100_000
"""Length of the very long text sent to vectorizers and transformers."""

SAMPLE_TEXTS: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "Vector databases store embeddings for similarity search.",
    "A completely different sentence about cooking pasta.",
    "hello world",
)


def make_long_text() -> str:
    words = ("lorem", "ipsum", "vector", "search", "plugin", "σκύλος", "猫", "🚀")
    text = " ".join(words[i % len(words)] + str(i % 97) for i in range(LONG_TEXT_CHARS // 6))
    return (text * 2)[:LONG_TEXT_CHARS]


@attrs.frozen
class CheckResult:
    """The outcome of one named check.

    ``skipped`` checks count as passed: they did not apply (for example
    ``deterministic`` for a vectorizer that does not declare it); ``message`` says why.
    """

    name: str
    passed: bool
    message: str = ""
    skipped: bool = False

    def __str__(self) -> str:
        mark = "SKIP" if self.skipped else ("PASS" if self.passed else "FAIL")
        return f"{mark} {self.name}" + (f": {self.message}" if self.message else "")


@attrs.define
class ConformanceReport:
    """Every check run against one plugin, in order."""

    plugin: str
    plugin_type: str
    results: list[CheckResult] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed (or was skipped)."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [r for r in self.results if not r.passed]

    @property
    def names(self) -> list[str]:
        """The names of every check run."""
        return [r.name for r in self.results]

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name`` (``KeyError`` if it did not run)."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        failed = len(self.failures)
        head = (
            f"conformance of {self.plugin_type} {self.plugin!r}: "
            f"{len(self.results) - failed} passed, {failed} failed"
        )
        return "\n".join([head, *(f"  {r}" for r in self.results)])

    def raise_for_failures(self) -> None:
        """Raise :class:`AssertionError` listing every failed check, if any failed."""
        if self.failures:
            lines = "\n".join(f"  {r.name}: {r.message}" for r in self.failures)
            raise AssertionError(
                f"{self.plugin_type} {self.plugin!r} failed {len(self.failures)} of "
                f"{len(self.results)} conformance checks:\n{lines}"
            )

    # -- running checks ---------------------------------------------------------------

    def run(self, name: str, check: Callable[[], str | None]) -> CheckResult:
        """Run ``check`` and record it under ``name``.

        The check passes when it returns (its return value, if any, is the message);
        it fails when it raises :class:`CheckFailed` (the message says what was wrong)
        or any other exception (recorded with its type).
        """
        try:
            message = check()
        except CheckFailed as exc:
            result = CheckResult(name, False, str(exc))
        except Skip as exc:
            result = CheckResult(name, True, str(exc), skipped=True)
        except Exception as exc:
            result = CheckResult(name, False, f"raised {type(exc).__name__}: {exc}")
        else:
            result = CheckResult(name, True, message or "")
        self.results.append(result)
        return result

    def skip(self, name: str, reason: str) -> CheckResult:
        """Record ``name`` as not applicable, with the reason."""
        result = CheckResult(name, True, reason, skipped=True)
        self.results.append(result)
        return result


class CheckFailed(Exception):
    """Raised inside a check to fail it with a message (not an ``assert``: ``-O`` safe)."""


class Skip(Exception):
    """Raised inside a check to record it as not applicable."""


def expect(condition: object, message: str) -> None:
    """Fail the running check with ``message`` unless ``condition`` is true."""
    if not condition:
        raise CheckFailed(message)


def expect_raises(error: type[BaseException], call: Callable[[], object], what: str) -> None:
    """Fail the running check unless ``call()`` raises ``error``."""
    try:
        call()
    except error:
        return
    except Exception as exc:
        raise CheckFailed(
            f"{what} raised {type(exc).__name__}, expected {error.__name__}"
        ) from None
    raise CheckFailed(f"{what} did not raise {error.__name__}")


def new_report(handle: PluginHandle, kind: type[PluginHandle]) -> ConformanceReport:
    if not isinstance(handle, kind):
        raise TypeError(
            f"check_{kind.plugin_type} needs a {kind.__name__}, got {type(handle).__name__}"
        )
    return ConformanceReport(handle.name, kind.plugin_type)
