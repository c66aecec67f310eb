"""Per-tensor stats for every epoch: the keys of ``inspect.tensor_stats``, computed cheaply.

``inspect.tensor_stats`` is exact for any tensor a user looks at once (chunked float64 sums,
about a dozen passes). ``Recorder.epoch()`` summarises every parameter and every probe activation
on each epoch, inside the training loop, so here: the tensor's own dtype (float32 accumulation
is plenty for a summary), on its own device (cheap on a GPU, then one host sync per tensor), and
few passes: ``aminmax`` tells whether any NaN/Inf is present (they propagate), so the finite-only
path runs only when needed; ``std_mean`` gives the norm too; one ``== 0`` mask serves the zero
share and the dead-unit share.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..numpy_view import numpy_view
from .histograms import HistogramCounts

# summarize_fused: tensors of at least FUSED_MIN values, read in chunks of CHUNK values (512 KB of
# float32: the chunk stays in the core's L2 across the five ops that read it, instead of five
# passes over the whole tensor from memory: 15% less CPU on a 24.6M-value weight here).
FUSED_MIN = 1 << 20
CHUNK = 1 << 17
# CPU tensors up to this many values are summarised with numpy: a dozen small ops cost ~1 us
# each there against ~5 us in torch, which is what a small tensor's summary is made of (the
# probe's activations of a small model: 600 -> 230 us an epoch for the digits CNN's nine).
NUMPY_MAX = 1 << 18


def _dead(zero: torch.Tensor) -> float | None:
    """Share of units zero on every sample: channels (dim 1), or the last dim of ``[N, T, H]``."""
    if zero.dim() < 2 or zero.numel() == 0:
        return None
    dim = zero.dim() - 1 if zero.dim() == 3 else 1
    dead = zero.movedim(dim, 0).reshape(zero.shape[dim], -1).all(dim=1)
    return float(dead.float().mean())


def summarize(t: torch.Tensor, units: bool = False) -> dict[str, Any]:
    """Shape, dtype, numel, min/max/mean/std/norm over finite values, zero share, NaN/±Inf counts;
    with ``units=True`` also ``dead`` (see ``_dead``). JSON-safe; absent values are None.

    >>> summarize(torch.tensor([[0.0, 1.0], [0.0, float("nan")]]), units=True)["dead"]
    0.5
    """
    t = t.detach()
    if t.device.type == "cpu" and t.numel() <= NUMPY_MAX and t.dtype in _NUMPY_DTYPES:
        return _summarize_numpy(numpy_view(t), units)
    out: dict[str, Any] = {
        "shape": list(t.shape),
        "dtype": str(t.dtype).removeprefix("torch."),
        "numel": t.numel(),
    }
    x = t if t.dtype in (torch.float32, torch.float64) else t.float()
    n = x.numel()
    if units:
        zero = x == 0
        out["zeros"] = float(zero.sum()) / n if n else None
        out["dead"] = _dead(zero)
    else:
        out["zeros"] = (n - int(torch.count_nonzero(x))) / n if n else None
    flat = x.reshape(-1)
    nan = posinf = neginf = 0
    if flat.numel():
        lo, hi = (float(v) for v in torch.aminmax(flat))
        if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN propagates into min/max
            nan = int(torch.isnan(flat).sum())
            posinf = int((flat == math.inf).sum())
            neginf = int((flat == -math.inf).sum())
            flat = flat[torch.isfinite(flat)]
            if flat.numel():
                lo, hi = (float(v) for v in torch.aminmax(flat))
    out.update(nan=nan, posinf=posinf, neginf=neginf, finite=flat.numel())
    if flat.numel():
        m, s, norm = _moments(flat)
        out.update(min=lo, max=hi, mean=m, std=s, norm=norm)
    else:
        out.update(min=None, max=None, mean=None, std=None, norm=None)
    return out


_NUMPY_DTYPES = {
    torch.float32,
    torch.float64,
    torch.float16,
    torch.int8,
    torch.uint8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
}


def _summarize_numpy(a: np.ndarray, units: bool) -> dict[str, Any]:
    """``summarize`` of a small array, the same steps in numpy (see ``NUMPY_MAX``)."""
    x = a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)
    n = x.size
    out: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype), "numel": n}
    flat = x.reshape(-1)
    if units:
        zero = x == 0
        out["zeros"] = int(np.count_nonzero(zero)) / n if n else None
        out["dead"] = None
        if zero.ndim >= 2 and n:
            dim = zero.ndim - 1 if zero.ndim == 3 else 1
            dead = np.moveaxis(zero, dim, 0).reshape(zero.shape[dim], -1).all(axis=1)
            out["dead"] = float(dead.mean())
    else:
        out["zeros"] = (n - int(np.count_nonzero(flat))) / n if n else None
    nan = posinf = neginf = 0
    lo = hi = 0.0
    if n:
        lo, hi = float(flat.min()), float(flat.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN propagates into min/max
            nan = int(np.count_nonzero(np.isnan(flat)))
            posinf = int(np.count_nonzero(flat == math.inf))
            neginf = int(np.count_nonzero(flat == -math.inf))
            flat = flat[np.isfinite(flat)]
            if flat.size:
                lo, hi = float(flat.min()), float(flat.max())
    out.update(nan=nan, posinf=posinf, neginf=neginf, finite=int(flat.size))
    if flat.size:
        m = flat.size
        total = float(flat.sum())
        sumsq = float(np.dot(flat, flat))
        mean = total / m
        var = sumsq / m - mean * mean
        if var < 1e-3 * mean * mean:  # cancellation (see _moments): around the mean
            d = flat - mean
            var = float(np.dot(d, d)) / m
        out.update(
            min=lo, max=hi, mean=mean, std=math.sqrt(max(var, 0.0)), norm=math.sqrt(max(sumsq, 0.0))
        )
    else:
        out.update(min=None, max=None, mean=None, std=None, norm=None)
    return out


def _moments(flat: torch.Tensor) -> tuple[float, float, float]:
    """Mean, std and L2 norm from a sum and a dot product: two fast passes (``std_mean`` on the
    CPU is ~25x slower). Where the mean dwarfs the spread, the one-pass variance cancels, so it
    is recomputed around the mean."""
    n = flat.numel()
    total = float(flat.sum())
    sumsq = float(torch.dot(flat, flat)) if flat.is_floating_point() else float((flat * flat).sum())
    mean = total / n
    var = sumsq / n - mean * mean
    if var < 1e-3 * mean * mean:
        d = flat - mean
        var = float(torch.dot(d, d)) / n
    return mean, math.sqrt(max(var, 0.0)), math.sqrt(max(sumsq, 0.0))


def array_stats(array: np.ndarray, units: bool = False) -> dict[str, Any]:
    """``summarize`` of a held numpy snapshot (read-only memory maps are copied first)."""
    if array.size <= NUMPY_MAX and array.dtype in (np.float32, np.float64):
        return _summarize_numpy(array, units)  # what summarize() would call, read-only or not
    if not array.flags.writeable:
        array = np.array(array)
    return summarize(torch.from_numpy(array), units=units)


def summarize_fused(
    t: torch.Tensor, edges: np.ndarray | None = None
) -> tuple[dict[str, Any], HistogramCounts | None] | None:
    """``summarize(t)`` and, with ``edges``, its histogram (``histograms.count``) in one pass over
    L2-sized chunks, for a big float32 tensor on the CPU. None when that does not apply, or when
    the tensor holds NaN/Inf or values outside the edges (rare: the caller takes the usual
    passes, which count those).

    >>> stats, h = summarize_fused(torch.ones(1 << 20), np.linspace(0, 2, 5))
    >>> stats["mean"], h.counts.tolist()
    (1.0, [0, 0, 1048576, 0])
    """
    t = t.detach()
    if t.device.type != "cpu" or t.dtype != torch.float32 or t.numel() < FUSED_MIN:
        return None
    flat = t.reshape(-1)
    n = flat.numel()
    bins = len(edges) - 1 if edges is not None else 0
    lo_e, hi_e = (float(edges[0]), float(edges[-1])) if edges is not None else (0.0, 0.0)
    counts = torch.zeros(bins, dtype=torch.int64) if edges is not None else None
    nonzero = 0
    total = sumsq = 0.0
    lo, hi = math.inf, -math.inf
    for x in flat.split(CHUNK):
        a, b = (float(v) for v in torch.aminmax(x))
        if not (math.isfinite(a) and math.isfinite(b)):
            return None  # NaN/Inf: summarize's own path counts them
        lo, hi = min(lo, a), max(hi, b)
        nonzero += int(torch.count_nonzero(x))
        total += float(x.sum())
        sumsq += float(torch.dot(x, x))
        if counts is not None:
            counts += torch.histc(x, bins=bins, min=lo_e, max=hi_e).to(torch.int64)
    if counts is not None and (lo < lo_e or hi > hi_e):
        return None  # under/overflow to count: the usual passes
    mean = total / n
    var = sumsq / n - mean * mean
    if var < 1e-3 * mean * mean:  # cancellation (see _moments): around the mean
        var = sum(float(torch.dot(x - mean, x - mean)) for x in flat.split(CHUNK)) / n
    stats: dict[str, Any] = {
        "shape": list(t.shape),
        "dtype": "float32",
        "numel": n,
        "zeros": (n - nonzero) / n,
        "nan": 0,
        "posinf": 0,
        "neginf": 0,
        "finite": n,
        "min": lo,
        "max": hi,
        "mean": mean,
        "std": math.sqrt(max(var, 0.0)),
        "norm": math.sqrt(max(sumsq, 0.0)),
    }
    hist = HistogramCounts(counts.numpy(), 0, 0, 0) if counts is not None else None
    return stats, hist
