"""Cleaning text before it is chunked, vectorized or indexed.

In this order:

1. Unicode normalisation, NFKC by default: compatibility characters become their plain
   equivalents (``ﬁ`` -> ``fi``, full-width ``A`` (U+FF21) -> ``A``, no-break space -> space,
   ``①`` -> ``1``) and combining marks are composed (``e`` + U+0301 -> ``é``);
2. control characters (category ``Cc``: NUL, BEL, ESC, DEL, the C1 controls...) are
   removed, except whitespace controls (tab, newline...), which step 3 handles. Format
   characters such as the zero-width joiner stay: emoji sequences need them;
3. every run of whitespace becomes one space and the ends are trimmed; with
   ``keep_newlines`` a run holding one line break becomes ``"\\n"`` and a run holding
   several becomes ``"\\n\\n"`` (a paragraph break), so sentence and paragraph
   boundaries survive;
4. optionally, lower-casing (``str.lower``).
"""

from __future__ import annotations

import re
import unicodedata

FORMS = ("NFKC", "NFC", "NFKD", "NFD", "none")
"""The accepted values of ``form``."""

WHITESPACE = re.compile(r"\s+")


def strip_controls(text: str) -> str:
    """``text`` without the control characters that are not whitespace."""
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc")


def _space_run(match: re.Match[str], keep_newlines: bool) -> str:
    if not keep_newlines:
        return " "
    breaks = match.group().count("\n") + match.group().count("\r") - match.group().count("\r\n")
    return " " if breaks == 0 else ("\n" if breaks == 1 else "\n\n")


def normalize(
    text: str,
    *,
    form: str = "NFKC",
    lowercase: bool = False,
    strip_control: bool = True,
    collapse_whitespace: bool = True,
    keep_newlines: bool = False,
) -> str:
    """``text`` cleaned as the module docstring describes."""
    if form != "none":
        text = unicodedata.normalize(form, text)  # type: ignore[arg-type]
    if strip_control:
        text = strip_controls(text)
    if collapse_whitespace:
        text = WHITESPACE.sub(lambda m: _space_run(m, keep_newlines), text).strip()
    return text.lower() if lowercase else text
