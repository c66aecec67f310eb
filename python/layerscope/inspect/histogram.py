"""Whole-tensor summary for the tensor views: statistics and a histogram, in bounded memory.

``summarize(x)`` makes two passes over ``x`` in float32 chunks (never a full-size temporary):
the first gives count, min/max, mean/std/norm, share of exact zeros and NaN/+Inf/-Inf counts
(the keys of ``tensor_stats``), the second a histogram of the finite values with ``FINE_BINS``
equal bins over ``[min, max]`` plus the smallest non-zero and largest magnitude (the range of a
log-magnitude colour scale). Percentiles come from the histogram: ``percentile(hist, q)`` is
within one fine bin, ``(max - min) / FINE_BINS``, of the exact value. A tensor of millions of
values is read by two threads at once, each pass split into ranges (``SPLIT_THREADS``). A big
contiguous float32 tensor takes numba kernels that read each value once a pass, with the same
results (``summary_kernels.py``; the torch ops below otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ..wire.tiles import chunk_elements, tile_threads
from . import summary_kernels
from .stats import as_tensor

FINE_BINS = 4096


def iter_chunks32(t: torch.Tensor, elements: int | None = None) -> Iterator[torch.Tensor]:
    """Flat float32 chunks of ``t`` (a copy of one chunk at most). By default at most 2**21
    values and 1/64 of the tensor: the histogram's temporaries (~16 bytes a value: offsets,
    int64 bin indices, magnitudes) stay under 10 % of a float32 tensor's bytes."""
    if elements is None:
        elements = chunk_elements(t.numel())
    if t.dim() == 0:
        t = t.reshape(1)
    if t.is_contiguous():
        flat = t.reshape(-1)
        for start in range(0, flat.numel(), elements):
            yield flat[start : start + elements].to(torch.float32)
        return
    rows = max(1, elements // max(1, t.numel() // max(1, t.shape[0])))
    for start in range(0, t.shape[0], rows):
        yield t[start : start + rows].reshape(-1).to(torch.float32)


def summarize(x: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(stats, hist)`` of a tensor or array; JSON-safe. See the module docstring.

    >>> stats, hist = summarize(torch.tensor([1.0, 2.0, float("nan"), 0.0]))
    >>> stats["nan"], stats["zeros"], sum(hist["counts"])
    (1, 0.25, 3)
    """
    t = as_tensor(x)
    stats = fast_stats(t)
    return stats, histogram(t, stats)


def fast_stats(x: Any) -> dict[str, Any]:
    """The keys of ``tensor_stats`` (first pass of ``summarize``), float32 chunks."""
    with tile_threads():
        return _stats(as_tensor(x))


def histogram(x: Any, stats: dict[str, Any]) -> dict[str, Any]:
    """The fine histogram of the finite values over ``[stats min, stats max]`` (second pass)."""
    with tile_threads():
        return _histogram(as_tensor(x), stats)


# The passes over a tensor of at least 2 * SPLIT_MIN_ELEMENTS values run in SPLIT_THREADS threads
# (the caller's and helpers, each over its own range with one torch thread: the ops release the
# GIL), their counts and sums merged. A thread pool rather than torch's intra-op threads: those
# spin-wait between the small ops of a pass, which cost 3-4x on this busy 2-core machine (see
# wire.tiles.TILE_THREADS), and a pass's ops are too small to split well one by one.
SPLIT_THREADS = 2
SPLIT_MIN_ELEMENTS = 1 << 22

_helper = ThreadPoolExecutor(max_workers=SPLIT_THREADS - 1, thread_name_prefix="layerscope-summary")


# At most 2**17 values (512 KB of float32) a chunk: the chunk and its int32 bins stay in the
# core's L2 between the four or five ops that read it. At 1 GiB this was 1.1 s for both passes
# against 1.3 s with chunks of 2**20 (4 MB, the whole L2) here.
_SUMMARY_CHUNK = 1 << 17


def _buffer_elements(numel: int) -> int:
    """Values per chunk of a summary pass: at most ``_SUMMARY_CHUNK`` and 1/256 of the tensor
    (at least 2**16, so a pass over a small tensor is not hundreds of tiny steps)."""
    return max(1, min(_SUMMARY_CHUNK, chunk_elements(numel), max(1 << 16, numel // 256), numel))


def _shift(c: torch.Tensor) -> float:
    """The chunk's mean where it exceeds the chunk's standard deviation, else 0: sums of squares
    around 0 lose no precision unless the mean dominates the spread."""
    m = c.numel()
    mean = float(c.sum()) / m
    var = max(0.0, float(torch.dot(c, c)) / m - mean * mean)
    return mean if mean * mean > var else 0.0


def _parts(t: torch.Tensor) -> list[torch.Tensor]:
    """``t`` in up to ``SPLIT_THREADS`` contiguous pieces (views) for the torch passes: flat
    ranges of a contiguous tensor, row ranges otherwise; one piece below ``SPLIT_MIN_ELEMENTS``."""
    parts = max(1, min(SPLIT_THREADS, t.numel() // max(1, SPLIT_MIN_ELEMENTS)))
    if parts == 1 or t.dim() == 0:
        return [t]
    if t.is_contiguous():
        flat = t.reshape(-1)
        step = -(-flat.numel() // parts)
        return [flat[i : i + step] for i in range(0, flat.numel(), step)]
    step = -(-t.shape[0] // parts)
    return [t[i : i + step] for i in range(0, t.shape[0], step)]


def _in_parts(fn: Any, parts: list[torch.Tensor]) -> list[Any]:
    """``fn(part)`` for each part, the first in the caller's thread and the others on helper
    threads (torch ops release the GIL), each with one torch thread; results in order."""

    def one_thread(part: torch.Tensor) -> Any:
        with tile_threads():  # the helper's own OpenMP setting, not the caller's
            return fn(part)

    pending = [_helper.submit(one_thread, p) for p in parts[1:]]
    return [fn(parts[0])] + [p.result() for p in pending]


def _first_shift(t: torch.Tensor, size: int) -> float:
    """``_shift`` of the first chunk that holds a finite value (0 when none does)."""
    for c in iter_chunks32(t, size):
        if not _all_finite_chunk(c):
            c = c[torch.isfinite(c)]
        if c.numel():
            return _shift(c)
    return 0.0


def _all_finite_chunk(c: torch.Tensor) -> bool:
    cmin, cmax = (float(v) for v in torch.aminmax(c))
    return math.isfinite(cmin) and math.isfinite(cmax)


def _stats(t: torch.Tensor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "numel": t.numel(),
    }
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    size = _buffer_elements(t.numel())
    # Sums around the first chunk's mean where that mean is large against its spread (no
    # cancellation in the variance), else plain sums (relative error ~1e-7 either way).
    shift = _first_shift(t, size) if t.numel() else 0.0
    native = summary_kernels.take(t)
    parts = _in_parts(lambda p: _stats_part(p, size, shift, native), _parts(t))
    n = sum(q["n"] for q in parts)
    nan, posinf, neginf = (sum(q[k] for q in parts) for k in ("nan", "posinf", "neginf"))
    nonzero = sum(q["nonzero"] for q in parts)
    total = sum(q["total"] for q in parts)
    total_sq = sum(q["total_sq"] for q in parts)
    lo = min(q["lo"] for q in parts)
    hi = max(q["hi"] for q in parts)
    numel = t.numel()
    out.update(nan=nan, posinf=posinf, neginf=neginf, finite=n)
    out["zeros"] = (numel - nonzero) / numel if numel else None
    if n:
        mean_d = total / n
        var = max(0.0, total_sq / n - mean_d * mean_d)
        out.update(
            min=lo,
            max=hi,
            mean=shift + mean_d,
            std=math.sqrt(var),
            norm=math.sqrt(max(0.0, total_sq + 2 * shift * total + n * shift * shift)),
        )
    else:
        out.update(min=None, max=None, mean=None, std=None, norm=None)
    return out


def _scratch(buf: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` values of a chunk buffer, or a new one when a chunk is longer (one row of
    a non-contiguous tensor can exceed the chunk size)."""
    return buf[:n] if n <= buf.numel() else torch.empty(n, dtype=buf.dtype)


def _stats_part(t: torch.Tensor, size: int, shift: float, native: bool) -> dict[str, Any]:
    if native:  # one read a value (summary_kernels.py)
        return summary_kernels.stats_part(t, shift)
    n = nan = posinf = neginf = nonzero = 0
    lo, hi = math.inf, -math.inf
    total = total_sq = 0.0
    buf = torch.empty(size, dtype=torch.float32)
    # Three reductions a chunk (aminmax, sum, dot) and the least magnitude (abs, amin), each one
    # read of a chunk that stays in cache; count_nonzero (as costly as the other five together)
    # runs only for chunks whose least magnitude is 0 or NaN, and the masked copy only for
    # chunks that hold NaN or Inf.
    for c in iter_chunks32(t, size):
        if not float(torch.abs(c, out=_scratch(buf, c.numel())).amin()) > 0.0:
            nonzero += int(torch.count_nonzero(c))
        else:
            nonzero += c.numel()
        cmin, cmax = (float(v) for v in torch.aminmax(c))
        if not (math.isfinite(cmin) and math.isfinite(cmax)):
            isnan = torch.isnan(c)
            nan += int(isnan.sum())
            posinf += int((c == math.inf).sum())
            neginf += int((c == -math.inf).sum())
            c = c[torch.isfinite(c)]
            if c.numel() == 0:
                continue
            cmin, cmax = (float(v) for v in torch.aminmax(c))
        # float32 sums of one chunk are pairwise, accumulated in float64 across chunks.
        d = torch.sub(c, shift, out=_scratch(buf, c.numel())) if shift != 0.0 else c
        total += float(d.sum())
        total_sq += float(torch.dot(d, d))
        n += c.numel()
        lo, hi = min(lo, cmin), max(hi, cmax)
    return {
        "n": n,
        "nan": nan,
        "posinf": posinf,
        "neginf": neginf,
        "nonzero": nonzero,
        "total": total,
        "total_sq": total_sq,
        "lo": lo,
        "hi": hi,
    }


def _histogram(t: torch.Tensor, stats: dict[str, Any]) -> dict[str, Any]:
    lo, hi = stats["min"], stats["max"]
    hist: dict[str, Any] = {
        "bins": FINE_BINS,
        "lo": lo,
        "hi": hi,
        "counts": [],
        "abs_lo": None,
        "abs_hi": None,
    }
    if lo is None:
        return hist
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    all_finite = stats["finite"] == stats["numel"]
    size = _buffer_elements(t.numel())
    native = summary_kernels.take(t)
    parts = _in_parts(lambda p: _histogram_part(p, size, lo, hi, all_finite, native), _parts(t))
    counts = sum(c for c, _ in parts[1:]) + parts[0][0] if len(parts) > 1 else parts[0][0]
    least = min(m for _, m in parts)
    counts[FINE_BINS - 1] += counts[FINE_BINS]
    counts = counts[:FINE_BINS]
    abs_lo = _bits_to_float(least + 1) if least < _NO_MAGNITUDE else math.inf
    # The largest magnitude is the larger of |min| and |max| (finite values).
    abs_hi = max(abs(lo), abs(hi))
    hist["counts"] = counts.tolist()
    hist["abs_lo"] = abs_lo if math.isfinite(abs_lo) else None
    hist["abs_hi"] = abs_hi if abs_hi > 0 else None
    return hist


def _histogram_part(
    t: torch.Tensor, size: int, lo: float, hi: float, all_finite: bool, native: bool
) -> tuple[torch.Tensor, int]:
    """The ``FINE_BINS + 1`` counts (the last: offsets one past the end) and the least
    magnitude bits of the finite values of ``t``."""
    counts = torch.zeros(FINE_BINS + 1, dtype=torch.int64)
    width = hi - lo
    k = FINE_BINS / width if width > 0 else 0.0
    least = _NO_MAGNITUDE
    # A range wider than float32's (min near -3.4e38, max near +3.4e38) overflows the offsets
    # to +Inf: those chunks clamp (as the last bin) before the cast, which would be undefined.
    # A range narrower than ~4096 / 3.4e38 (subnormal values) overflows the scale in float32:
    # those offsets are computed in float64.
    with np.errstate(over="ignore"):
        overflows = not math.isfinite(float(np.float32(hi) - np.float32(lo)))
        narrow = not math.isfinite(float(np.float32(k)))
    if native:  # one read a value, the same bins (summary_kernels.py)
        return summary_kernels.histogram_part(t, FINE_BINS, lo, k, narrow, overflows, all_finite)
    # Every temporary in buffers made once (float offsets, int32 bin indices and magnitude bits:
    # 8 bytes a value), over chunks of at most 1/256 of the tensor: per-chunk allocations left
    # ~10 MB of freed heap held by malloc after a 64 MB tensor.
    offsets = torch.empty(size, dtype=torch.float32)
    bins = torch.empty(size, dtype=torch.int32)
    for c in iter_chunks32(t, size):
        if not all_finite:
            c = c[torch.isfinite(c)]
            if c.numel() == 0:
                continue
        m = c.numel()
        off, idx = _scratch(offsets, m), _scratch(bins, m)
        if k:
            # float32 offsets: a value within float32 rounding of a bin edge may land in the
            # neighbouring bin, which the "within one fine bin" bound already allows. Finite
            # offsets lie in [0, FINE_BINS * (1 + 2**-23)], so truncation gives 0..FINE_BINS and
            # the one past the end is folded into the last bin (as clamping would).
            if narrow:
                off.copy_(((c.double() - lo) * k).clamp_(0, FINE_BINS))
            else:
                torch.sub(c, lo, out=off).mul_(k)
            if overflows:
                off.clamp_(0, FINE_BINS)
            idx.copy_(off)  # truncation toward zero: the bin
            counts += torch.bincount(idx, minlength=FINE_BINS + 1)
        else:
            counts[0] += m
        least = min(least, _least_magnitude_bits(c, idx))
    return counts, least


# ``(bits - 1) & 0x7FFFFFFF`` of a float32 is its magnitude's bit pattern minus one, and +-0 wrap
# to 0x7FFFFFFF: above every finite magnitude (whose patterns order as the magnitudes do).
_NO_MAGNITUDE = 0x7FFFFFFF


def _least_magnitude_bits(c: torch.Tensor, out: torch.Tensor) -> int:
    """Bit pattern (minus one) of the smallest non-zero ``|c|`` of finite ``c``, or
    ``_NO_MAGNITUDE`` when every value is zero: three integer ops, no mask or float copy."""
    bits = torch.sub(c.view(torch.int32), 1, out=out[: c.numel()])
    return int(bits.bitwise_and_(0x7FFFFFFF).amin())


def _bits_to_float(bits: int) -> float:
    return float(np.array([bits], dtype=np.int32).view(np.float32)[0])


def percentile(hist: dict[str, Any], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of the finite values, within one fine bin."""
    counts = np.asarray(hist["counts"], dtype=np.float64)
    if hist["lo"] is None or counts.sum() == 0:
        return None
    lo, hi = float(hist["lo"]), float(hist["hi"])
    if hi <= lo:
        return lo
    cum = np.cumsum(counts)
    target = q / 100.0 * cum[-1]
    i = int(np.searchsorted(cum, target, side="left"))
    i = min(i, len(counts) - 1)
    before = cum[i - 1] if i else 0.0
    frac = (target - before) / counts[i] if counts[i] else 0.0
    width = (hi - lo) / len(counts)
    return lo + (i + min(1.0, max(0.0, frac))) * width


def coarse_counts(hist: dict[str, Any], bins: int = 64) -> list[int]:
    """The fine histogram merged into ``bins`` display bins (``FINE_BINS`` must divide evenly)."""
    counts = np.asarray(hist["counts"], dtype=np.int64)
    if counts.size == 0:
        return []
    return counts.reshape(bins, -1).sum(1).tolist()
