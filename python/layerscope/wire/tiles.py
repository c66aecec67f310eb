"""Screen-sized views of big 2-D tensors: block aggregation of a window down to an output size.

A window ``rows x cols`` of the tensor is reduced to ``out_h x out_w`` cells, each cell covering
the rows ``floor(i*H/out_h) .. ceil((i+1)*H/out_h)`` (adaptive pooling windows). NaN and Inf win:
a cell that holds a NaN is NaN and a cell with +/-Inf (and no NaN) is that Inf, so a single bad
value stays visible at any zoom. (``mean`` of a cell with both +Inf and -Inf is NaN; ``min``,
``max`` and ``maxabs`` give +Inf there.)

When the output rows divide the window's rows evenly (tiles and overviews ask for whole blocks
where they can, see ``aligned_blocks``), rows are reduced by reshaping, and columns too
when they divide evenly: several times faster than pooling, the same cells.

Memory: the window is read in row chunks aligned to output rows; the only temporaries are one
chunk's column-reduced rows (``chunk_rows x out_w``) and, for non-float32 input, one chunk in
float32. Nothing proportional to the tensor is allocated.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..numpy_view import numpy_view

Aggregation = Literal["mean", "maxabs", "min", "max"]
AGGREGATIONS: tuple[str, ...] = ("mean", "maxabs", "min", "max")

# Input elements read per chunk: at most 2**20 (a 4 MB float32 copy or negation of a chunk),
# and at most 1/64 of the tensor, so temporaries stay a few % of the tensor at any size. A tensor
# of at most _WHOLE_ELEMENTS is read in one chunk: its temporaries are a few MB whatever the
# share, and one pooling call instead of dozens is what a 1024 x 1024 view's first paint waits on.
_CHUNK_ELEMENTS = 1 << 20
_MIN_CHUNK_ELEMENTS = 1 << 16
_WHOLE_ELEMENTS = 1 << 20


def chunk_elements(numel: int) -> int:
    """Elements per chunk for a tensor of ``numel`` elements (see ``_CHUNK_ELEMENTS``)."""
    if numel <= _WHOLE_ELEMENTS:
        return max(1, numel)
    return max(min(_MIN_CHUNK_ELEMENTS, _CHUNK_ELEMENTS), min(_CHUNK_ELEMENTS, numel // 64))


# Threads for tile and summary work. Measured on the 2-core development machine shared with other
# processes: one thread was 3-4x faster than two (OpenMP workers spin and wait on a busy machine),
# and tile work is memory-bound anyway. Set to 0 to keep torch's own setting.
TILE_THREADS = 1


@contextlib.contextmanager
def tile_threads() -> Iterator[None]:
    """Run torch ops with ``TILE_THREADS`` intra-op threads, then restore the user's setting."""
    before = torch.get_num_threads()
    if TILE_THREADS <= 0 or before == TILE_THREADS:
        yield
        return
    torch.set_num_threads(TILE_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _all_finite(x: torch.Tensor) -> bool:
    # aminmax propagates NaN and keeps +/-Inf, and is ~20x cheaper than isfinite(x).all().
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))


def _pool_last(x: torch.Tensor, out: int, agg: str) -> torch.Tensor:
    """Adaptive pooling over the last axis of a (rows, n) tensor -> (rows, out)."""
    # The 2-D pooling kernels are several times faster here than the 1-D ones.
    y = x[None, None]
    size = (x.shape[0], out)
    if agg == "mean":
        r = F.adaptive_avg_pool2d(y, size)
    elif agg == "max":
        r = F.adaptive_max_pool2d(y, size)
    elif agg == "min":
        r = -F.adaptive_max_pool2d(-y, size)
    else:  # maxabs: the signed value of the largest magnitude (ties go to the positive one)
        hi = F.adaptive_max_pool2d(y, size)
        lo = -F.adaptive_max_pool2d(-y, size)
        r = torch.where(hi >= -lo, hi, lo)
    return r[0, 0]


def _impose_bad(y: torch.Tensor, x: torch.Tensor, out: int, agg: str) -> torch.Tensor:
    """Re-impose NaN/Inf dominance on ``y = _pool_last(x)`` where ``x`` has non-finite values."""
    if agg == "mean":
        return y  # sums already propagate NaN and Inf
    f = x.dtype
    size = (x.shape[0], out)
    nan = F.adaptive_max_pool2d(torch.isnan(x).to(f)[None, None], size)[0, 0] > 0
    pos = F.adaptive_max_pool2d((x == math.inf).to(f)[None, None], size)[0, 0] > 0
    neg = F.adaptive_max_pool2d((x == -math.inf).to(f)[None, None], size)[0, 0] > 0
    y = torch.where(neg, torch.full_like(y, -math.inf), y)
    y = torch.where(pos, torch.full_like(y, math.inf), y)
    return torch.where(nan, torch.full_like(y, math.nan), y)


