"""``ls.heatmap``: any-size tensor or array as a zoomable, colour-mapped canvas (``TensorView``).

The tensor stays in the kernel. The view holds a baked overview within a byte budget (what a
saved notebook or exported page shows and zooms into) and, live, asks the kernel for a ``tile``
of the visible window at screen resolution: block-aggregated (``agg``), quantized to one byte a
cell in the colour scale's range, or exact float32 cells once zoomed in far enough.

N-D tensors show two chosen ``axes`` with the others fixed at ``index``; 4-D conv weights
``(out, in, kh, kw)`` can also be shown as a grid of kernels (``arrangement="kernels"``).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import traitlets

from ..inspect.histogram import fast_stats, histogram
from ..inspect.stats import tensor_stats
from ..record.budget import parse_budget
from ..wire.codec import ACCEPTED, check_array, describe, encode_array
from ..wire.quantize import quantize_u8
from ..wire.tiles import (
    AGGREGATIONS,
    aligned_blocks,
    block_reduce,
    fit_budget,
    reduce_blocks,
    tile_threads,
)
from ..wire.values import exact_text
from .base import BaseView, request
from .bundles import bundle

COLORMAPS = ("auto", "diverging", "sequential", "viridis", "magma", "gray", "rdbu")
SCALES = ("auto", "symmetric", "percentile", "log", "fixed")
LAYOUTS = ("slice", "kernels")

# Longest side of the baked overview: the screen's resolution, not the tensor's.
BASE_MAX_SIDE = 1024
# Tensors of at least this many elements are first shown as a strided sample (one paint in
# milliseconds), then as the aggregated overview once the kernel has read every value.
PREVIEW_MIN_ELEMENTS = 1 << 25
# A long tensor's short side keeps up to this many cells in the overview.
BASE_MIN_SIDE = 512
# Bytes of baked data per view (the overview, float32): what an exported page can zoom into.
BAKE_BUDGET = 2 * 2**20
# Tensors up to this many elements get float64 statistics in one chunk; bigger ones float32
# chunks (bounded temporaries).
EXACT_STATS_MAX = 1 << 20
# A tile is sent as exact float32 cells when it has at most this share of the canvas's pixels
# (cells at least ~1.4 px wide: 4 bytes a cell is then at most 2 bytes a pixel).
EXACT_CELL_SHARE = 0.5
# Tensors of at least this many elements keep a reduced copy (MIP_FACTOR x MIP_FACTOR blocks,
# 1/16 of the cells in bfloat16: 3.1 % of a float32 tensor) for the current aggregation; tiles that reduce
# MIP_FACTOR or more cells to a pixel read it instead of the tensor (16x less memory traffic).
MIP_MIN_ELEMENTS = 1 << 25
MIP_FACTOR = 4
# Kernels grids are built (copied) only for conv weights up to this many elements.
KERNELS_MAX = 1 << 24
# ls.heatmap views of more than this many elements return from the constructor (and from
# ``view.data = x``) after the strided preview; statistics, histogram, overview and mip follow
# from a background thread. Smaller tensors are summarized before the call returns: up to 4096^2
# that took 75-210 ms here, and passes running beside the user's next cell slowed its torch work
# by more than that on this loaded 2-core machine (bench/first_display.py, next_cell).
DEFER_ABOVE_ELEMENTS = 1 << 24
# Set to 1 to run every pass before the constructor returns (the behaviour before deferral).
SYNC_PASSES_ENV = "LAYERSCOPE_SYNC_PASSES"

# One worker for the deferred passes of every view: at most one pass's temporaries (chunk
# buffers of a few MB, then the overview and the mip, 3 % of a float32 tensor) exist at a time,
# and a view queues only its latest tensor (older assignments are dropped, not queued).
_passes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerscope-passes")
# Views whose passes were deferred (see ``resend_settled``).
_deferred: weakref.WeakSet[TensorView] = weakref.WeakSet()

_tokens = itertools.count(1)


def base_shape(shape: tuple[int, int], max_cells: int) -> tuple[int, int]:
    """The baked overview's size (see ``base_blocks``).

    >>> base_shape((1024, 1024), 2**19), base_shape((300, 200), 2**19)
    ((512, 512), (300, 200))
    """
    kh, kw = base_blocks(shape, max_cells)
    return -(-shape[0] // kh), -(-shape[1] // kw)


def base_blocks(shape: tuple[int, int], max_cells: int) -> tuple[int, int]:
    """The blocks of cells the baked overview reduces: a whole factor per axis, to at most
    BASE_MAX_SIDE a side and ``max_cells`` cells, except that a very long tensor (an embedding,
    50257 x 768) keeps up to ``BASE_MIN_SIDE`` cells across its short side instead of a sliver.

    Whole factors make every overview cell a block of the same size (a 1024 x 1024 tensor is
    baked as 512 x 512 blocks of 2 x 2, not 724 x 724 overlapping windows): a sharper overview,
    half the bytes to send and paint, and a reduction that is one reshape (when a side does not
    divide, the last row or column of the overview covers the remainder).

    >>> base_blocks((1024, 1024), 2**19), base_blocks((4096, 4096), 2**19)
    ((2, 2), (6, 6))
    """
    rows, cols = shape
    h, w = fit_budget(shape, BASE_MAX_SIDE, max_cells)
    kh, kw = -(-rows // h), -(-cols // w)
    short, long_ = (0, 1) if rows <= cols else (1, 0)
    k = [kh, kw]
    n = [rows, cols]
    keep = min(n[short], BASE_MIN_SIDE)
    if (h, w)[short] < keep:
        # A long tensor: its short side keeps at least `keep` cells, the long side what is left.
        k[short] = max(1, n[short] // keep)
        room = min(BASE_MAX_SIDE, max(1, max_cells // -(-n[short] // k[short])))
        k[long_] = -(-n[long_] // room)
    return k[0], k[1]


class TensorChanged(RuntimeError):
    """The tensor behind a view changed shape (or was freed) since the view last read it."""


def to_tensor(x: Any) -> torch.Tensor:
    """A torch view (no copy where possible) of a tensor, array or list of numbers, any rank.

    Raises TypeError / ValueError naming what was passed and what to pass instead.
    """
    if isinstance(x, (list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError as exc:  # ragged lists
            raise TypeError(
                f"heatmap expects {ACCEPTED}; got a ragged {type(x).__name__}: {exc}"
            ) from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"heatmap expects {ACCEPTED} or a list of numbers; got {describe(x)}.")
        x = arr
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        raise TypeError(f"heatmap expects {ACCEPTED}; got {describe(x)}.")
    check_array(x)
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.is_quantized:
            t = t.dequantize()
        if t.numel() and t.untyped_storage().nbytes() == 0:
            raise ValueError(
                f"the tensor's storage was freed (deleted or resized to 0): got {describe(x)}; "
                "pass a tensor that still holds its values"
            )
        return t
    return torch.from_numpy(np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("=")))


def _check_axes(ndim: int, axes: Any, index: Any) -> tuple[tuple[int, int], list[int]]:
    if axes is None or len(axes) == 0:
        axes = (ndim - 2, ndim - 1)
    if len(axes) != 2:
        raise ValueError(f"axes must name two axes to show, got {list(axes)}")
    a, b = (int(v) + ndim if int(v) < 0 else int(v) for v in axes)
    if not (0 <= a < ndim and 0 <= b < ndim) or a == b:
        raise ValueError(
            f"axes {list(axes)} must be two different axes of a {ndim}-D tensor (0..{ndim - 1})"
        )
    idx = [int(i) for i in index] if index else [0] * ndim
    if len(idx) != ndim:
        idx = (idx + [0] * ndim)[:ndim]
    return (a, b), idx


def as_2d(
    x: Any, axes: Any = None, index: Any = None, layout: str = "slice"
) -> tuple[torch.Tensor, str]:
    """A 2-D torch view of ``x`` for display and its kind ("2d", "1d" strip, "nd", "empty").

    N-D input shows ``axes`` (default: the last two) with the other axes at ``index`` (default
    0); ``layout="kernels"`` shows a 4-D conv weight ``(out, in, kh, kw)`` as a grid of
    ``out x in`` kernels of ``kh x kw`` cells. Accepts torch tensors, numpy arrays and (nested)
    lists of numbers; raises TypeError / ValueError naming what was passed and what to pass.

    >>> as_2d(torch.zeros(2, 3, 4))[0].shape
    torch.Size([3, 4])
    """
    t = to_tensor(x)
    if t.numel() == 0:
        shape = t.shape if t.dim() == 2 else (1, 0) if t.dim() == 1 else (0, 0)
        return t.reshape(shape), "empty"
    if t.dim() == 0:
        return t.reshape(1, 1), "2d"
    if t.dim() == 1:
        return t.reshape(1, -1), "1d"
    if t.dim() == 2:
        return t, "2d"
    if layout == "kernels":
        if t.dim() != 4:
            raise ValueError(
                f"arrangement='kernels' shows 4-D conv weights (out, in, kh, kw); got shape {tuple(t.shape)}"
            )
        if t.numel() > KERNELS_MAX:
            raise ValueError(
                f"a kernels grid of {t.numel():,} values is too big to build; use arrangement='slice'"
            )
        o, i, kh, kw = t.shape
        return t.permute(0, 2, 1, 3).reshape(o * kh, i * kw), "nd"
    (a, b), idx = _check_axes(t.dim(), axes, index)
    for ax, n in enumerate(t.shape):
        if ax not in (a, b) and not 0 <= idx[ax] < n:
            raise IndexError(f"index {idx[ax]} is outside axis {ax} of size {n}")
    view = t.permute(a, b, *[ax for ax in range(t.dim()) if ax not in (a, b)])
    rest = [idx[ax] for ax in range(t.dim()) if ax not in (a, b)]
    for i in rest:
        view = view[:, :, i] if view.dim() > 2 else view
    return view, "nd"


class TensorView(BaseView):
    """A zoomable heatmap of a tensor: colour bar and scale controls, stats panel, histogram,
    NaN/Inf marks with counts, exact hover values, N-D slicing.

    The tensor stays in the kernel: the view holds an overview within ``bake_budget`` bytes (the
    whole tensor when it fits, so hover is exact offline) and asks the kernel for tiles of the
    visible window at screen resolution.
    """

    _esm = bundle("heatmap")

    title = traitlets.Unicode("").tag(sync=True)
    # Names for the axes instead of indices: {"rows": [...], "cols": [...]} (either may be left
    # out), e.g. the tokens of an attention matrix; elided on the axis, full on hover.
    axis_labels = traitlets.Dict().tag(sync=True)
    colormap = traitlets.Enum(COLORMAPS, default_value="auto").tag(sync=True)
    vmin = traitlets.Float(None, allow_none=True).tag(sync=True)
    vmax = traitlets.Float(None, allow_none=True).tag(sync=True)
    height = traitlets.Int(360).tag(sync=True)
    agg = traitlets.Enum(AGGREGATIONS, default_value="mean").tag(sync=True)
    # Colour scale: auto (diverging around 0 for signed data), symmetric around 0, percentile
    # clipping at `clip` (from the kernel's histogram), log magnitude, fixed (vmin/vmax).
    scale = traitlets.Enum(SCALES, default_value="auto").tag(sync=True)
    clip = traitlets.List(traitlets.Float(), default_value=[1.0, 99.0]).tag(sync=True)
    log_counts = traitlets.Bool(False).tag(sync=True)
    # N-D: the two axes shown (rows, columns) and the index of every axis (others fixed there).
    axes = traitlets.List(traitlets.Int(), default_value=[]).tag(sync=True)
    index = traitlets.List(traitlets.Int(), default_value=[]).tag(sync=True)
    # ("layout" is ipywidgets' own trait: the arrangement of a 4-D tensor is `arrangement`.)
    arrangement = traitlets.Enum(LAYOUTS, default_value="slice").tag(sync=True)
    bake_budget = traitlets.Int(BAKE_BUDGET).tag(sync=True)

    # What the view draws: metadata (shape, dtype, stats), the baked overview, the histogram.
    _meta = traitlets.Dict().tag(sync=True)
    _base = traitlets.Dict().tag(sync=True)
    _hist = traitlets.Dict().tag(sync=True)
    # Set by the front end after each paint: {"token", "ms"} (kernel-set to painted).
    _painted = traitlets.Dict().tag(sync=True)
    # Set by the front end after each tile paint: {"window", "ms", "bytes", "exact"}.
    _tile_painted = traitlets.Dict().tag(sync=True)

    _tensor: torch.Tensor | None = None
    _source: Any = None
    _full_shape: tuple[int, ...] = ()
    _source_ptr: int = 0
    _mip: tuple[Any, torch.Tensor] | None = None
    # Tensors of more than this many elements get their full passes after the constructor (or
    # ``view.data = x``) returns; None: always before. Views that read ``_meta`` right after
    # assigning (weights, activations, saliency, the workspace's panels) keep None.
    _defer_above: int | None = DEFER_ABOVE_ELEMENTS
    _generation: int = 0
    _queued: tuple[int, torch.Tensor, tuple[torch.Tensor, str], float] | None = None
    #: The deferred passes of the latest assignment (a Future), or None when they ran before
    #: the call returned; ``view.passes.result()`` waits for them.
    passes: Future | None = None

    def _describe(self) -> list[str]:
        m = self._meta
        shape = m.get("source_shape") or m.get("shape")
        data = [f"{m['dtype']} {tuple(shape)}"] if m.get("dtype") and shape is not None else []
        return [*super()._describe(), *data]

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        t_assign = time.time() * 1000.0
        # Validate before the widget (and its comm) exists: bad input leaves nothing behind.
        shown = (
            as_2d(data, kwargs.get("axes"), kwargs.get("index"), kwargs.get("arrangement", "slice"))
            if data is not None
            else None
        )
        self._lock = threading.RLock()
        super().__init__(**kwargs)
        if shown is not None:
            self._set_source(data, shown, t_assign)

    @property
    def data(self) -> Any:
        """The tensor or array shown; assign a new one to update the view."""
        return self._source

    @data.setter
    def data(self, value: Any) -> None:
        t_assign = time.time() * 1000.0
        if value is None:
            raise TypeError(f"heatmap expects {ACCEPTED}; got None.")
        full = to_tensor(value)
        axes, index, layout = self.axes, self.index, self.arrangement
        if tuple(full.shape) != self._full_shape:
            axes, index = [], []
            if layout == "kernels" and full.dim() != 4:
                layout = "slice"
        shown = as_2d(value, axes, index, layout)
        with self.hold_trait_notifications():
            self.axes, self.index, self.arrangement = axes, index, layout
        self._set_source(value, shown, t_assign)

    def reload(self) -> None:
        """Read the tensor again (its values changed in place, e.g. in training): new
        statistics, histogram and overview."""
        if self._source is not None:
            self.data = self._source

    def _set_source(self, value: Any, shown: tuple[torch.Tensor, str], t_assign: float) -> None:
        full = to_tensor(value)
        with self._lock:
            self._generation += 1
            self._source = value
            self._full_shape = tuple(full.shape)
            self._source_ptr = full.data_ptr()
            self._tensor = shown[0]
            if self._defers(full, shown[1]):
                self._publish_preview(shown[0], shown[1], t_assign)
                self._queued = (self._generation, full, shown, t_assign)
                self.passes = _passes.submit(_run_queued, weakref.ref(self))
                _deferred.add(self)
                return
            self._queued = None
        # One thread for the whole summary (see tile_threads: on a busy 2-core machine two
        # threads made these passes several times slower, and by tens of ms from run to run).
        with tile_threads():
            self._summarize(full, shown, t_assign)

    def _defers(self, full: torch.Tensor, kind: str) -> bool:
        return (
            self._defer_above is not None
            and full.numel() > self._defer_above
            and kind != "empty"
            and os.environ.get(SYNC_PASSES_ENV, "") not in ("1", "true")
        )

    def _run_passes(self) -> None:
        """The deferred passes of the latest queued tensor (in the worker thread). Results for a
        tensor that was replaced meanwhile are dropped; an error reaches the view as ``_error``."""
        with self._lock:
            job, self._queued = self._queued, None
        if job is None:
            return
        gen, full, (t, kind), t_assign = job
        try:
            with tile_threads():
                stats = _full_stats(full)
                if gen != self._generation:
                    return
                hist = histogram(full, stats)
                if gen != self._generation:
                    return
                agg = self.agg
                meta, base = self._state(t, kind, t_assign, stats, agg=agg)
            with self._lock:
                if gen != self._generation or self.comm is None:
                    return
                shown = self._tensor if self._tensor is not None else t
                if agg != self.agg or shown is not t:
                    # The aggregation or the N-D slice changed while the overview was made.
                    t, kind = shown, self._meta.get("kind", kind)
                    meta, base = self._state(t, kind, t_assign, stats)
                with self.hold_sync():
                    self._base = base
                    self._meta = meta
                    self._hist = _hist_payload(hist, meta["token"])
        except Exception as exc:  # any failure is the view's to show
            if gen == self._generation:
                self._error = (
                    f"the full statistics and overview of this tensor failed: "
                    f"{type(exc).__name__}: {exc}; the view shows a strided sample"
                )

    def _summarize(
        self, full: torch.Tensor, shown: tuple[torch.Tensor, str], t_assign: float
    ) -> None:
        preview = full.numel() >= PREVIEW_MIN_ELEMENTS and shown[1] != "empty"
        if preview:
            self._publish_preview(shown[0], shown[1], t_assign)
        stats = _full_stats(full)
        # The histogram is one more pass in the kernel's own thread (a background thread kept
        # its temporaries in a second malloc arena: +5 % of a 1 GiB tensor in RSS). After a
        # preview it comes before the overview, so that once the overview shows, zooming does
        # not wait behind it.
        if preview:
            hist = histogram(full, stats)
            self._publish(shown[0], shown[1], t_assign, stats)
        else:
            self._publish(shown[0], shown[1], t_assign, stats)
            hist = histogram(full, stats)
        self._hist = _hist_payload(hist, self._meta["token"])

    def _publish_preview(self, t: torch.Tensor, kind: str, t_assign: float) -> None:
        """A first paint in milliseconds: every k-th cell (a strided sample, no full pass), with
        its own statistics marked ``sampled``; the aggregated overview replaces it."""
        bh, bw = base_shape((t.shape[0], t.shape[1]), max(1, self.bake_budget // 4))
        sr, sc = -(-t.shape[0] // bh), -(-t.shape[1] // bw)
        sample = t[::sr, ::sc].to(torch.float32).contiguous()
        stats = tensor_stats(sample)
        stats.update(shape=list(self._full_shape), numel=int(np.prod(self._full_shape)))
        stats["sampled"] = [sr, sc]
        stats["dtype"] = str(t.dtype).replace("torch.", "")
        self._publish(t, kind, t_assign, stats, sample=sample)

    @traitlets.observe("agg")
    def _agg_changed(self, _change: Any) -> None:
        if self._tensor is not None:
            self._publish(
                self._tensor,
                self._meta.get("kind", "2d"),
                time.time() * 1000.0,
                self._meta["stats"],
            )

    @traitlets.observe("axes", "index", "arrangement")
    def _slice_changed(self, _change: Any) -> None:
        if self._source is None or len(self._full_shape) <= 2:
            return
        try:
            t, kind = as_2d(self._source, self.axes, self.index, self.arrangement)
        except (ValueError, IndexError) as exc:
            self._error = str(exc)
            return
        self._error = ""
        with self._lock:  # deferred passes publish the slice shown when they land
            self._tensor = t
            self._publish(t, kind, time.time() * 1000.0, self._meta["stats"])

    def _publish(
        self,
        t: torch.Tensor,
        kind: str,
        t_assign: float,
        stats: dict[str, Any],
        sample: torch.Tensor | None = None,
    ) -> None:
        meta, base = self._state(t, kind, t_assign, stats, sample=sample)
        with self.hold_sync():
            self._base = base
            self._meta = meta

    def _state(
        self,
        t: torch.Tensor,
        kind: str,
        t_assign: float,
        stats: dict[str, Any],
        sample: torch.Tensor | None = None,
        agg: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``_meta`` and ``_base`` of ``t`` (the overview with ``agg``, default the view's)."""
        agg = agg or self.agg
        meta: dict[str, Any] = {
            "token": next(_tokens),
            "kind": kind,
            "shape": list(t.shape),
            "source_shape": list(self._full_shape),
            "dtype": stats["dtype"],
            "stats": stats,
            "axes": list(_check_axes(len(self._full_shape), self.axes, self.index)[0])
            if len(self._full_shape) > 2
            else [],
            "layout": self.arrangement if len(self._full_shape) == 4 else "slice",
        }
        if meta["layout"] == "kernels":
            meta["grid"] = [int(self._full_shape[2]), int(self._full_shape[3])]
        base: dict[str, Any] = {}
        if sample is not None:
            base = {
                "data": encode_array(sample),
                "window": [0, t.shape[0], 0, t.shape[1]],
                "exact": False,
                "agg": "sample",
            }
        elif kind != "empty":
            blocks = base_blocks((t.shape[0], t.shape[1]), max(1, self.bake_budget // 4))
            out_h, out_w = -(-t.shape[0] // blocks[0]), -(-t.shape[1] // blocks[1])
            exact = blocks == (1, 1)
            mip = self._mip_for(t, agg)
            if (
                mip is not None
                and out_h * MIP_FACTOR <= t.shape[0]
                and out_w * MIP_FACTOR <= t.shape[1]
            ):
                arr = block_reduce(mip, (out_h, out_w), agg=agg)
            else:
                arr = reduce_blocks(t, blocks, agg=agg)
            base = {
                "data": encode_array(arr),
                "window": [0, t.shape[0], 0, t.shape[1]],
                "exact": exact,
                "agg": agg,
            }
        meta["t_sent"] = t_assign
        return meta, base

    def _mip_for(self, t: torch.Tensor, agg: str) -> torch.Tensor | None:
        """The reduced copy of ``t`` for ``agg`` (built once per tensor and aggregation)."""
        if t.numel() < MIP_MIN_ELEMENTS or min(t.shape) < MIP_FACTOR * 8:
            return None
        key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), agg, self._meta.get("token"))
        cached = self._mip
        if cached is not None and cached[0] == key[:4]:
            return cached[1]
        self._mip = None  # free the old copy before making the new one
        mh, mw = -(-t.shape[0] // MIP_FACTOR), -(-t.shape[1] // MIP_FACTOR)
        # bfloat16: half the bytes (3.1 % of a float32 tensor), float32's range; its rounding
        # (2**-9 of a value) is below the tiles' 1/500-of-the-range quantization. Built a band
        # of rows at a time (no float32 copy of the whole mip).
        mip = torch.empty((mh, mw), dtype=torch.bfloat16)
        band = max(1, (1 << 20) // max(1, t.shape[1]))
        for i0 in range(0, mh, band):
            i1 = min(mh, i0 + band)
            r0, r1 = i0 * t.shape[0] // mh, max(i0 * t.shape[0] // mh + 1, i1 * t.shape[0] // mh)
            part = block_reduce(t, (i1 - i0, mw), window=(r0, r1, 0, t.shape[1]), agg=agg)
            mip[i0:i1] = torch.from_numpy(part).to(torch.bfloat16)
        self._mip = (key[:4], mip)
        return mip

    def _current(self) -> torch.Tensor:
        """The displayed 2-D tensor, re-read from the source: a changed shape re-publishes."""
        if self._source is None or self._tensor is None:
            raise ValueError("this view has no data; assign view.data = tensor")
        full = to_tensor(self._source)
        if tuple(full.shape) != self._full_shape:
            old = self._full_shape
            self.data = self._source
            raise TensorChanged(
                f"the tensor changed shape from {old} to {tuple(full.shape)}; the view re-read it"
            )
        if full.data_ptr() != self._source_ptr:
            # Same shape, new storage (e.g. param.data = ...): show the new values.
            self._source_ptr = full.data_ptr()
            self._tensor = as_2d(self._source, self.axes, self.index, self.arrangement)[0]
        return self._tensor

    @request("value")
    def _value(self, args: dict[str, Any]) -> dict[str, Any]:
        """The exact value at (row, col) of the displayed 2-D tensor."""
        t = self._current()
        row, col = int(args["row"]), int(args["col"])
        if not (0 <= row < t.shape[0] and 0 <= col < t.shape[1]):
            raise IndexError(
                f"({row}, {col}) is outside the tensor of shape {tuple(t.shape)}; "
                "it may have changed shape: re-run ls.heatmap"
            )
        return {"row": row, "col": col, "text": exact_text(t[row, col])}

    @request("tile")
    def _tile(self, args: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        """The window ``[r0, r1, c0, c1]`` at ``out = [h, w]`` canvas pixels.

        Exact float32 cells when the window has at most ``EXACT_CELL_SHARE`` of the canvas's
        pixels; otherwise block-aggregated with ``agg`` to at most the canvas size and quantized
        to uint8 in the colour range ``[lo, hi]`` (``log``: of magnitudes). See wire/quantize.py.
        """
        # One torch thread throughout (see tile_threads; the first parallel op of a process
        # also starts OpenMP's pool: ~90 ms on the first zoom).
        with tile_threads():
            return self._tile_in_thread(args)

    def _tile_in_thread(self, args: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        t = self._current()
        h, w = int(t.shape[0]), int(t.shape[1])
        r0, r1, c0, c1 = (int(v) for v in args["window"])
        r0, c0 = max(0, min(r0, h - 1)), max(0, min(c0, w - 1))
        r1, c1 = max(r0 + 1, min(r1, h)), max(c0 + 1, min(c1, w))
        out_h = max(1, min(int(args["out"][0]), 8192))
        out_w = max(1, min(int(args["out"][1]), 8192))
        agg = str(args.get("agg") or self.agg)
        cells = (r1 - r0) * (c1 - c0)
        reply: dict[str, Any] = {
            "token": args.get("token"),
            "window": [r0, r1, c0, c1],
            "agg": agg,
            "tensor_shape": [h, w],
        }
        if cells <= EXACT_CELL_SHARE * out_h * out_w:
            arr = block_reduce(t, (r1 - r0, c1 - c0), window=(r0, r1, c0, c1), agg=agg)
            payload = encode_array(arr)
            reply.update(exact=True, quant=None)
        else:
            mip = None
            if (r1 - r0) >= MIP_FACTOR * out_h and (c1 - c0) >= MIP_FACTOR * out_w:
                mip = self._mip_for(t, agg)
            if mip is not None:
                # The mip cells that cover the window, in whole blocks of them; the reply's
                # window is where those cells start and end in the tensor.
                mh, mw = mip.shape
                a0, a1, oh = aligned_blocks(r0 * mh // h, -(-r1 * mh // h), mh, out_h)
                b0, b1, ow = aligned_blocks(c0 * mw // w, -(-c1 * mw // w), mw, out_w)
                arr = block_reduce(mip, (oh, ow), window=(a0, a1, b0, b1), agg=agg)
                r0, r1, c0, c1 = (
                    a0 * h // mh,
                    min(h, a1 * h // mh),
                    b0 * w // mw,
                    min(w, b1 * w // mw),
                )
                reply["from_mip"] = MIP_FACTOR
            else:
                r0, r1, oh = aligned_blocks(r0, r1, h, out_h)
                c0, c1, ow = aligned_blocks(c0, c1, w, out_w)
                arr = block_reduce(t, (oh, ow), window=(r0, r1, c0, c1), agg=agg)
            reply["window"] = [r0, r1, c0, c1]
            lo, hi, log = _tile_range(args, arr)
            codes, q = quantize_u8(arr, lo, hi, log=log)
            payload = encode_array(codes)
            reply.update(exact=False, quant=q)
        reply["data"] = {k: v for k, v in payload.items() if k != "buffer"}
        return reply, [payload["buffer"]]


def settle(timeout: float | None = None) -> None:
    """Wait until every deferred pass queued so far has landed in its view (an export, for one,
    must save the full overview, not the preview)."""
    _passes.submit(lambda: None).result(timeout)


def resend_settled(timeout: float | None = None) -> None:
    """``settle``, then send again the whole state of every view whose passes were deferred.
    For a client that takes state only from the messages of the cell it runs (nbclient, when
    ``export_notebook(execute=True)`` runs a notebook): the passes land from the worker thread,
    after their cell, and would be missed."""
    settle(timeout)
    for view in list(_deferred):
        view.send_state()


def _full_stats(full: torch.Tensor) -> dict[str, Any]:
    """float64 statistics of small (or float64/int64) tensors, float32 chunks otherwise."""
    if full.numel() <= EXACT_STATS_MAX or full.dtype in (torch.float64, torch.int64):
        return tensor_stats(full)
    return fast_stats(full)


def _run_queued(ref: weakref.ref[TensorView]) -> None:
    view = ref()
    if view is not None:
        view._run_passes()


def _tile_range(args: dict[str, Any], arr: np.ndarray) -> tuple[float, float, bool]:
    """The quantization range: the view's colour range, else the tile's own: its 0.5th to
    99.5th percentile (codes clip beyond), so that one outlier block does not leave the rest of
    the tile a handful of codes (the view's colours follow the shown values, see heatmap.ts)."""
    log = bool(args.get("log"))
    lo, hi = args.get("lo"), args.get("hi")
    given = lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi)
    if given and (not log or float(lo) > 0):  # type: ignore[arg-type]
        return float(lo), float(hi), log  # type: ignore[arg-type]
    finite = arr[np.isfinite(arr)]
    if log:
        mags = np.abs(finite[finite != 0])
        if mags.size == 0:
            return 1.0, 10.0, True
        return float(mags.min()), float(mags.max()), True
    if finite.size == 0:
        return 0.0, 1.0, False
    lo, hi = (float(v) for v in np.quantile(finite, [0.005, 0.995]))
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
    return lo, hi, False


def _hist_payload(hist: dict[str, Any], token: int) -> dict[str, Any]:
    counts = np.asarray(hist["counts"], dtype=np.int64)
    # The narrowest unsigned type that holds the largest count: 4,097 fine bins are 32 KB as
    # float64 but 4 KB as uint8 for a small layer (every baked panel carries one).
    top = int(counts.max()) if counts.size else 0
    counts = counts.astype(np.min_scalar_type(top) if top < 2**32 else np.float64)
    return {
        "token": token,
        "lo": hist["lo"],
        "hi": hist["hi"],
        "abs_lo": hist["abs_lo"],
        "abs_hi": hist["abs_hi"],
        "counts": encode_array(counts),
    }


def heatmap(
    x: Any,
    *,
    colormap: str = "auto",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str = "",
    height: int = 360,
    agg: str = "mean",
    scale: str = "auto",
    axes: tuple[int, int] | None = None,
    arrangement: str = "slice",
    budget: int | str = BAKE_BUDGET,
) -> TensorView:
    """Show a tensor or array as a zoomable heatmap (1-D as a strip, N-D as a 2-D slice).

    Wheel to zoom around the pointer, drag to pan, shift+drag to zoom into a box, double-click
    to reset. ``colormap="auto"`` picks a diverging map centred on 0 for signed data and a
    sequential one otherwise. ``scale`` is "auto", "symmetric", "percentile" (clip 1-99%),
    "log" (magnitude) or "fixed" (``vmin``/``vmax``). ``agg`` (mean, maxabs, min, max) reduces
    blocks of cells to a screen pixel. NaN and +/-Inf get their own colours and counts; hovering
    shows row, column and the exact value. ``axes`` picks the two axes of an N-D tensor;
    ``arrangement="kernels"`` shows conv weights (out, in, kh, kw) as a grid of kernels.
    ``budget``: bytes of the overview saved with the view (what an exported page zooms into;
    default 2 MiB), e.g. ``"512KB"``.

    >>> import layerscope as ls, torch
    >>> view = ls.heatmap(torch.randn(64, 128), title="weights")
    """
    if x is None:
        raise TypeError(f"heatmap expects {ACCEPTED}; got None.")
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if arrangement not in LAYOUTS:
        raise ValueError(f"unknown arrangement {arrangement!r}; choose one of {', '.join(LAYOUTS)}")
    if scale == "fixed" and (vmin is None or vmax is None):
        raise ValueError("scale='fixed' needs both vmin and vmax")
    return TensorView(
        x,
        colormap=colormap,
        vmin=vmin,
        vmax=vmax,
        title=title,
        height=height,
        agg=agg,
        scale=scale,
        axes=list(axes) if axes is not None else [],
        arrangement=arrangement,
        bake_budget=parse_budget(budget),
    )
