"""The summary passes of ``histogram.py`` over a contiguous float32 CPU tensor as numba kernels:
each pass reads a value once, in place of the torch path's four to six ops a chunk.

- ``stats_part``: count, min/max, sums of deviations from the shift and of their squares,
  non-zeros, NaN/Inf. Values are taken 16 at a time into per-lane accumulators (compares and
  selects, no reduction along the array: the compiler vectorises them); each lane's float32
  partial sums hold at most 16 values before they are added into float64. A part with NaN/Inf
  is summed again by a scalar kernel that masks them.
- ``histogram_part``: each finite value's fine bin by the torch path's own float32 arithmetic
  (``(v - lo) * k``, two roundings, truncated), counted in four interleaved copies of the bins
  (a run of equal values does not wait on one counter), and the least magnitude's bits as
  ``_least_magnitude_bits`` gives them. The bins are the torch path's, value for value.

numba is optional (``layerscope[dataset]``, as for ``fused.py``, and ``LAYERSCOPE_FUSED=0`` turns
both off); loading it and the cached kernels costs ~0.3-0.5 s the first time in a process (a
first-ever compile ~4 s), so the passes take these kernels from ``MIN_VALUES`` values (or once
they are loaded) and the torch path otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..numpy_view import numpy_view
from . import fused

# Values from which a pass repays loading numba and the kernels (the torch path reads 1 GiB in
# ~0.9 s of CPU here, these kernels in well under half of that).
MIN_VALUES = 2**25
LANES = 16
_compiled: tuple[Any, Any, Any, Any] | None = None


def worth_it(t: torch.Tensor) -> bool:
    """Whether the passes over ``t`` take these kernels: a contiguous float32 CPU tensor, big
    enough to repay loading them (always once they are loaded)."""
    return (
        fused.available()
        and t.dtype == torch.float32
        and t.device.type == "cpu"
        and t.is_contiguous()
        and (_compiled is not None or t.numel() >= MIN_VALUES)
    )


def take(t: torch.Tensor) -> bool:
    """``worth_it(t)``, and then the kernels compiled or loaded from numba's cache (once, here:
    before a pass splits over threads, so that the threads do not both compile them)."""
    if not worth_it(t):
        return False
    _kernels()
    return True


def _kernels() -> tuple[Any, Any, Any, Any]:
    global _compiled
    if _compiled is None:
        import numba

        global _bin
        jit = numba.njit(cache=True, nogil=True, boundscheck=False)
        _bin = jit(_bin_py)  # compiled first: the histogram kernels resolve it when they compile
        _compiled = (jit(_stats_fast), jit(_stats_careful), jit(_hist_fast), jit(_hist_careful))
    return _compiled


def stats_part(t: torch.Tensor, shift: float) -> dict[str, Any]:
    """``histogram._stats_part`` of a contiguous float32 tensor (any shape)."""
    a = numpy_view(t).reshape(-1)
    s32 = np.float32(shift)
    fast, careful, _, _ = _kernels()
    lo, hi, total, total_sq, nonzero, bad = fast(a, s32)
    nan = posinf = neginf = 0
    n = a.size
    if bad:
        lo, hi, total, total_sq, nonzero, nan, posinf, neginf = careful(a, s32)
        n = a.size - nan - posinf - neginf
    return {
        "n": int(n),
        "nan": int(nan),
        "posinf": int(posinf),
        "neginf": int(neginf),
        "nonzero": int(nonzero),
        "total": float(total),
        "total_sq": float(total_sq),
        "lo": float(lo),
        "hi": float(hi),
    }


def histogram_part(
    t: torch.Tensor, bins: int, lo: float, k: float, narrow: bool, overflows: bool, all_finite: bool
) -> tuple[torch.Tensor, int]:
    """``histogram._histogram_part`` of a contiguous float32 tensor: the ``bins + 1`` counts
    and the least magnitude bits of its finite values (``k``: bins per unit, 0 for one value;
    ``narrow``: offsets in float64; ``overflows``: offsets clamped before the cast)."""
    a = numpy_view(t).reshape(-1)
    counts = np.zeros((4, bins + 1), np.int64)
    mode = 3 if not k else 2 if narrow else 1 if overflows else 0
    _, _, fast, careful = _kernels()
    kernel = fast if all_finite else careful
    with np.errstate(over="ignore"):  # a subnormal-wide range's k (mode 2 reads it in float64)
        k32 = np.float32(k)
    least = kernel(a, a.view(np.int32), np.float32(lo), k32, lo, k, mode, bins, counts)
    return torch.from_numpy(counts.sum(0)), int(least)


# The kernels: plain Python functions until _kernels() compiles them.


def _stats_fast(a: Any, shift: Any) -> tuple[Any, ...]:  # pragma: no cover - compiled
    lanes = LANES
    lo = np.full(lanes, np.inf, np.float32)
    hi = np.full(lanes, -np.inf, np.float32)
    s32 = np.zeros(lanes, np.float32)
    q32 = np.zeros(lanes, np.float32)
    s = np.zeros(lanes, np.float64)
    q = np.zeros(lanes, np.float64)
    nz = np.zeros(lanes, np.int64)
    bad = np.zeros(lanes, np.int64)
    inf = np.float32(np.inf)
    blocks = a.shape[0] // lanes
    for b in range(blocks):
        base = b * lanes
        for j in range(lanes):
            v = a[base + j]
            m = lo[j]
            lo[j] = v if v < m else m
            m = hi[j]
            hi[j] = v if v > m else m
            d = v - shift
            s32[j] += d
            q32[j] += d * d
            nz[j] += v != 0
            bad[j] += not abs(v) < inf
        if (b & 15) == 15:  # each lane's float32 partial sums: 16 values at most
            for j in range(lanes):
                s[j] += s32[j]
                q[j] += q32[j]
                s32[j] = 0.0
                q32[j] = 0.0
    for j in range(lanes):
        s[j] += s32[j]
        q[j] += q32[j]
    vlo, vhi = lo.min(), hi.max()
    total, total_sq = s.sum(), q.sum()
    nonzero, nbad = nz.sum(), bad.sum()
    for i in range(blocks * lanes, a.shape[0]):
        v = a[i]
        vlo = min(vlo, v)
        vhi = max(vhi, v)
        d = v - shift
        total += d
        total_sq += d * d
        nonzero += v != 0
        nbad += not abs(v) < inf
    return vlo, vhi, total, total_sq, nonzero, nbad


def _stats_careful(a: Any, shift: Any) -> tuple[Any, ...]:  # pragma: no cover - compiled
    vlo = np.float32(np.inf)
    vhi = np.float32(-np.inf)
    total = 0.0
    total_sq = 0.0
    nonzero = nan = posinf = neginf = 0
    for i in range(a.shape[0]):
        v = a[i]
        if v != 0:  # NaN too, as count_nonzero counts it
            nonzero += 1
        if v != v:
            nan += 1
            continue
        if v == np.inf:
            posinf += 1
            continue
        if v == -np.inf:
            neginf += 1
            continue
        vlo = min(vlo, v)
        vhi = max(vhi, v)
        d = v - shift
        total += d
        total_sq += d * d
    return vlo, vhi, total, total_sq, nonzero, nan, posinf, neginf


def _bin_py(
    v: Any, lo32: Any, k32: Any, lo: float, k: float, mode: int, bins: int
) -> int:  # pragma: no cover - compiled
    """A finite value's slot as the torch path computes it (0..bins, ``bins``: one past the
    end, folded into the last bin by the caller)."""
    if mode == 0:
        return int((v - lo32) * k32)  # float32: two roundings, truncated toward zero
    if mode == 1:  # the range overflows float32: offsets clamped before the cast
        f = (v - lo32) * k32
        return int(min(max(f, np.float32(0.0)), np.float32(bins)))
    if mode == 2:  # a subnormal-wide range: offsets in float64, clamped, then float32
        g = (np.float64(v) - lo) * k
        return int(np.float32(min(max(g, 0.0), float(bins))))
    return 0


_bin = _bin_py  # the kernels call this name; _kernels() makes it the compiled helper


def _hist_fast(
    a: Any, bits: Any, lo32: Any, k32: Any, lo: float, k: float, mode: int, bins: int, counts: Any
) -> int:  # pragma: no cover - compiled
    lanes = LANES
    idx = np.empty(lanes, np.int64)
    least = np.full(lanes, 0x7FFFFFFF, np.int64)
    blocks = a.shape[0] // lanes
    for b in range(blocks):
        base = b * lanes
        for j in range(lanes):
            if mode == 0:
                idx[j] = int((a[base + j] - lo32) * k32)
            else:
                idx[j] = _bin(a[base + j], lo32, k32, lo, k, mode, bins)
            m = (bits[base + j] - 1) & 0x7FFFFFFF
            least[j] = m if m < least[j] else least[j]
        for j in range(lanes):
            counts[j & 3, idx[j]] += 1
    out = least.min()
    for i in range(blocks * lanes, a.shape[0]):
        counts[0, _bin(a[i], lo32, k32, lo, k, mode, bins)] += 1
        out = min(out, (bits[i] - 1) & 0x7FFFFFFF)
    return out


def _hist_careful(
    a: Any, bits: Any, lo32: Any, k32: Any, lo: float, k: float, mode: int, bins: int, counts: Any
) -> int:  # pragma: no cover - compiled
    out = 0x7FFFFFFF
    for i in range(a.shape[0]):
        v = a[i]
        if not abs(v) < np.inf:  # NaN and Inf are not binned
            continue
        counts[0, _bin(v, lo32, k32, lo, k, mode, bins)] += 1
        out = min(out, (bits[i] - 1) & 0x7FFFFFFF)
    return out
