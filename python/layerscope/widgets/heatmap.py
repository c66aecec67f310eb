"""``ls.heatmap``: a 2-D tensor or array as a colour-mapped canvas (``TensorView``)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import torch
import traitlets

from ..inspect.stats import tensor_stats
from ..wire.codec import ACCEPTED, check_array, describe, encode_array
from ..wire.tiles import AGGREGATIONS, block_reduce, fit_shape
from ..wire.values import exact_text
from .base import BaseView, request
from .bundles import bundle

COLORMAPS = ("auto", "diverging", "sequential", "viridis", "magma", "gray", "rdbu")

# Longest side of the baked overview: the screen's resolution, not the tensor's (a 512-px canvas
# at device pixel ratio 2). Tensors up to this size are baked whole, so hover is exact offline.
BASE_MAX_SIDE = 1024

_tokens = itertools.count(1)


def as_2d(x: Any) -> tuple[torch.Tensor, str]:
    """A 2-D torch view of ``x`` for display and its kind ("2d", "1d" strip, "empty").

    Accepts torch tensors, numpy arrays and (nested) lists of numbers; raises TypeError /
    ValueError naming what was passed and what to pass instead.
    """
    if isinstance(x, (list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError as exc:  # ragged lists
            raise TypeError(f"heatmap expects {ACCEPTED}; got a ragged {type(x).__name__}: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"heatmap expects {ACCEPTED} or a list of numbers; got {describe(x)}.")
        x = arr
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        raise TypeError(f"heatmap expects {ACCEPTED}; got {describe(x)}.")
    check_array(x)
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("=")))
    if t.dim() > 2:
        shape = tuple(t.shape)
        raise ValueError(
            f"heatmap shows 2-D data; got {t.dim()}-D shape {shape}. Pass a 2-D slice such as "
            f"x[0] (shape {shape[1:]}) or x[..., 0] (shape {shape[:-1]}), or reshape it: "
            f"x.reshape({shape[0]}, -1) gives {(shape[0], int(np.prod(shape[1:])))}, "
            f"x.flatten(0, -2) gives {(int(np.prod(shape[:-1])), shape[-1])}."
        )
    if t.numel() == 0:
        return t.reshape(t.shape if t.dim() == 2 else (1, 0) if t.dim() == 1 else (0, 0)), "empty"
    if t.dim() == 0:
        return t.reshape(1, 1), "2d"
    if t.dim() == 1:
        return t.reshape(1, -1), "1d"
    return t, "2d"


class TensorView(BaseView):
    """A heatmap of a 2-D tensor: colour bar, NaN/Inf marks with counts, exact hover values.

    The tensor stays in the kernel; the view holds a baked overview at most
    ``BASE_MAX_SIDE`` on a side (the whole tensor when it fits) and asks the kernel for exact
    values under the pointer.
    """

    _esm = bundle("heatmap")

    title = traitlets.Unicode("").tag(sync=True)
    colormap = traitlets.Enum(COLORMAPS, default_value="auto").tag(sync=True)
    vmin = traitlets.Float(None, allow_none=True).tag(sync=True)
    vmax = traitlets.Float(None, allow_none=True).tag(sync=True)
    height = traitlets.Int(360).tag(sync=True)
    agg = traitlets.Enum(AGGREGATIONS, default_value="mean").tag(sync=True)

    # What the view draws: metadata (shape, dtype, stats) and the baked overview payload.
    _meta = traitlets.Dict().tag(sync=True)
    _base = traitlets.Dict().tag(sync=True)
    # Set by the front end after each paint: {"token", "ms"} (kernel-set to painted).
    _painted = traitlets.Dict().tag(sync=True)

    _tensor: torch.Tensor | None = None
    _source: Any = None

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        t_assign = time.time() * 1000.0
        # Validate before the widget (and its comm) exists: bad input leaves nothing behind.
        shown = as_2d(data) if data is not None else None
        super().__init__(**kwargs)
        if shown is not None:
            self._source = data
            self._tensor = shown[0]
            self._publish(*shown, t_assign)

    @property
    def data(self) -> Any:
        """The tensor or array shown; assign a new one to update the view."""
        return self._source

    @data.setter
    def data(self, value: Any) -> None:
        t_assign = time.time() * 1000.0
        t, kind = as_2d(value)
        self._source = value
        self._tensor = t
        self._publish(t, kind, t_assign)

    @traitlets.observe("agg")
    def _agg_changed(self, _change: Any) -> None:
        if self._tensor is not None:
            self._publish(self._tensor, self._meta.get("kind", "2d"), time.time() * 1000.0)

    def _publish(self, t: torch.Tensor, kind: str, t_assign: float) -> None:
        stats = tensor_stats(t) if kind != "empty" else tensor_stats(t.reshape(-1))
        source_shape = list(self._source.shape) if hasattr(self._source, "shape") else list(t.shape)
        meta: dict[str, Any] = {
            "token": next(_tokens),
            "kind": kind,
            "shape": list(t.shape),
            "source_shape": source_shape,
            "dtype": stats["dtype"],
            "stats": stats,
        }
        base: dict[str, Any] = {}
        if kind != "empty":
            out_h, out_w = fit_shape((t.shape[0], t.shape[1]), BASE_MAX_SIDE)
            exact = (out_h, out_w) == (t.shape[0], t.shape[1])
            arr = block_reduce(t, (out_h, out_w), agg=self.agg)
            base = {"data": encode_array(arr), "window": [0, t.shape[0], 0, t.shape[1]], "exact": exact, "agg": self.agg}
        meta["t_sent"] = t_assign
        with self.hold_sync():
            self._base = base
            self._meta = meta

    @request("value")
    def _value(self, args: dict[str, Any]) -> dict[str, Any]:
        """The exact value at (row, col) of the displayed 2-D tensor."""
        t = self._tensor
        if t is None:
            raise ValueError("this view has no data; assign view.data = tensor")
        row, col = int(args["row"]), int(args["col"])
        if not (0 <= row < t.shape[0] and 0 <= col < t.shape[1]):
            raise IndexError(f"({row}, {col}) is outside the tensor of shape {tuple(t.shape)}; it may have changed shape: re-run ls.heatmap")
        return {"row": row, "col": col, "text": exact_text(t[row, col])}


def heatmap(
    x: Any,
    *,
    colormap: str = "auto",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str = "",
    height: int = 360,
    agg: str = "mean",
) -> TensorView:
    """Show a 2-D tensor or array as a heatmap (1-D as a strip).

    ``colormap="auto"`` picks a diverging map centred on 0 for signed data and a sequential one
    otherwise; ``"diverging"``, ``"sequential"`` or a name (viridis, magma, gray, rdbu) choose.
    NaN and +/-Inf get their own colours and counts; hovering shows row, column and the exact value.

    >>> import layerscope as ls, torch
    >>> view = ls.heatmap(torch.randn(64, 128), title="weights")
    """
    if x is None:
        raise TypeError(f"heatmap expects {ACCEPTED}; got None.")
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}")
    return TensorView(x, colormap=colormap, vmin=vmin, vmax=vmax, title=title, height=height, agg=agg)
