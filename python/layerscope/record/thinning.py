"""What to let go when the history outgrows its budget.

Two moves, cheapest loss first (``Recorder`` applies them oldest epoch first):

- *reduce*: a tensor bigger than ``max_elements`` is kept as block means of its 2-D view
  ``[shape[0], prod(shape[1:])]`` (a heatmap at screen resolution), marked ``exact=False``;
- *drop*: an epoch's tensors are let go, keeping the first, the last, pinned epochs and, among the
  rest, an evenly spaced set (the epoch dropped is always the one in the densest stretch).

Scalars, histograms and stats of every epoch are small and always kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def choose_drop(kept: Sequence[int], protected: Iterable[int]) -> int | None:
    """The epoch in ``kept`` whose removal leaves the most even spacing; None if all are protected.

    >>> choose_drop([0, 1, 2, 3, 5, 9], protected=[0, 9])
    1
    """
    keep = sorted(kept)
    prot = set(protected)
    best: tuple[int, int] | None = None
    for i, e in enumerate(keep):
        if e in prot or i == 0 or i == len(keep) - 1:
            continue
        gap = keep[i + 1] - keep[i - 1]
        if best is None or gap < best[0]:
            best = (gap, e)
    return None if best is None else best[1]


def reduced_shape(shape: Sequence[int], max_elements: int) -> tuple[int, int]:
    """Block sizes ``(fy, fx)`` for the 2-D view of ``shape`` so that the result fits ``max_elements``."""
    rows = int(shape[0]) if len(shape) else 1
    cols = int(math.prod(shape[1:])) if len(shape) > 1 else 1
    fy = fx = 1
    while math.ceil(rows / fy) * math.ceil(cols / fx) > max_elements:
        # Halve the longer side first, so the picture keeps its aspect ratio.
        if math.ceil(cols / fx) >= math.ceil(rows / fy):
            fx *= 2
        else:
            fy *= 2
    return fy, fx


def reduce_array(a: np.ndarray, max_elements: int) -> np.ndarray:
    """Block means of the 2-D view ``[shape[0], rest]`` of ``a``, at most ``max_elements`` values (float32).

    NaN and Inf propagate into their block, so a view still shows them.

    >>> reduce_array(np.arange(8.0).reshape(2, 4), 4)
    array([[0.5, 2.5],
           [4.5, 6.5]], dtype=float32)
    """
    shape = a.shape if a.ndim else (1,)
    rows = int(shape[0])
    cols = int(math.prod(shape[1:])) if len(shape) > 1 else 1
    m = np.asarray(a, dtype=np.float64).reshape(rows, cols)
    fy, fx = reduced_shape(shape, max_elements)
    if fy == fx == 1:
        return m.astype(np.float32)
    ry, rx = math.ceil(rows / fy), math.ceil(cols / fx)
    padded = np.zeros((ry * fy, rx * fx))
    padded[:rows, :cols] = m
    weight = np.zeros((ry * fy, rx * fx))
    weight[:rows, :cols] = 1.0
    sums = padded.reshape(ry, fy, rx, fx).sum(axis=(1, 3))
    n = weight.reshape(ry, fy, rx, fx).sum(axis=(1, 3))
    return (sums / n).astype(np.float32)
