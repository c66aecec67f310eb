"""Weight histograms with bins fixed across epochs, so epochs can be compared bin by bin.

The edges of a parameter are chosen once, from the first epoch it is seen in: its finite range
widened by half its width on each side (weights usually spread out during training), split into
``bins`` equal bins. Later values outside the edges are not lost: they are counted in an
underflow (below the first edge, -Inf included) and an overflow (above the last edge, +Inf
included) count, and NaNs in their own count. So ``counts.sum() + under + over + nan == numel``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..numpy_view import numpy_view

DEFAULT_BINS = 64
HEADROOM = 0.5
# histc counts in float32, exact only up to 2**24 a bin: bigger tensors are counted in chunks of
# this many values, each chunk's counts added as int64 (the chunks also stay in the L2 cache).
EXACT_CHUNK = 1 << 17


def choose_edges(lo: float | None, hi: float | None, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Edges for values seen in ``[lo, hi]`` with headroom; ``lo``/``hi`` None (no finite value) -> [-1, 1].

    >>> choose_edges(0.0, 1.0, bins=4)
    array([-0.5,  0. ,  0.5,  1. ,  1.5])
    """
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = -1.0, 1.0
    span = hi - lo
    if span <= 0:
        # A constant tensor (zero-initialised bias): a window around it, scaled to its magnitude.
        span = max(abs(lo), 1e-3)
        lo, hi = lo - span / 2, hi + span / 2
    return np.linspace(lo - HEADROOM * span, hi + HEADROOM * span, bins + 1)


@dataclass
class HistogramCounts:
    """One epoch's histogram of one tensor on fixed ``edges``."""

    counts: np.ndarray  # int64 [bins]
    underflow: int
    overflow: int
    nan: int


def count(t: torch.Tensor, edges: np.ndarray, stats: dict | None = None) -> HistogramCounts:
    """Histogram of ``t`` (any device, any float dtype) on ``edges``, with under/overflow and NaN counts.

    ``stats`` (from ``summarize``) lets the common case skip the passes that would find nothing:
    no NaN, and min/max inside the edges.

    >>> count(torch.tensor([-9.0, 0.1, 0.2, float("nan")]), np.array([0.0, 0.5, 1.0])).counts
    array([2, 0])
    """
    flat = t.detach().reshape(-1)
    if not flat.is_floating_point():
        flat = flat.double()
    elif flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    lo, hi = float(edges[0]), float(edges[-1])
    # histc counts values equal to `hi` in the last bin and ignores what lies outside [lo, hi]:
    # those are exactly the under/overflow counts.
    if stats is not None and not (stats["nan"] or stats["posinf"] or stats["neginf"]):
        inside = stats["min"] is None or (stats["min"] >= lo and stats["max"] <= hi)
        counts = histc(flat, len(edges) - 1, lo, hi, inside=inside)
        if inside:
            return HistogramCounts(counts, 0, 0, 0)
        return HistogramCounts(counts, int((flat < lo).sum()), int((flat > hi).sum()), 0)
    isnan = torch.isnan(flat)
    n_nan = int(isnan.sum())
    if n_nan:
        flat = flat[~isnan]
    counts = histc(flat, len(edges) - 1, lo, hi)
    under = int((flat < lo).sum())
    over = int((flat > hi).sum())
    return HistogramCounts(counts, under, over, n_nan)


def histc(flat: torch.Tensor, bins: int, lo: float, hi: float, inside: bool = False) -> np.ndarray:
    """``torch.histc`` of a flat tensor as exact int64 counts on the host (see ``EXACT_CHUNK``).
    ``inside``: every value is known to lie in ``[lo, hi]`` (no NaN): no pass to find those
    that do not.

    >>> histc(torch.tensor([0.0, 0.25, 0.5, 1.0, 7.0]), 2, 0.0, 1.0).tolist()
    [2, 2]
    """
    if flat.device.type == "cpu" and flat.dtype in _NUMPY_HISTC and lo < hi:
        counts = _histc_numpy(numpy_view(flat), bins, lo, hi, inside)
        if counts is not None:
            return counts
    if flat.numel() <= EXACT_CHUNK:
        return torch.histc(flat, bins=bins, min=lo, max=hi).to(torch.int64).cpu().numpy()
    total = torch.zeros(bins, dtype=torch.int64, device=flat.device)
    for x in flat.split(EXACT_CHUNK):
        total += torch.histc(x, bins=bins, min=lo, max=hi).to(torch.int64)
    return total.cpu().numpy()


_NUMPY_HISTC = {torch.float32: np.float32, torch.float64: np.float64}


def _histc_numpy(a: np.ndarray, bins: int, lo: float, hi: float, inside: bool) -> np.ndarray | None:
    """``torch.histc``'s counts for a CPU array, computed with numpy: the same arithmetic in the
    array's dtype as torch's CPU kernel (bin = trunc((x - lo) * bins / (hi - lo)), ``lo`` and
    ``hi`` rounded to that dtype, values equal to ``hi`` in the last bin, the rest of
    ``[lo, hi]``'s outside ignored), so the counts are identical; in vectorised passes instead of
    histc's per-value division, about twice as fast, and int64 at any size. None when the
    rounded range is empty (torch's own path then)."""
    kind = a.dtype.type
    left, right = kind(lo), kind(hi)
    width = right - left
    if not (width > 0 and np.isfinite(width)):
        return None
    scale = kind(bins)
    total = np.zeros(bins + 1, dtype=np.int64)
    buf = np.empty(min(a.size, EXACT_CHUNK), dtype=a.dtype)
    for start in range(0, a.size, EXACT_CHUNK):
        x = a[start : start + EXACT_CHUNK]
        if not inside:
            x = x[(x >= left) & (x <= right)]  # NaN fails both
        q = buf[: x.size]
        np.subtract(x, left, out=q)
        np.multiply(q, scale, out=q)
        np.divide(q, width, out=q)
        # x in [lo, hi] gives q in [0, bins]: q == bins (x == hi) is the last bin's
        total += np.bincount(q.astype(np.intp), minlength=bins + 1)
    total[bins - 1] += total[bins]
    return total[:bins]
