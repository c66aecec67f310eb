"""``ls.weights(model)``: every parameter and buffer in one sortable table, the selected one as
the zoomable heatmap with its histogram (``WeightsView``, a ``TensorView``)."""

from __future__ import annotations

import difflib
import time
from typing import Any

import torch
import traitlets
from torch import nn

from ..inspect.histogram import fast_stats
from ..inspect.modules import check_module
from ..inspect.stats import small_summaries, tensor_stats
from .bundles import bundle
from .heatmap import EXACT_STATS_MAX, KERNELS_MAX, TensorView

ROW_COLUMNS = ("path", "kind", "shape", "dtype", "count", "norm", "mean", "std", "nan", "inf")


def named_tensors(model: nn.Module) -> list[tuple[str, str, torch.Tensor]]:
    """``(path, "param" | "buffer", tensor)`` for every parameter and buffer, in model order."""
    out: list[tuple[str, str, torch.Tensor]] = []
    for name, p in model.named_parameters():
        out.append((name, "param", p))
    for name, b in model.named_buffers():
        if b is not None:
            out.append((name, "buffer", b))
    return out


def _summary(t: torch.Tensor, small: dict[str, Any] | None = None) -> dict[str, Any]:
    """A table row's numbers; ``small``: the tensor's ``small_summaries`` entry, if any."""
    if t.device.type == "meta":
        return {"count": t.numel(), "norm": None, "mean": None, "std": None, "nan": 0, "inf": 0}
    if small is not None:
        s = small
    else:
        s = tensor_stats(t) if t.numel() <= EXACT_STATS_MAX else fast_stats(t)
    return {
        "count": s["numel"],
        "norm": s["norm"],
        "mean": s["mean"],
        "std": s["std"],
        "nan": s["nan"],
        "inf": s["posinf"] + s["neginf"],
    }


class TensorPathError(KeyError):
    """No parameter or buffer at that path; the message lists close matches."""

    def __str__(self) -> str:
        return str(self.args[0])


class WeightsView(TensorView):
    """All parameters and buffers of a model: a table (``_rows``, columnar) and the tensor at
    ``selected`` (a path such as ``"fc.weight"``) shown as the zoomable heatmap."""

    # Reads _meta right after assigning (and the workspace bakes from it): passes before return.
    _defer_above = None

    _esm = bundle("weights")

    selected = traitlets.Unicode("").tag(sync=True)
    # Columnar table: {column: [values...]} for ROW_COLUMNS.
    _rows = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        model: nn.Module,
        *,
        selected: str | None = None,
        stats: bool = True,
        **kwargs: Any,
    ) -> None:
        self._model = check_module(model)
        tensors = named_tensors(self._model)
        kwargs.setdefault("agg", "maxabs")
        super().__init__(**kwargs)
        self.refresh_rows(tensors, stats=stats)
        first = (
            selected
            if selected is not None
            else next((p for p, _, t in tensors if t.dim() >= 2), tensors[0][0] if tensors else "")
        )
        if first:
            self._lookup(first)  # a clear error for a bad `selected`
            self.selected = first

    def refresh_rows(
        self, tensors: list[tuple[str, str, torch.Tensor]] | None = None, *, stats: bool = True
    ) -> None:
        """The table again, from the model's tensors as they are now (e.g. after training).
        ``stats=False``: paths, shapes, dtypes and counts only, the statistics marked pending
        (``_rows["pending"]``, their columns left out: the page shows "…"; the workspace's first
        display, ~110 KB less of its state at 48 blocks: they follow after the cell)."""
        if tensors is None:
            tensors = named_tensors(self._model)
        if not stats:
            self._rows = {
                "path": [path for path, _, _ in tensors],
                "kind": [kind for _, kind, _ in tensors],
                "shape": [list(t.shape) for _, _, t in tensors],
                "dtype": [str(t.dtype).replace("torch.", "") for _, _, t in tensors],
                "count": [t.numel() for _, _, t in tensors],
                "pending": True,
            }
            return
        cols: dict[str, Any] = {c: [] for c in ROW_COLUMNS}
        small = small_summaries([t for _, _, t in tensors])
        for (path, kind, t), few in zip(tensors, small, strict=True):
            cols["path"].append(path)
            cols["kind"].append(kind)
            cols["shape"].append(list(t.shape))
            cols["dtype"].append(str(t.dtype).replace("torch.", ""))
            for k, v in _summary(t, few).items():
                cols[k].append(v)
        self._rows = cols

    @property
    def rows_pending(self) -> bool:
        """The table's statistics are not computed yet (``refresh_rows(stats=False)``)."""
        return bool(self._rows.get("pending"))

    def _lookup(self, path: str) -> torch.Tensor:
        # Straight down the module path (a scan of every tensor per lookup cost seconds on a
        # model with hundreds of parameters); re-read each time, so a replaced one is seen.
        for get in (self._model.get_parameter, self._model.get_buffer):
            try:
                found = get(path)
            except AttributeError:
                continue
            if found is not None:
                return found
        paths = {p: t for p, _, t in named_tensors(self._model)}
        if path in paths:
            return paths[path]
        close = difflib.get_close_matches(path, list(paths), n=5, cutoff=0.5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise TensorPathError(
            f"the model has no parameter or buffer {path!r} (deleted or renamed?).{hint} "
            f"It has {len(paths)}: {', '.join(list(paths)[:8])}{', ...' if len(paths) > 8 else ''}"
        )

    @traitlets.observe("selected")
    def _selected_changed(self, change: Any) -> None:
        path = change["new"]
        if not path:
            return
        try:
            t = self._lookup(path)
        except KeyError as exc:
            self._error = exc.args[0]
            return
        self._error = ""
        self.title = path
        t_assign = time.time() * 1000.0
        # Conv weights (out, in, kh, kw) open as a grid of kernels.
        kernels = t.dim() == 4 and t.numel() <= KERNELS_MAX
        with self.hold_trait_notifications():
            self.arrangement = "kernels" if kernels else "slice"
            self.data = t
        self._meta = {**self._meta, "t_sent": t_assign, "path": path}

    def _current(self) -> torch.Tensor:
        # The model may have changed since: a deleted parameter is a clear error, a replaced one
        # (same path, new tensor) is re-read.
        path = self.selected
        if path:
            t = self._lookup(path)
            if t is not self._source:
                self.data = t
        return super()._current()


def weights(model: nn.Module, *, selected: str | None = None, height: int = 360) -> WeightsView:
    """Browse every parameter and buffer of ``model``: sortable table (path, shape, dtype,
    count, norm, mean, std, NaN/Inf) and the selected one as a zoomable heatmap + histogram.

    >>> import layerscope as ls, torch
    >>> view = ls.weights(torch.nn.Linear(4, 3))
    >>> view.selected
    'weight'
    """
    return WeightsView(model, selected=selected, height=height)
