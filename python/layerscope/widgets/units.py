"""``ls.units(model, data, layer=...)``: every unit of a layer over a dataset (``UnitsView``).

The table (mean, std, dead and saturated fractions, NaN/Inf counts, a sparkline histogram per
unit) comes from one ``inspect.collect`` pass and is pushed whole, so sorting and filtering are
front-end only. Clicking a unit (``unit``, synced) shows its card: its top-k dataset examples
(for conv layers the input cropped to the unit's receptive field at the max, beside the
activation map over the whole input; for token inputs the token in its context with the
activations coloured), 10 quantile groups of examples, its histogram, and the weights that feed
it. Cards of the first units are baked for exported pages within a byte budget, and the view
says how many. ``ls.units(data)`` with no model shows the input features the same way; a
``Collected`` as data (``ls.units(model, collected, layer=...)``) is shown without a new pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import traitlets
from torch import nn

from ..inspect.batches import is_one_shot
from ..inspect.capture import capture
from ..inspect.collect import Collected, LayerData, collect_every_layer, collect_into
from ..inspect.examples import incoming_weights, quantile_groups
from ..inspect.modules import check_module, find_module
from ..inspect.receptive import FieldMap
from ..inspect.unitstats import as_units
from ..numpy_view import numpy_view
from ..wire.codec import encode_array
from .base import BaseView, request
from .bundles import bundle
from .samples import Decode, image_u8, input_kind, token_text

CARD_BAKE_BUDGET = 1024 * 1024
MAX_ROWS_KEPT = 4096
TOKEN_CONTEXT = 8
MAX_WEIGHTS = 64 * 1024
INPUT_LAYER = "input"


class _Input(nn.Module):
    """The data itself as a layer: what ``ls.units(data)`` shows."""

    def __init__(self) -> None:
        super().__init__()
        self.input = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.input(x)


def _payload(a: np.ndarray) -> dict[str, Any]:
    return encode_array(np.ascontiguousarray(a))


def _u8(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.nan_to_num((a - lo) * scale), 0, 255).round().astype(np.uint8)


class UnitsView(BaseView):
    """Per-unit statistics and dataset examples of ``layer``; ``unit`` is the selected unit."""

    _esm = bundle("units")

    layer = traitlets.Unicode("").tag(sync=True)
    unit = traitlets.Int(0).tag(sync=True)
    sort = traitlets.Unicode("index").tag(sync=True)
    filter = traitlets.Unicode("all").tag(sync=True)
    height = traitlets.Int(460).tag(sync=True)
    # {"layer", "kind", "units", "n", "shape", "layout", "stats": {name: payload}, "spark": (U, bins)
    #  uint8, "edges", "bounds", "notes", "data_view"}
    _table = traitlets.Dict().tag(sync=True)
    # the selected unit's card (see _card_for)
    _card = traitlets.Dict().tag(sync=True)
    # cards baked for an exported page: {"units": [...], "cards": [...], "left_out": n}
    _baked = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        model: nn.Module | None,
        data: Any,
        *,
        layer: str | None = None,
        labels: Any = None,
        top_k: int = 20,
        class_names: Sequence[str] | None = None,
        decode: Decode = None,
        batch_size: int = 256,
        max_bytes: int | str = 64 * 2**20,
        progress: bool = True,
        bake_budget: int = CARD_BAKE_BUDGET,
        **kwargs: Any,
    ) -> None:
        given = data if isinstance(data, Collected) else None
        self._data_view = model is None and given is None
        if self._data_view:
            model, layer = _Input(), INPUT_LAYER
        self._model: nn.Module | None = check_module(model) if model is not None else None
        self._given = given
        # a generator is read once: that pass collects every leaf layer (see collected())
        self._one_shot = given is None and is_one_shot(data)
        self._all: Collected | None = None
        if given is not None:
            if layer is None:
                layer = next(iter(given.layers))
            _check_given(given, layer)
        if self._model is not None:
            if layer is None:
                leaves = [p for p, m in self._model.named_modules() if p and not list(m.children())]
                layer = leaves[0] if leaves else ""
            find_module(self._model, layer)
        assert layer is not None
        self._class_names = list(class_names) if class_names is not None else None
        self._decode = decode
        self._top_k = top_k
        self._fields: dict[str, FieldMap] = {}
        # The layer's activations of samples shown as examples, by sample index (one forward
        # pass for many cards): for (the Collected, the layer) in _rows_of.
        self._rows: dict[int, torch.Tensor] = {}
        self._rows_of: tuple[int, str] | None = None
        self._collect_kw = {
            "labels": labels,
            "top_k": top_k,
            "batch_size": batch_size,
            "max_bytes": max_bytes,
            "progress": progress,
            "pool": "max",  # quantile groups by each sample's largest value, like the top-k
            "predict": not self._data_view,
        }
        self._data = data
        self._cache: dict[str, Collected] = {}
        self._bake_budget = bake_budget
        self._ready = False
        super().__init__(**kwargs)
        self.layer = layer
        self._ready = True
        self._refresh()

    def collected(self, layer: str | None = None) -> Collected:
        """The ``Collected`` of ``layer`` (default: the shown one): the one this view was given,
        else computed once per layer; for a one-shot iterable (a generator), one pass collects
        every leaf layer (and the first one shown), since the data cannot be read again."""
        path = self.layer if layer is None else layer
        if self._given is not None:
            _check_given(self._given, path)
            return self._given
        assert self._model is not None
        if self._one_shot:
            if self._all is None:
                self._all = collect_every_layer(self._model, self._data, path, **self._collect_kw)
            if path not in self._all.layers:
                raise KeyError(
                    f"layer {path!r} was not collected: the data is a one-shot iterable "
                    f"({type(self._data).__name__}), read once for every leaf layer that gave a "
                    "per-sample output. To see other layers pass data that can be read again: a "
                    "tensor, a tuple (inputs, labels), a DataLoader or a list of batches, or a "
                    "Collected with those layers: ls.units(model, ls.inspect.collect(model, data, "
                    f"layers=[{path!r}, ...]))"
                )
            return self._all
        if path not in self._cache:
            self.prefetch([path])
        return self._cache[path]

    def prefetch(self, layers: Sequence[str]) -> None:
        """The ``layers`` not collected yet, in one pass over the data (``collect_into``): the
        workspace saving every layer's panel pays one pass, not one per layer."""
        if self._given is not None or self._one_shot or self._model is None:
            return
        collect_into(self._cache, self._model, self._data, layers, **self._collect_kw)

    def recollect(self) -> None:
        """The model changed (it trained): forget the passes over the data and show the layer
        again from a new one. A ``Collected`` given, or one-shot data read at the start, stays:
        there is nothing to re-read."""
        if self._given is not None or self._one_shot:
            return
        self._cache.clear()
        try:
            self._refresh()
        except (KeyError, ValueError, IndexError, RuntimeError) as exc:
            self._error = str(exc)

    @traitlets.observe("layer", "unit")
    def _changed(self, change: Any) -> None:
        if not self._ready:
            return
        try:
            if change["name"] == "layer":
                self._refresh()
            else:
                self._show_unit()
        except (KeyError, ValueError, IndexError, RuntimeError) as exc:
            self._error = str(exc)

    def _refresh(self) -> None:
        col = self.collected()
        data = col[self.layer]
        s = data.stats
        hist = s["hist"].astype(np.float64)
        peak = hist.max(axis=1, keepdims=True)
        spark = _u8(hist / np.where(peak > 0, peak, 1), 0.0, 1.0)
        stats = {
            k: _payload(np.asarray(s[k], np.float32))
            for k in ("mean", "std", "min", "max", "frac_zero", "frac_saturated")
        }
        stats["nonfinite"] = _payload(s["nonfinite"].astype(np.int32))
        with self.hold_sync():
            self._error = ""
            self._table = {
                "layer": "the input" if self._data_view else self.layer,
                "data_view": self._data_view,
                "units": data.units,
                "n": col.n,
                "shape": list(data.shape),
                "layout": data.layout,
                "bounds": list(data.bounds) if data.bounds else None,
                "stats": stats,
                "spark": _payload(spark),
                "edges": [float(s["edges"][0]), float(s["edges"][-1])],
                "notes": [*col.notes, *self._view_notes(col)],
            }
            if not 0 <= self.unit < data.units:
                self.unit = 0
            self._show_unit()
            self._baked = self._bake(col, data)

    def _view_notes(self, col: Collected) -> list[str]:
        notes = []
        if self._given is not None and self._model is None:
            notes.append(
                "no model given: examples show the inputs only (no activation maps, receptive "
                "fields or weights); pass it too: ls.units(model, collected, layer=...)"
            )
        if self._one_shot:
            notes.append(
                f"the data is a one-shot iterable: its one pass collected {len(col.layers)} "
                "layers, and its inputs cannot be shown"
            )
        return notes

    def _show_unit(self) -> None:
        col = self.collected()
        data = col[self.layer]
        if not 0 <= self.unit < data.units:
            raise IndexError(f"unit {self.unit} is outside 0..{data.units - 1} of {self.layer!r}")
        self._card = self.card(self.unit)

    def _bake(self, col: Collected, data: LayerData) -> dict[str, Any]:
        cards, units, used = [], [], 0
        # every baked card's examples in one forward pass (a pass per card was most of the cost)
        picks = {int(i) for u in range(data.units) for i, _, _ in data.top(u)[:8]}
        self._activations(col, sorted(picks))
        for u in range(data.units):
            c = self.card(u, examples=8, groups=False)
            size = _card_bytes(c)
            if used + size > self._bake_budget:
                break
            used += size
            cards.append(c)
            units.append(u)
        return {"units": units, "cards": cards, "left_out": data.units - len(units), "bytes": used}

    # -- one unit's card -------------------------------------------------------------------------

    def card(
        self, unit: int, *, examples: int | None = None, groups: bool = True
    ) -> dict[str, Any]:
        """The card of ``unit``: stats, histogram, top examples, quantile groups, weights."""
        col = self.collected()
        data = col[self.layer]
        s = data.stats
        top = data.top(unit)[: examples or self._top_k]
        card: dict[str, Any] = {
            "layer": self.layer,
            "unit": unit,
            "hist": _payload(s["hist"][unit].astype(np.int32)),
            "edges": [float(s["edges"][0]), float(s["edges"][-1])],
            "under": int(s["under"][unit]),
            "over": int(s["over"][unit]),
            "nonfinite": int(s["nonfinite"][unit]),
            "stats": {
                k: _num(s[k][unit])
                for k in ("mean", "std", "min", "max", "frac_zero", "frac_saturated")
            },
        }
        if groups:
            values, how = _unit_values(col, data, unit)
            qs = quantile_groups(values, col.rep_index)
            # the top and every group's examples in one forward pass
            shown = [int(i) for i, _, _ in top] + [int(i) for g in qs for i in g["index"]]
            self._activations(col, shown)
        card["top"] = self._examples(col, data, unit, [(i, v, p) for i, v, p in top])
        if groups:
            card["groups"] = [
                {
                    **{k: g[k] for k in ("lo", "hi", "count")},
                    "examples": self._examples(
                        col,
                        data,
                        unit,
                        [(i, v, -1) for i, v in zip(g["index"], g["values"], strict=True)],
                    ),
                }
                for g in qs
            ]
            group_notes = [how] if how else []
            if col.subsampled:
                group_notes.append(
                    f"quantile groups are drawn from the {len(col.rep_index):,} samples whose "
                    "values were kept (see the notes)"
                )
            if group_notes:
                card["groups_note"] = " · ".join(group_notes)
        if self._model is None and not self._data_view:
            card["weights_note"] = (
                "no model given: pass it to see the weights that write this unit, "
                "ls.units(model, collected, layer=...)"
            )
        elif not self._data_view:
            assert self._model is not None
            w = incoming_weights(self._model, self.layer, data.units)
            if w is not None:
                path, weight = w
                row = weight[unit].float().cpu()
                grid = row.reshape(row.shape[0], -1) if row.dim() >= 2 else row.reshape(1, -1)
                if grid.numel() > MAX_WEIGHTS:
                    grid = grid.flatten()[:MAX_WEIGHTS].reshape(1, -1)
                    card["weights_note"] = f"first {MAX_WEIGHTS:,} of {row.numel():,} weights"
                card["weights"] = {
                    "path": f"{path}[{unit}]",
                    "shape": list(row.shape),
                    "data": _payload(grid.numpy()),
                }
            else:
                card["weights_note"] = f"{self.layer!r} has no weight parameter writing its units"
        return card

    def _activations(self, col: Collected, index: list[int]) -> torch.Tensor | None:
        """The layer's activations of samples ``index`` (stacked), computed once per sample
        (batches of 256) and kept while the layer and its Collected stay the same (at most
        ``MAX_ROWS_KEPT`` samples)."""
        if self._model is None or not index:
            return None
        key = (id(col), self.layer)
        if self._rows_of != key or len(self._rows) > MAX_ROWS_KEPT:
            self._rows, self._rows_of = {}, key
        need = [i for i in dict.fromkeys(index) if i not in self._rows]
        for start in range(0, len(need), 256):
            chunk = need[start : start + 256]
            xs = [col.sample(i) for i in chunk]
            if any(x is None for x in xs):
                return None
            x = torch.stack([t for t in xs if t is not None]).to(_device(self._model))
            out = capture(self._model, x, layers=[self.layer])[self.layer].cpu()
            self._rows.update(zip(chunk, out, strict=True))
        return torch.stack([self._rows[i] for i in index])

    def _examples(
        self, col: Collected, data: LayerData, unit: int, picks: list[tuple[int, float, int]]
    ) -> dict[str, Any]:
        """Examples as one payload: images (crop + activation map), tokens in context, or
        feature values, plus index / value / label / prediction per example."""
        out: dict[str, Any] = {
            "index": [int(i) for i, _, _ in picks],
            "values": [float(v) for _, v, _ in picks],
            "labels": [self._name(col.labels, i) for i, _, _ in picks],
            "predictions": [self._name(col.predictions, i) for i, _, _ in picks],
        }
        if not picks:
            out["kind"] = "none"
            return out
        xs = [col.sample(i) for i, _, _ in picks]
        if any(x is None for x in xs):
            out["kind"] = "none"
            out["why"] = "the data is an iterable: its inputs cannot be fetched again"
            return out
        x = torch.stack([t for t in xs if t is not None])
        kind = input_kind(tuple(x.shape[1:]), str(x.dtype).replace("torch.", ""))
        acts: torch.Tensor | None = None
        if self._data_view:
            acts = x
        elif self._model is not None:
            acts = self._activations(col, [int(i) for i, _, _ in picks])
        if acts is not None:
            v = as_units(acts, data.layout)[:, unit]  # (k, positions)
            pos = [
                p if p >= 0 else int(torch.argmax(torch.nan_to_num(v[k], nan=-np.inf)))
                for k, (_, _, p) in enumerate(picks)
            ]
        else:  # no model: the position of the max is known for the top-k only
            v = None
            pos = [p for _, _, p in picks]
        out["positions"] = [list(data.position(p)) if p >= 0 else [] for p in pos]
        if kind == "tokens" and data.layout == "seq":
            out["kind"] = "tokens"
            ctx = []
            for k, p in enumerate(pos):
                if p < 0:  # no model and not a top-k example: where its max lies is unknown
                    a, b = 0, min(x.shape[1], 2 * TOKEN_CONTEXT + 1)
                else:
                    a, b = max(0, p - TOKEN_CONTEXT), min(x.shape[1], p + TOKEN_CONTEXT + 1)
                if v is not None:
                    acts_k = [_num(t) for t in v[k, a:b].tolist()]
                else:  # no model: only the top-k value at its position is known
                    acts_k = [picks[k][1] if j == p else None for j in range(a, b)]
                ctx.append(
                    {
                        "tokens": token_text(x[k, a:b].tolist(), self._decode),
                        "acts": acts_k,
                        "focus": p - a if p >= 0 else -1,
                    }
                )
            out["contexts"] = ctx
            return out
        if kind == "image":
            out["kind"] = "image"
            imgs = [image_u8(t) for t in x]
            out["images"] = _payload(np.stack(imgs))
            if data.layout == "conv" and len(data.shape) == 3 and acts is not None:
                maps = numpy_view(acts[:, unit].float().cpu())
                hi = float(np.nanmax(np.abs(maps))) if np.isfinite(maps).any() else 1.0
                out["maps"] = _payload(_u8(maps, 0.0, hi if hi > 0 else 1.0))
                if self._data_view:
                    boxes = [[[0, int(x.shape[2])], [0, int(x.shape[3])]] for _ in picks]
                else:
                    assert self._model is not None
                    if self.layer not in self._fields:
                        self._fields[self.layer] = FieldMap(
                            self._model, self.layer, tuple(x.shape[1:]), data.shape[1:]
                        )
                    field = self._fields[self.layer]
                    boxes = [[list(b) for b in field(*p)] for p in out["positions"]]
                out["boxes"] = boxes  # [[r0, r1], [c0, c1]] in input pixels
                out["input_hw"] = [int(x.shape[2]), int(x.shape[3])]
            return out
        out["kind"] = "features"
        flat = x.float().flatten(1)[:, :256]
        out["features"] = _payload(numpy_view(flat.cpu()).astype(np.float16))
        return out

    def _name(self, arr: np.ndarray | None, i: int) -> str | None:
        if arr is None or arr.ndim != 1:
            return None
        v = arr[i]
        if (
            np.issubdtype(arr.dtype, np.integer)
            and self._class_names is not None
            and 0 <= int(v) < len(self._class_names)
        ):
            return str(self._class_names[int(v)])
        return str(v.item() if hasattr(v, "item") else v)

    @request("card")
    def _card_request(self, args: dict[str, Any]) -> dict[str, Any]:
        """The card of one unit (the front end shows it while ``unit`` syncs)."""
        return {"card": self.card(int(args["unit"]))}