def _reduce_last(x: torch.Tensor, out: int, agg: str) -> torch.Tensor:
    y = _pool_last(x, out, agg)
    if agg != "mean" and not _all_finite(x):
        y = _impose_bad(y, x, out, agg)
    return y


def _bounds(n: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(out, dtype=np.int64)
    return (i * n) // out, -((-(i + 1) * n) // out)


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
    with tile_threads():
        return _block_reduce(x, out_shape, window, agg)


def _block_reduce(
    x: torch.Tensor, out_shape: tuple[int, int], window: tuple[int, int, int, int] | None, agg: str
) -> np.ndarray:
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}")
    if x.dim() != 2:
        raise ValueError(f"block_reduce needs a 2-D tensor, got shape {tuple(x.shape)}")
    r0, r1, c0, c1 = window if window is not None else (0, x.shape[0], 0, x.shape[1])
    if not (0 <= r0 < r1 <= x.shape[0] and 0 <= c0 < c1 <= x.shape[1]):
        raise ValueError(f"window {(r0, r1, c0, c1)} is outside a tensor of shape {tuple(x.shape)}")
    h, w = r1 - r0, c1 - c0
    out_h, out_w = max(1, min(int(out_shape[0]), h)), max(1, min(int(out_shape[1]), w))
    win = x.detach()[r0:r1, c0:c1]
    if win.dtype == torch.bool:
        win = win.to(torch.uint8)
    if out_h == h and out_w == w:
        return (
            win.to(torch.float32).cpu().numpy()
            if win.dtype != torch.float32
            else numpy_view(win.cpu()).copy()
        )
    step = max(1, chunk_elements(x.numel()) // max(1, w))
    if h % out_h == 0:
        return _reduce_row_blocks(win, out_h, out_w, agg, step).numpy()
    return _reduce_general(win, out_h, out_w, agg, step).numpy()


def _reduce_row_blocks(
    win: torch.Tensor, out_h: int, out_w: int, agg: str, step: int
) -> torch.Tensor:
    """Every output row a block of ``kh`` whole rows: reshape and reduce the rows, then the
    columns (by reshape too when they divide evenly, else adaptive pooling), a band of output
    rows at a time; several times faster than ``_reduce_general``, the same cells. A band that
    holds NaN or Inf goes through ``_reduce_general`` for min/max/maxabs (their NaN/Inf
    dominance)."""
    h, w = win.shape
    kh = h // out_h
    kw = w // out_w if w % out_w == 0 else 0
    out = torch.empty((out_h, out_w), dtype=torch.float32)
    band = max(1, step // kh)
    for i0 in range(0, out_h, band):
        i1 = min(out_h, i0 + band)
        x = win[i0 * kh : i1 * kh].cpu().to(torch.float32)
        if agg != "mean" and not _all_finite(x):
            out[i0:i1] = _reduce_general(x, i1 - i0, out_w, agg, step)
            continue
        rows = x.reshape(i1 - i0, kh, w)

        def cols(r: torch.Tensor, how: str, i0: int = i0, i1: int = i1) -> torch.Tensor:
            if not kw:
                return _pool_last(r, out_w, how)
            blocks = r.reshape(i1 - i0, out_w, kw)
            return blocks.sum(2) if how == "mean" else getattr(blocks, f"a{how}")(2)

        if agg == "mean":
            out[i0:i1] = cols(rows.sum(1), "mean") / kh / (kw or 1)
        elif agg in ("max", "min"):
            out[i0:i1] = cols(getattr(rows, f"a{agg}")(1), agg)
        else:  # maxabs: the signed value of the largest magnitude (ties go to the positive one)
            hi, lo = cols(rows.amax(1), "max"), cols(rows.amin(1), "min")
            out[i0:i1] = torch.where(hi >= -lo, hi, lo)
    return out


def _reduce_general(win: torch.Tensor, out_h: int, out_w: int, agg: str, step: int) -> torch.Tensor:
    """Adaptive windows (cells of uneven size), a chunk of ``step`` input rows at a time."""
    h = win.shape[0]
    starts, ends = _bounds(h, out_h)
    out = torch.empty((out_h, out_w), dtype=torch.float32)
    i0 = 0
    while i0 < out_h:
        # Output rows i0..i1 whose input rows (s..e) fit in one chunk (at least one output row).
        i1 = i0 + 1
        while i1 < out_h and ends[i1] - starts[i0] <= step:
            i1 += 1
        s, e = int(starts[i0]), int(ends[i1 - 1])
        # Column stage: each input row's column windows (exact per row; a chunk at a time).
        cols = torch.empty((e - s, out_w), dtype=torch.float32)
        for a in range(s, e, step):
            b = min(e, a + step)
            cols[a - s : b - s] = _reduce_last(win[a:b].cpu().to(torch.float32), out_w, agg)
        # Row stage: every output row's window of column-reduced rows, gathered (windows may
        # overlap by one row), then reduced; NaN/Inf dominance is re-imposed where present.
        ss = torch.from_numpy(starts[i0:i1] - s)
        ee = torch.from_numpy(ends[i0:i1] - s)
        k = int((ee - ss).max())
        offs = torch.arange(k)
        idx = ss[:, None] + offs[None, :]
        valid = idx < ee[:, None]
        if agg == "mean":
            padded = torch.cat([cols, torch.zeros((1, out_w))])
            g = padded[torch.where(valid, idx, torch.full_like(idx, e - s))]
            out[i0:i1] = g.sum(1) / (ee - ss).to(torch.float32)[:, None]
        else:
            g = cols[torch.where(valid, idx, ss[:, None])]  # pad with a row of the same window
            g = g.permute(0, 2, 1).reshape(-1, k)  # (rows*out_w, k): reduce over the last axis
            red = _reduce_last(g, 1, agg)[:, 0]
            out[i0:i1] = red.view(i1 - i0, out_w)
        i0 = i1
    return out


def reduce_blocks(
    x: torch.Tensor,
    blocks: tuple[int, int],
    *,
    window: tuple[int, int, int, int] | None = None,
    agg: str = "mean",
) -> np.ndarray:
    """Reduce ``x[r0:r1, c0:c1]`` in blocks of ``kh x kw`` cells from its top-left corner:
    ``ceil(h / kh) x ceil(w / kw)`` cells, the last row and column of them over the remainder
    (fewer cells) when the sides do not divide. Every part is a whole-block reduction (reshape).

    >>> reduce_blocks(torch.arange(20.).view(4, 5), (2, 2)).tolist()
    [[3.0, 5.0, 6.5], [13.0, 15.0, 16.5]]
    """
    r0, r1, c0, c1 = window if window is not None else (0, x.shape[0], 0, x.shape[1])
    kh, kw = max(1, int(blocks[0])), max(1, int(blocks[1]))

    def spans(a: int, b: int, k: int) -> list[tuple[int, int, int]]:
        whole = (b - a) // k
        out = [(a, a + whole * k, whole)] if whole else []
        return out + ([(a + whole * k, b, 1)] if (b - a) % k else [])

    rows, cols = spans(r0, r1, kh), spans(c0, c1, kw)
    parts = [
        [block_reduce(x, (nr, nc), window=(a, b, c, d), agg=agg) for c, d, nc in cols]
        for a, b, nr in rows
    ]
    return np.block(parts) if len(parts) * len(cols) > 1 else parts[0][0]


def aligned_blocks(a: int, b: int, n: int, out: int) -> tuple[int, int, int]:
    """The span and cell count a tile uses for ``[a, b)`` of an axis of ``n`` cells shown at
    ``out`` pixels.

    At 1.5 or more cells a pixel: whole blocks of ``k = round(cells per pixel)`` cells, aligned
    to multiples of ``k`` (panning keeps the same blocks, so the picture does not shimmer),
    enough to cover the window (0.75 to ~1.25 ``out`` of them) and inside the axis (a remainder
    of fewer than ``k`` cells at the axis's end is left to the overview drawn underneath). Whole
    blocks are reduced by reshaping, several times faster than uneven windows, and a regular
    pattern (stripes) shows no moire. Below 1.5 cells a pixel: the window as asked, ``out``
    cells of uneven size.

    >>> aligned_blocks(100, 1100, 4096, 300), aligned_blocks(0, 500, 500, 400)
    ((99, 1101, 334), (0, 500, 400))
    """
    if 2 * (b - a) < 3 * out:
        return a, b, out
    k = round((b - a) / out)
    start = a // k * k
    cells = min(-(-(b - start) // k), (n - start) // k)
    return start, start + cells * k, cells


def fit_shape(shape: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The output size of a whole-tensor overview whose longest side is at most ``max_side``."""
    h, w = shape
    scale = min(1.0, max_side / max(h, w, 1))
    return max(1, min(h, round(h * scale))), max(1, min(w, round(w * scale)))


def fit_budget(shape: tuple[int, int], max_side: int, max_cells: int) -> tuple[int, int]:
    """Like ``fit_shape``, and also at most ``max_cells`` cells (a byte budget), aspect kept."""
    h, w = fit_shape(shape, max_side)
    if h * w <= max_cells:
        return h, w
    scale = math.sqrt(max_cells / (h * w))
    oh, ow = max(1, min(h, math.floor(h * scale))), max(1, min(w, math.floor(w * scale)))
    while oh * ow > max_cells:
        oh, ow = max(1, oh - 1), max(1, ow - 1)
    return oh, ow
