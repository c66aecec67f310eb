"""Screen-sized views of big 2-D tensors: block aggregation of a window down to an output size.

A window ``rows x cols`` of the tensor is reduced to ``out_h x out_w`` cells, each cell covering
the rows ``floor(i*H/out_h) .. ceil((i+1)*H/out_h)`` (adaptive pooling windows). NaN and Inf win:
a cell that holds a NaN is NaN and a cell with +/-Inf (and no NaN) is that Inf, so a single bad
value stays visible at any zoom.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Aggregation = Literal["mean", "maxabs", "min", "max"]
AGGREGATIONS: tuple[str, ...] = ("mean", "maxabs", "min", "max")

# Rows of input reduced at once: bounds the float32 temporary of a chunk to ~64 MB.
_CHUNK_ELEMENTS = 1 << 24


def _reduce(block: torch.Tensor, out_h: int, out_w: int, agg: str) -> torch.Tensor:
    x = block[None, None]
    if agg == "mean":
        y = F.adaptive_avg_pool2d(x, (out_h, out_w))
    elif agg == "max":
        y = F.adaptive_max_pool2d(x, (out_h, out_w))
    elif agg == "min":
        y = -F.adaptive_max_pool2d(-x, (out_h, out_w))
    else:  # maxabs: the signed value of the largest magnitude
        _, idx = F.adaptive_max_pool2d(x.abs(), (out_h, out_w), return_indices=True)
        y = x.flatten(2).gather(2, idx.flatten(2)).view(1, 1, out_h, out_w)
    y = y[0, 0]
    # Bad values win over the aggregate (max pooling already propagates NaN; mean already
    # propagates both; min/max/maxabs need the Inf of the other sign and NaN re-imposed).
    if agg != "mean":
        bad_nan = F.adaptive_max_pool2d(torch.isnan(x).to(x.dtype), (out_h, out_w))[0, 0] > 0
        pos = F.adaptive_max_pool2d((x == torch.inf).to(x.dtype), (out_h, out_w))[0, 0] > 0
        neg = F.adaptive_max_pool2d((x == -torch.inf).to(x.dtype), (out_h, out_w))[0, 0] > 0
        y = torch.where(neg, torch.full_like(y, -torch.inf), y)
        y = torch.where(pos, torch.full_like(y, torch.inf), y)
        y = torch.where(bad_nan, torch.full_like(y, torch.nan), y)
    return y


def block_reduce(
    x: torch.Tensor,
    out_shape: tuple[int, int],
    *,
    window: tuple[int, int, int, int] | None = None,
    agg: str = "mean",
) -> np.ndarray:
    """Reduce ``x[r0:r1, c0:c1]`` (2-D) to ``out_shape`` cells as float32, NaN/Inf preserved.

    Output sizes larger than the window are clamped to it (a tile never invents resolution).

    >>> block_reduce(torch.arange(16.).view(4, 4), (2, 2)).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}")
    if x.dim() != 2:
        raise ValueError(f"block_reduce needs a 2-D tensor, got shape {tuple(x.shape)}")
    r0, r1, c0, c1 = window if window is not None else (0, x.shape[0], 0, x.shape[1])
    if not (0 <= r0 < r1 <= x.shape[0] and 0 <= c0 < c1 <= x.shape[1]):
        raise ValueError(f"window {(r0, r1, c0, c1)} is outside a tensor of shape {tuple(x.shape)}")
    h, w = r1 - r0, c1 - c0
    out_h, out_w = max(1, min(out_shape[0], h)), max(1, min(out_shape[1], w))
    win = x.detach()[r0:r1, c0:c1]
    if win.dtype == torch.bool:
        win = win.to(torch.uint8)
    if out_h == h and out_w == w:
        return win.to(torch.float32).cpu().numpy() if win.dtype != torch.float32 else win.cpu().numpy().copy()
    # Two exact stages: columns per row chunk (every row shares the column windows), then rows
    # over the small (h, out_w) intermediate. A mean of row means over equal column windows is
    # the block mean; min/max/maxabs and NaN/Inf dominance compose the same way.
    cols = torch.empty((h, out_w), dtype=torch.float32)
    step = max(1, _CHUNK_ELEMENTS // max(1, w))
    for a in range(0, h, step):
        b = min(h, a + step)
        cols[a:b] = _reduce(win[a:b].to(torch.float32), b - a, out_w, agg).cpu()
    out = _reduce(cols, out_h, out_w, agg)
    return out.numpy()


def fit_shape(shape: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The output size of a whole-tensor overview whose longest side is at most ``max_side``."""
    h, w = shape
    scale = min(1.0, max_side / max(h, w, 1))
    return max(1, min(h, round(h * scale))), max(1, min(w, round(w * scale)))
