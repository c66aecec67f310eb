"""Ticks and number formats for the bqplot axes of the timeline's charts.

bqplot picks fractional ticks for any range ("0 0 0 0 1 1 1" on an epoch axis formatted "d") and
``.3g`` gives one axis mixed formats ("2.40", "1.00", "0.800"). Here: whole-number ticks for
steps and epochs, and one fixed number of decimals per axis, from the range of its values.
"""

from __future__ import annotations

import math

import numpy as np


def integer_ticks(lo: float, hi: float, most: int = 10) -> np.ndarray:
    """At most ``most`` whole-number ticks from ``lo`` to ``hi`` on a 1-2-5 step.

    >>> integer_ticks(0, 23).tolist()
    [0.0, 5.0, 10.0, 15.0, 20.0]
    """
    lo, hi = math.floor(lo), math.ceil(hi)
    if hi <= lo:
        return np.array([float(lo)])
    raw = max(1.0, (hi - lo) / max(1, most - 1))
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return np.arange(first, hi + 0.5, step, dtype=np.float64)


def axis_format(values: np.ndarray) -> str:
    """A d3 format with one number of decimals for every tick of an axis over ``values``: enough
    to tell ticks about a fifth of the range apart (0.60, 0.70, 0.80 -> ".2f").

    >>> axis_format(np.array([0.8, 2.4]))
    '.1f'
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ".2f"
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    if max(abs(lo), abs(hi)) >= 1e6 or span < 1e-6:
        return ".2e"
    step = span / 5
    return f".{max(0, -math.floor(math.log10(step)))}f"