def _check_given(col: Collected, layer: str) -> None:
    if layer not in col.layers:
        raise KeyError(
            f"layer {layer!r} is not in the Collected this view was given (it holds "
            f"{list(col.layers)}); collect it too: ls.inspect.collect(model, data, "
            f"layers=[..., {layer!r}])"
        )


def _unit_values(col: Collected, data: LayerData, unit: int) -> tuple[np.ndarray, str]:
    """Each kept sample's value of ``unit`` for the quantile groups: its largest over positions
    where the representation allows, else what the ``Collected`` pooled (and a note saying so)."""
    if data.layout == "vec" or col.pool == "max":
        return data.reps[:, unit].astype(np.float32), ""
    if col.pool is None:
        per = data.reps.reshape(len(data.reps), data.units, -1)[:, unit]
        return per.astype(np.float32).max(axis=1), ""
    return (
        data.reps[:, unit].astype(np.float32),
        f"quantile groups by each sample's {col.pool} over positions (the Collected's pool)",
    )


def _num(v: Any) -> float | None:
    """A float for JSON; NaN and Inf (which JSON cannot carry) become None, shown as "—"."""
    f = float(v)
    return f if np.isfinite(f) else None


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _card_bytes(card: dict[str, Any]) -> int:
    total = 0
    stack: list[Any] = [card]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, memoryview):
            total += item.nbytes
        else:
            total += 8
    return total


