"""Parsing of ``spec.resources`` quantities and durations.

- memory: Kubernetes quantities (``512Mi``, ``2Gi``, ``1G``, ``1.5Gi``, ``1e9``, ``1048576``)
  -> bytes (``int``);
- cpu: cores or millicores (``2``, ``0.5``, ``500m``, ``"1000m"``) -> cores (``float``);
- durations: ``500ms``, ``30s``, ``2m``, ``1h`` or a number of seconds -> seconds (``float``).

Each parser raises :class:`ValueError` whose message says what was expected. Zero,
negative, NaN/infinite and absurd values (memory over 1 PiB, more than 1024 cores, a
duration over one day) are refused.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

MAX_MEMORY = 2**50
"""The largest memory limit accepted: 1 PiB."""

MAX_CPU = 1024.0
"""The largest cpu limit accepted, in cores."""

MIN_CPU = 0.001
"""The smallest cpu limit accepted: one millicore."""

MAX_DURATION = 86400.0
"""The longest duration accepted: one day, in seconds."""

MEMORY_EXPECTED = "a memory quantity like 512Mi, 2Gi, 1G or a number of bytes"
CPU_EXPECTED = "a cpu quantity like 500m, 2 or 0.5"
DURATION_EXPECTED = "a duration like 500ms, 30s, 2m, 1h or a number of seconds"

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_MEMORY_RE = re.compile(
    rf"(?P<number>{_NUMBER})(?:(?P<suffix>[KMGTPE]i|[kKMGTPE])|[eE](?P<exponent>[+-]?[0-9]{{1,4}}))?"
)
_CPU_RE = re.compile(rf"(?:(?P<milli>[0-9]+)m|(?P<cores>{_NUMBER}))")
_DURATION_RE = re.compile(rf"(?P<number>{_NUMBER})(?P<unit>ms|s|m|h)?")

_MEMORY_SUFFIXES: dict[str, int] = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DURATION_UNITS: dict[str, float] = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_finite(value: float, what: str) -> None:
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{what} must be a finite number, got {_show(value)}")


def _check_positive(value: float | Decimal, original: object, what: str) -> None:
    if value <= 0:
        raise ValueError(f"{what} must be more than 0, got {_show(original)}")


def parse_memory(value: object) -> int:
    """Parse a memory quantity into bytes (rounded up to a whole byte).

    Accepts an integer number of bytes, or a string: a plain number, a number with a
    binary suffix (``Ki Mi Gi Ti Pi Ei``), a decimal suffix (``k K M G T P E``) or an
    exponent (``1e9``). Decimals are allowed (``1.5Gi``).
    """
    if _is_number(value):
        assert isinstance(value, int | float)
        _check_finite(value, "memory")
        _check_positive(value, value, "memory")
        amount = Decimal(value)
    elif isinstance(value, str):
        amount = _memory_from_text(value)
    else:
        raise ValueError(f"expected {MEMORY_EXPECTED}, got {_show(value)}")
    if amount > MAX_MEMORY:
        raise ValueError(f"memory {_show(value)} is more than the limit of 1Pi (1 PiB)")
    return math.ceil(amount)


def _memory_from_text(value: str) -> Decimal:
    text = value.strip()
    match = _MEMORY_RE.fullmatch(text)
    if match is None:
        hint = ""
        if text.startswith("-"):
            raise ValueError(f"memory must be more than 0, got {_show(value)}")
        if text.endswith("m") and _MEMORY_RE.fullmatch(text[:-1]):
            hint = f" ('m' means milli; did you mean '{text[:-1]}Mi'?)"
        raise ValueError(f"{_show(value)} is not {MEMORY_EXPECTED}{hint}")
    try:
        number = Decimal(match["number"])
        if match["exponent"] is not None:
            amount = number.scaleb(int(match["exponent"]))
        else:
            amount = number * _MEMORY_SUFFIXES[match["suffix"] or ""]
    except InvalidOperation as error:  # pragma: no cover - guarded by the regex
        raise ValueError(f"{_show(value)} is not {MEMORY_EXPECTED}") from error
    _check_positive(amount, value, "memory")
    if amount < 1:
        raise ValueError(f"memory must be at least 1 byte, got {_show(value)}")
    return amount


def parse_cpu(value: object) -> float:
    """Parse a cpu quantity into cores: ``500m`` -> 0.5, ``2`` -> 2.0, ``"0.5"`` -> 0.5."""
    if _is_number(value):
        assert isinstance(value, int | float)
        _check_finite(value, "cpu")
        cores = float(value)
    elif isinstance(value, str):
        cores = _cpu_from_text(value)
    else:
        raise ValueError(f"expected {CPU_EXPECTED}, got {_show(value)}")
    _check_positive(cores, value, "cpu")
    if cores < MIN_CPU:
        raise ValueError(f"cpu must be at least 1m (0.001 cores), got {_show(value)}")
    if cores > MAX_CPU:
        raise ValueError(f"cpu {_show(value)} is more than the limit of 1024 cores")
    return cores


def _cpu_from_text(value: str) -> float:
    text = value.strip()
    match = _CPU_RE.fullmatch(text)
    if match is None:
        if text.startswith("-"):
            raise ValueError(f"cpu must be more than 0, got {_show(value)}")
        raise ValueError(f"{_show(value)} is not {CPU_EXPECTED}")
    if match["milli"] is not None:
        return float(match["milli"]) / 1000
    return float(match["cores"])


def parse_duration(value: object) -> float:
    """Parse a duration into seconds: ``500ms`` -> 0.5, ``30s`` -> 30.0, ``2m`` -> 120.0.

    A bare number (or numeric string) is a number of seconds; ``h`` is hours.
    """
    if _is_number(value):
        assert isinstance(value, int | float)
        _check_finite(value, "duration")
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _duration_from_text(value)
    else:
        raise ValueError(f"expected {DURATION_EXPECTED}, got {_show(value)}")
    _check_positive(seconds, value, "duration")
    if seconds > MAX_DURATION:
        raise ValueError(f"duration {_show(value)} is more than the limit of one day")
    return seconds


def _duration_from_text(value: str) -> float:
    text = value.strip()
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        if text.startswith("-"):
            raise ValueError(f"duration must be more than 0, got {_show(value)}")
        raise ValueError(f"{_show(value)} is not {DURATION_EXPECTED}")
    seconds = float(match["number"]) * _DURATION_UNITS[match["unit"] or ""]
    return seconds
