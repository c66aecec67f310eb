"""Whole-tensor summary for the tensor views: statistics and a histogram, in bounded memory.

``summarize(x)`` makes two passes over ``x`` in float32 chunks (never a full-size temporary):
the first gives count, min/max, mean/std/norm, share of exact zeros and NaN/+Inf/-Inf counts
(the keys of ``tensor_stats``), the second a histogram of the finite values with ``FINE_BINS``
equal bins over ``[min, max]`` plus the smallest non-zero and largest magnitude (the range of a
log-magnitude colour scale). Percentiles come from the histogram: ``percentile(hist, q)`` is
within one fine bin, ``(max - min) / FINE_BINS``, of the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..wire.tiles import chunk_elements, tile_threads
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


def _stats(t: torch.Tensor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "numel": t.numel(),
    }
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    n = nan = posinf = neginf = nonzero = 0
    lo, hi = math.inf, -math.inf
    shift: float | None = None
    total = total_sq = 0.0
    buf = torch.empty(_buffer_elements(t.numel()), dtype=torch.float32)
    # Four reductions a chunk (aminmax, count_nonzero, sum, dot), each one read of a chunk that
    # stays in cache; the masked copy runs only for chunks that hold NaN or Inf.
    for c in iter_chunks32(t, buf.numel()):
        nonzero += int(torch.count_nonzero(c))
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
        if shift is None:
            shift = _shift(c)
        # Sums around the first chunk's mean where that mean is large against its spread (no
        # cancellation in the variance), else plain sums (relative error ~1e-7 either way);
        # float32 sums of one chunk are pairwise, accumulated in float64 across chunks.
        d = torch.sub(c, shift, out=buf[: c.numel()]) if shift != 0.0 else c
        total += float(d.sum())
        total_sq += float(torch.dot(d, d))
        n += c.numel()
        lo, hi = min(lo, cmin), max(hi, cmax)
    numel = t.numel()
    out.update(nan=nan, posinf=posinf, neginf=neginf, finite=n)
    out["zeros"] = (numel - nonzero) / numel if numel else None
    if n:
        assert shift is not None
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
    counts = torch.zeros(FINE_BINS + 1, dtype=torch.int64)
    width = hi - lo
    k = FINE_BINS / width if width > 0 else 0.0
    least = _NO_MAGNITUDE
    all_finite = stats["finite"] == stats["numel"]
    # A range wider than float32's (min near -3.4e38, max near +3.4e38) overflows the offsets
    # to +Inf: those chunks clamp (as the last bin) before the cast, which would be undefined.
    # A range narrower than ~4096 / 3.4e38 (subnormal values) overflows the scale in float32:
    # those offsets are computed in float64.
    with np.errstate(over="ignore"):
        overflows = not math.isfinite(float(np.float32(hi) - np.float32(lo)))
        narrow = not math.isfinite(float(np.float32(k)))
    # Every temporary in buffers made once (float offsets, int32 bin indices and magnitude bits:
    # 8 bytes a value), over chunks of at most 1/256 of the tensor: per-chunk allocations left
    # ~10 MB of freed heap held by malloc after a 64 MB tensor.
    size = _buffer_elements(t.numel())
    offsets = torch.empty(size, dtype=torch.float32)
    bins = torch.empty(size, dtype=torch.int32)
    for c in iter_chunks32(t, size):
        if not all_finite:
            c = c[torch.isfinite(c)]
            if c.numel() == 0:
                continue
        m = c.numel()
        off, idx = offsets[:m], bins[:m]
        if k:
            # float32 offsets: a value within float32 rounding of a bin edge may land in the
            # neighbouring bin, which the "within one fine bin" bound already allows. Finite
            # offsets lie in [0, FINE_BINS * (1 + 2**-23)], so truncation gives 0..FINE_BINS and
            # the one past the end is folded into the last bin below (as clamping would).
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
    counts[FINE_BINS - 1] += counts[FINE_BINS]
    counts = counts[:FINE_BINS]
    abs_lo = _bits_to_float(least + 1) if least < _NO_MAGNITUDE else math.inf
    # The largest magnitude is the larger of |min| and |max| (finite values).
    abs_hi = max(abs(lo), abs(hi))
    hist["counts"] = counts.tolist()
    hist["abs_lo"] = abs_lo if math.isfinite(abs_lo) else None
    hist["abs_hi"] = abs_hi if abs_hi > 0 else None
    return hist


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
