"""Byte budgets: ``"512MB"``, ``"2GB"``, ``"1.5 GiB"`` or an int of bytes."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_budget(budget: int | float | str) -> int:
    """Bytes in a budget given as an int or a string with a unit (decimal MB/GB, binary MiB/GiB).

    >>> parse_budget("512MB")
    512000000
    >>> parse_budget(2**20)
    1048576
    """
    if isinstance(budget, bool):
        raise TypeError("budget must be a byte count like 512_000_000 or a string like '512MB'")
    if isinstance(budget, (int, float)):
        value = float(budget)
    elif isinstance(budget, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", budget)
        if m is None or m.group(2).lower() not in _UNITS:
            raise ValueError(
                f"budget {budget!r} is not a size: pass bytes as an int or a string like "
                "'512MB', '2GB' or '1.5GiB'"
            )
        value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        raise TypeError(
            f"budget must be an int of bytes or a string like '512MB', got {type(budget).__name__}"
        )
    if value <= 0:
        raise ValueError(f"budget must be positive, got {budget!r}")
    return int(value)


def format_bytes(n: float) -> str:
    """``format_bytes(1_500_000) == '1.5 MB'``: decimal units, as budgets are written."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
