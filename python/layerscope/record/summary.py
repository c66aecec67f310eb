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
    if not array.flags.writeable:
        array = np.array(array)
    return summarize(torch.from_numpy(array), units=units)