def units(
    model: nn.Module | Any, data: Any = None, layer: str | None = None, **kwargs: Any
) -> UnitsView:
    """Every unit (neuron, or channel of a conv) of ``layer`` over ``data``: statistics, sort and
    filter, and per unit its top dataset examples, quantile groups, histogram and weights.

    ``data`` may be a ``Collected`` from ``ls.inspect.collect``: the view then shows its
    statistics instead of running the model over the data again (``ls.units(model, collected,
    layer=...)``; without the model, ``ls.units(collected, layer=...)`` shows statistics and the
    top examples' inputs, but no activation maps, receptive fields or weights). A one-shot
    iterable (a generator) is read once, for every leaf layer, so that ``layer`` can change.

    ``ls.units(data)`` (no model) shows the input features/channels themselves: their
    distributions and their most extreme samples. Keywords: ``labels``, ``top_k`` (20),
    ``class_names``, ``decode`` (token id -> text), ``batch_size``, ``max_bytes``, ``height``.

    >>> view = ls.units(model, (x, y), layer="features.1")     # doctest: +SKIP
    >>> view.unit = 12                                          # doctest: +SKIP
    >>> col = ls.inspect.collect(model, (x, y), layers=["features.1", "classifier.2"])  # doctest: +SKIP
    >>> ls.units(model, col, layer="classifier.2")              # no second pass # doctest: +SKIP
    >>> ls.units(x)                                             # the data distribution view  # doctest: +SKIP
    """
    if isinstance(model, Collected):
        if data is not None:
            raise TypeError(
                "units(collected, layer=...) takes the Collected alone; with a model pass "
                "units(model, collected, layer=...)"
            )
        return UnitsView(None, model, layer=layer, **kwargs)
    if not isinstance(model, nn.Module):
        if data is not None:
            raise TypeError(
                f"units(model, data): model must be a torch.nn.Module, got {type(model).__name__}; "
                "for the data distribution view call units(data) alone"
            )
        return UnitsView(None, model, **kwargs)
    if data is None:
        raise TypeError("units(model, data, layer=...) needs data to run the model over")
    return UnitsView(model, data, layer=layer, **kwargs)
