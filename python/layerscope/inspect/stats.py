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


# Tensors of at most this many values are summarized together by ``small_summaries``, in
# batches of at most ``SMALL_BATCH_ELEMENTS`` values (a float64 copy of 32 MB at most).
SMALL_ELEMENTS = 1 << 16
SMALL_BATCH_ELEMENTS = 1 << 22


def small_summaries(tensors: list[torch.Tensor]) -> list[dict[str, Any] | None]:
    """Count, mean, std and norm of each small floating tensor whose values are all finite
    (NaN/Inf counts 0), as ``tensor_stats`` gives them (accumulated in float64 here, so they
    agree to float32 rounding), computed for many tensors at once: the tensors of one size are
    stacked as the rows of one matrix and reduced along them (a 48-block transformer's 3,558
    parameters: ~0.1 s one by one). None for the others (big, integer, empty, on ``meta``, or
    holding NaN/Inf): summarize those with ``tensor_stats``.

    >>> small_summaries([torch.tensor([3.0, 4.0])])[0]["norm"]
    5.0
    """
    out: list[dict[str, Any] | None] = [None] * len(tensors)
    groups: dict[tuple[torch.dtype, torch.device, int], list[int]] = {}
    for i, t in enumerate(tensors):
        n = t.numel()
        if 0 < n <= SMALL_ELEMENTS and t.is_floating_point() and t.device.type != "meta":
            groups.setdefault((t.dtype, t.device, n), []).append(i)
    for (_, _, n), members in groups.items():
        rows = max(1, SMALL_BATCH_ELEMENTS // n)
        for start in range(0, len(members), rows):
            _summarize_rows(tensors, members[start : start + rows], n, out)
    return out


def _summarize_rows(
    tensors: list[torch.Tensor], batch: list[int], n: int, out: list[dict[str, Any] | None]
) -> None:
    with torch.no_grad():
        x = torch.stack([tensors[i].detach().reshape(-1) for i in batch]).to(torch.float64)
        # NaN and Inf propagate into the sums (float32 values cannot overflow a float64 sum
        # of 2^16): a row whose sum is not finite is left to tensor_stats
        sums = x.sum(1)
        means = sums / n
        x -= means[:, None]  # the sum of squares around the mean, as tensor_stats
        sq = x.mul_(x).sum(1)
    for i, total, m, s in zip(batch, sums.tolist(), means.tolist(), sq.tolist(), strict=True):
        if not math.isfinite(total):
            continue
        out[i] = {
            "numel": n,
            "mean": m,
            "std": math.sqrt(s / n),
            "norm": math.sqrt(s + n * m * m),
            "nan": 0,
            "posinf": 0,
            "neginf": 0,
        }
