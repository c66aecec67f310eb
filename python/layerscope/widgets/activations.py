"""``ls.activations(model, *inputs, layer=None)``: what a layer outputs (``ActivationView``).

The model runs once under ``inspect.capture`` (which keeps DESIGN.md's promises). Conv outputs
``(N, C, H, W)`` show as a grid of channel thumbnails (shared or per-channel colour scale; only
the channels on screen are sent, at thumbnail resolution) and the clicked channel as the
zoomable heatmap; ``(N, T, D)`` as token x hidden; ``(N, D)`` as one strip per sample; other
shapes as an N-D slice. ``layer`` is a module path, linkable to ``GraphView.selected``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import traitlets
from torch import nn

from ..inspect.capture import capture
from ..inspect.modules import ModulePathError, check_module, find_module
from ..wire.codec import encode_array
from ..wire.quantize import quantize_u8
from ..wire.tiles import block_reduce, fit_shape
from .base import request
from .bundles import bundle
from .heatmap import TensorView

# Thumbnails baked into the widget state (what an exported page shows), in bytes.
THUMB_BAKE_BUDGET = 256 * 1024
THUMB_SIDE = 32
MAX_THUMB_SIDE = 128
MAX_THUMBS_PER_REQUEST = 1024


def activation_kind(shape: tuple[int, ...]) -> str:
    """conv (N, C, H, W), seq (N, T, D), vec (N, D) or other."""
    return {4: "conv", 3: "seq", 2: "vec"}.get(len(shape), "other")


class ActivationView(TensorView):
    """Activations of one layer of a model on given inputs; ``layer`` selects the module path."""

    # Reads _meta right after assigning (and the workspace bakes from it): passes before return.
    _defer_above = None

    _esm = bundle("activations")

    layer = traitlets.Unicode("").tag(sync=True)
    batch = traitlets.Int(0).tag(sync=True)
    channel = traitlets.Int(0).tag(sync=True)
    shared_scale = traitlets.Bool(True).tag(sync=True)
    # [{"path", "shape"}] of every captured layer, for the layer picker.
    _layers: traitlets.List[Any] = traitlets.List().tag(sync=True)
    # The shown layer: {"layer", "shape", "kind", "n", "channels", "thumb": [h, w], "range", "map"}.
    _act = traitlets.Dict().tag(sync=True)
    # Baked thumbnails of the first channels: {"layer", "batch", "start", "count", "codes",
    # "ranges", "thumb", "map", "shared"} (uint8 codes, see wire/quantize.py).
    _thumbs = traitlets.Dict().tag(sync=True)

    # Bytes of channel thumbnails baked into the state (what an exported page shows).
    thumb_budget: int = THUMB_BAKE_BUDGET

    def __init__(
        self,
        model: nn.Module,
        *inputs: Any,
        layer: str | None = None,
        forward_kwargs: dict[str, Any] | None = None,
        listed: list[dict[str, Any]] | None = None,
        captured: dict[str, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model = check_module(model)
        if not inputs:
            raise TypeError(
                "ls.activations runs the model on example inputs and shows what a layer computes; "
                "pass them after the model: ls.activations(model, x, layer=...)."
            )
        self._inputs = inputs
        self._forward_kwargs = dict(forward_kwargs or {})
        if layer is not None:
            find_module(self._model, layer)  # ModulePathError listing close matches
        # ``listed`` (the layers a trace saw, {"path", "shape"}): capture ``layer`` alone now and
        # every layer in ``complete()``, after the view is on screen (the workspace's first
        # display: a capture of every layer of a 48-block transformer took 0.2-0.4 s). Another
        # layer asked for before then is captured on its own when shown (``_activation``).
        # ``captured``: ``layer``'s output from a pass already run (the workspace's trace).
        self._listed: list[dict[str, Any]] | None = None
        acts: dict[str, torch.Tensor] = {}
        if listed is not None and layer is not None:
            if captured is not None and layer in captured:
                acts = {layer: captured[layer]}
            else:
                acts = self._capture_one(layer)
            if acts:
                self._listed = [dict(d) for d in listed]
            else:  # shown first: the default layer (the workspace then shows why not this one)
                layer = None
        self._acts: dict[str, torch.Tensor] = acts or self._capture_all(layer)
        if not self._acts:
            raise ValueError(
                "the model produced no tensor outputs to show (no module returned a tensor)"
            )
        if layer is None:
            layer = next((p for p, t in self._acts.items() if t.dim() == 4), next(iter(self._acts)))
        super().__init__(**kwargs)
        self._layers = self._listing()
        self.layer = layer
        if not self._act:  # layer "" equals the trait's default: no change event
            self._show("layer")

    def _capture_all(self, layer: str | None) -> dict[str, torch.Tensor]:
        # Every layer that ran (a model none of whose children ran is its own only layer, "").
        acts = capture(self._model, *self._inputs, **self._forward_kwargs)
        if layer is not None and layer not in acts:
            acts.update(capture(self._model, *self._inputs, layers=[layer], **self._forward_kwargs))
        return {k: v for k, v in acts.items() if "#" not in k}

    def _capture_one(self, path: str) -> dict[str, torch.Tensor]:
        acts = capture(self._model, *self._inputs, layers=[path], **self._forward_kwargs)
        return {k: v for k, v in acts.items() if "#" not in k}

    def _listing(self) -> list[dict[str, Any]]:
        """The layer picker's list: every captured layer, or while ``pending`` the listed ones
        and any captured on their own since."""
        if self._listed is None:
            return [{"path": p, "shape": list(t.shape)} for p, t in self._acts.items()]
        known = {d["path"] for d in self._listed}
        extra = [p for p in self._acts if p not in known]
        return self._listed + [{"path": p, "shape": list(self._acts[p].shape)} for p in extra]

    @property
    def pending(self) -> bool:
        """True while only some layers are captured (see ``complete``)."""
        return self._listed is not None

    def complete(self) -> None:
        """Capture every layer (one pass) when only the shown one was (``listed=``); the layer
        list becomes the captured one and the shown layer is shown from this pass."""
        if self._listed is not None:
            self.recapture()

    def recapture(self) -> None:
        """Run the model again (its weights changed, e.g. in training) and show the new outputs."""
        self._acts = self._capture_all(self.layer or None)
        self._listed = None
        self._layers = self._listing()
        try:
            self._show("layer")
        except (ModulePathError, ValueError, IndexError) as exc:  # as a selection says it
            self._error = str(exc)

    def _activation(self) -> torch.Tensor:
        path = self.layer
        if path not in self._acts:
            find_module(self._model, path)  # unknown path: ModulePathError with close matches
            self._acts.update(self._capture_one(path))
            if path not in self._acts:
                raise ValueError(f"layer {path!r} returned no tensor on these inputs")
            self._layers = self._listing()
        return self._acts[path]

    @traitlets.observe("layer", "batch", "channel", "shared_scale")
    def _selection_changed(self, change: Any) -> None:
        try:
            self._show(change["name"])
        except (ModulePathError, ValueError, IndexError) as exc:
            self._error = str(exc)

    def _show(self, cause: str) -> None:
        act = self._activation()
        shape = tuple(act.shape)
        kind = activation_kind(shape)
        n = shape[0] if act.dim() >= 1 else 1
        b = min(max(0, self.batch), max(0, n - 1))
        if b != self.batch:
            self.batch = b
            return
        info: dict[str, Any] = {"layer": self.layer, "shape": list(shape), "kind": kind, "n": n}
        if kind == "conv":
            c = min(max(0, self.channel), shape[1] - 1)
            info["channels"] = shape[1]
            info["thumb"] = list(fit_shape((shape[2], shape[3]), THUMB_SIDE))
            shown = act[b, c]
            self.title = f"{self.layer}  [{b}, {c}]  ({shape[2]} x {shape[3]})"
        elif kind == "seq":
            shown = act[b]
            self.title = f"{self.layer}  [{b}]  tokens x hidden"
        elif kind == "vec":
            shown = act
            self.title = f"{self.layer}  samples x features"
        else:
            shown = act[b] if act.dim() > 2 else act
            self.title = f"{self.layer}  [{b}]" if act.dim() > 2 else self.layer
        self._error = ""
        if kind == "conv":
            lo, hi, cmap = _range(act[b])
            info.update(range=[lo, hi], map=cmap)
        self._act = info
        if cause != "channel" or self._source is None:
            self._thumbs = self._bake_thumbs(act, b) if kind == "conv" else {}
        t_assign = time.time() * 1000.0
        self.data = shown
        self._meta = {**self._meta, "t_sent": t_assign}

    def _bake_thumbs(self, act: torch.Tensor, b: int) -> dict[str, Any]:
        th, tw = fit_shape((act.shape[2], act.shape[3]), THUMB_SIDE)
        count = max(1, min(act.shape[1], self.thumb_budget // (th * tw)))
        reply, buffers = self._thumb_payload(act, b, 0, count, THUMB_SIDE)
        return {**reply, "codes": {**reply["data"], "buffer": buffers[0]}, "batch": b}

    def _thumb_payload(
        self, act: torch.Tensor, b: int, start: int, count: int, side: int
    ) -> tuple[dict[str, Any], list[Any]]:
        c_total = act.shape[1]
        start = max(0, min(start, c_total - 1))
        count = max(1, min(count, c_total - start, MAX_THUMBS_PER_REQUEST))
        side = max(4, min(side, MAX_THUMB_SIDE))
        th, tw = fit_shape((act.shape[2], act.shape[3]), side)
        codes = np.empty((count, th, tw), dtype=np.uint8)
        ranges = []
        shared = _range(act[b])
        for k in range(count):
            img = block_reduce(act[b, start + k], (th, tw), agg="mean")
            lo, hi, _ = shared if self.shared_scale else _range(act[b, start + k])
            codes[k], _q = quantize_u8(img, lo, hi)
            ranges.append([lo, hi])
        payload = encode_array(codes)
        reply = {
            "layer": self.layer,
            "start": start,
            "count": count,
            "thumb": [th, tw],
            "ranges": ranges,
            "map": shared[2],
            "shared": self.shared_scale,
            "data": {k: v for k, v in payload.items() if k != "buffer"},
        }
        return reply, [payload["buffer"]]

    @request("thumbs")
    def _thumbs_request(self, args: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        """Thumbnails of channels ``start .. start+count`` of sample ``batch`` at ``side`` px."""
        act = self._activation()
        if act.dim() != 4:
            raise ValueError(
                f"layer {self.layer!r} has output shape {tuple(act.shape)}, not (N, C, H, W)"
            )
        b = int(args.get("batch", self.batch))
        if not 0 <= b < act.shape[0]:
            raise IndexError(f"batch index {b} is outside 0..{act.shape[0] - 1}")
        return self._thumb_payload(
            act, b, int(args["start"]), int(args["count"]), int(args.get("side", THUMB_SIDE))
        )


def _range(t: torch.Tensor) -> tuple[float, float, str]:
    """Colour range of a sample: symmetric around 0 (rdbu) for signed data, else min..max."""
    finite = t[torch.isfinite(t)]
    if finite.numel() == 0:
        return 0.0, 1.0, "viridis"
    lo, hi = float(finite.min()), float(finite.max())
    if lo < 0 < hi:
        m = max(-lo, hi)
        return -m, m, "rdbu"
    if hi <= lo:
        return lo - 0.5, lo + 0.5, "viridis"
    return lo, hi, "viridis"


def activations(
    model: nn.Module, *inputs: Any, layer: str | None = None, height: int = 320, **kwargs: Any
) -> ActivationView:
    """Run ``model(*inputs, **kwargs)`` once and show a layer's output: conv feature maps as a
    grid of channel thumbnails (click one to zoom), sequences as token x hidden, vectors as strips.

    Other keyword arguments are the model's own (``attention_mask=``, ``decoder_input_ids=``).
    The layers are the modules that ran and none of whose children ran (see ``inspect.capture``).

    ``layer`` is a module path (default: the first layer with a 4-D output); an unknown path
    raises an error that lists close matches. Link ``view.layer`` to ``GraphView.selected``.

    >>> import layerscope as ls, torch                                          # doctest: +SKIP
    >>> view = ls.activations(model, torch.randn(1, 3, 32, 32), layer="conv1")  # doctest: +SKIP
    """
    return ActivationView(model, *inputs, layer=layer, forward_kwargs=kwargs, height=height)
