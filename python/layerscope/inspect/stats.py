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
    """Yield flat float64 chunks of ``t`` (on its own device) of at most ``elements`` values."""
    flat = t.reshape(-1) if t.is_contiguous() else None
    n = t.numel()
    if flat is not None:
        for start in range(0, n, elements):
            yield flat[start : start + elements].to(torch.float64)
        return
    # Non-contiguous: chunk along the first dim so that reshape copies only one chunk.
    rows = max(1, elements // max(1, n // max(1, t.shape[0])))
    for start in range(0, t.shape[0], rows):
        yield t[start : start + rows].reshape(-1).to(torch.float64)


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
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    n_finite = 0
    total = 0.0
    total_sq = 0.0
    zeros = nan = posinf = neginf = 0
    lo = math.inf
    hi = -math.inf
    # Two-pass-free variance: accumulate around the first chunk's mean (shifted sums).
    shift: float | None = None
    floating = t.is_floating_point()
    for chunk in iter_chunks(t):
        if floating:
            isnan = torch.isnan(chunk)
            nan += int(isnan.sum())
            posinf += int((chunk == math.inf).sum())
            neginf += int((chunk == -math.inf).sum())
            finite = chunk[torch.isfinite(chunk)]
        else:
            finite = chunk
        zeros += int((chunk == 0).sum())
        if finite.numel() == 0:
            continue
        if shift is None:
            shift = float(finite.mean())
        d = finite - shift
        total += float(d.sum())
        total_sq += float((d * d).sum())
        n_finite += finite.numel()
        lo = min(lo, float(finite.min()))
        hi = max(hi, float(finite.max()))
    out.update(nan=nan, posinf=posinf, neginf=neginf, finite=n_finite)
    out["zeros"] = zeros / t.numel() if t.numel() else None
    if n_finite:
        assert shift is not None
        mean_d = total / n_finite
        var = max(0.0, total_sq / n_finite - mean_d * mean_d)
        out.update(
            min=lo,
            max=hi,
            mean=shift + mean_d,
            std=math.sqrt(var),
            norm=math.sqrt(max(0.0, total_sq + 2 * shift * total + n_finite * shift * shift)),
        )
    else:
        out.update(min=None, max=None, mean=None, std=None, norm=None)
    return out
