"""Whole-tensor summaries, computed in bounded memory (row chunks, never a full-size temporary)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

# Elements per chunk: bounds the float64 temporaries to ~64 MB whatever the tensor's size.
CHUNK_ELEMENTS = 1 << 23


def as_tensor(x: Any) -> torch.Tensor:
    """A torch view of a tensor or numpy array (no copy where possible)."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        if x.dtype.byteorder == ">":
            x = x.astype(x.dtype.newbyteorder("<"))
        return torch.from_numpy(np.asarray(x))
    raise TypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def iter_chunks(t: torch.Tensor, elements: int = CHUNK_ELEMENTS):
    """Yield flat chunks of ``t`` (its own dtype and device) of at most ``elements`` values."""
    n = t.numel()
    if t.is_contiguous():
        flat = t.reshape(-1)
        for start in range(0, n, elements):
            yield flat[start : start + elements]
        return
    # Non-contiguous: chunk along the first dim so that reshape copies only one chunk.
    rows = max(1, elements // max(1, n // max(1, t.shape[0])))
    for start in range(0, t.shape[0], rows):
        yield t[start : start + rows].reshape(-1)


def _value_chunks(t: torch.Tensor):
    """Chunks as float32 (float32, float16, bfloat16: exact) or float64 (float64, integers)."""
    for chunk in iter_chunks(t):
        if chunk.dtype == torch.float64:
            yield chunk
        elif chunk.is_floating_point():
            yield chunk.float()
        else:
            yield chunk.to(torch.float64)


def tensor_stats(x: Any) -> dict[str, Any]:
    """Shape, dtype, count, min/max/mean/std/norm over finite values, share of exact zeros, and
    NaN / +Inf / -Inf counts. JSON-safe: absent values (no finite element) are None.

    >>> tensor_stats(torch.tensor([1.0, float("nan"), -2.0]))["nan"]
    1
    """
    t = as_tensor(x)
    out: dict[str, Any] = {
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "numel": t.numel(),
    }
    n_finite = zeros = nan = posinf = neginf = 0
    total = 0.0
    lo, hi = math.inf, -math.inf
    # Pass 1: counts, range and sum. min/max propagate NaN, so finite extremes prove the whole
    # chunk finite and the masked path (a copy) runs only for chunks that hold NaN or Inf.
    for chunk in _value_chunks(t):
        c_lo, c_hi = torch.aminmax(chunk)
        lo_f, hi_f = float(c_lo), float(c_hi)
        finite = chunk
        if not (math.isfinite(lo_f) and math.isfinite(hi_f)):
            mask = torch.isfinite(chunk)
            n_nan = int(torch.isnan(chunk).sum())
            n_pos = int((chunk == math.inf).sum())
            nan += n_nan
            posinf += n_pos
            neginf += chunk.numel() - int(mask.sum()) - n_nan - n_pos
            finite = chunk[mask]
            if finite.numel():
                c_lo, c_hi = torch.aminmax(finite)
                lo_f, hi_f = float(c_lo), float(c_hi)
        zeros += chunk.numel() - int(torch.count_nonzero(chunk))
        if finite.numel() == 0:
            continue
        n_finite += finite.numel()
        lo, hi = min(lo, lo_f), max(hi, hi_f)
        total += float(finite.sum())
    # Pass 2: sum of squares around the mean (no cancellation when |mean| >> std).
    total_sq = 0.0
    mean = total / n_finite if n_finite else 0.0
    if n_finite:
        bad = nan or posinf or neginf
        for chunk in _value_chunks(t):
            c = chunk[torch.isfinite(chunk)] if bad else chunk
            total_sq += float(torch.linalg.vector_norm(c - mean)) ** 2
    out.update(nan=nan, posinf=posinf, neginf=neginf, finite=n_finite)
    out["zeros"] = zeros / t.numel() if t.numel() else None
    if n_finite:
        out.update(
            min=lo,
            max=hi,
            mean=mean,
            std=math.sqrt(total_sq / n_finite),
            # sum(x^2) = sum((x - mean)^2) + n * mean^2
            norm=math.sqrt(total_sq + n_finite * mean * mean),
        )
    else:
        out.update(min=None, max=None, mean=None, std=None, norm=None)
    return out
