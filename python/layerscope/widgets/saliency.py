"""``ls.saliency(model, inputs, target=None, method=...)``: what made the model say what it said.

``SaliencyView`` computes attributions in the kernel (``layerscope.attribution``) and shows them:

- image inputs ``(N, C, H, W)``: the input (RGB or grayscale, normalised for display) and, per
  method, the attribution (summed over channels) as a heatmap over it, with an opacity slider and
  a signed (diverging) or absolute (sequential) colour map; a sample selector for batches;
- token ids ``(N, L)`` (with ``tokens=`` strings) and feature vectors ``(N, D)``: the tokens
  coloured by attribution, the value on hover; for models with attention, a layers x heads grid of
  thumbnails (downsampled here) and the clicked matrix in the zoomable heatmap (this view is a
  ``TensorView``: its heatmap shows the open matrix, with tiles from the kernel);
- the top-k predicted classes (names from ``labels=``); clicking one re-targets: a ``retarget``
  request recomputes every method for that sample, sending progress while it runs.

Everything the view draws at the computed targets is baked into the synced state within
``budget`` bytes, so a saved notebook or ``ls.export_html`` page shows it with no kernel.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import traitlets
from torch import nn

from ..attribution import METHODS, attention_weights, attribute, predict_topk
from ..attribution.dispatch import method_keywords, split_model_kwargs
from ..attribution.targets import select_output
from ..inspect.modules import check_module
from ..inspect.restore import preserved
from ..wire.codec import encode_array
from ..wire.quantize import quantize_u8
from ..wire.tiles import block_reduce, fit_shape
from .base import request
from .bundles import bundle
from .heatmap import TensorView
from .saliency_kinds import EXTRA_KINDS, bake, detect_kind, display_map

# Bytes of baked images, overlays, token values and attention thumbnails (the export's size).
SALIENCY_BUDGET = 2 * 2**20
# The largest side an image or overlay is baked at (a screen panel needs no more).
MAX_IMAGE_SIDE = 224
MIN_IMAGE_SIDE = 16
# Attention thumbnails: at most this side, and at most this many bytes in all.
THUMB_SIDE = 48
THUMB_BUDGET = 384 * 1024
TOPK = 5
# Progress messages while a re-target runs: at most one per this many seconds.
PROGRESS_INTERVAL = 0.1


def _inputs_tensor(inputs: Any) -> torch.Tensor:
    x = inputs[0] if isinstance(inputs, (tuple, list)) and inputs else inputs
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"ls.saliency needs inputs as a torch.Tensor (or a tuple whose first item is one); got "
            f"{type(x).__name__}. Pass images (N, C, H, W), token ids (N, L), features (N, D), "
            "sequences (N, L, D), signals (N, C, L) or video (N, C, T, H, W)."
        )
    if x.dim() < 2:
        raise ValueError(
            f"inputs need a batch dimension first; got shape {tuple(x.shape)} (use x[None])."
        )
    return x


def input_kind(x: torch.Tensor, model: nn.Module | None = None, given: str | None = None) -> str:
    """image (N, C, H, W) float, tokens (N, L) integer ids, features (N, D) float, or one of
    the kinds in ``saliency_kinds`` (sequence, signal, video)."""
    extra = detect_kind(model if model is not None else nn.Module(), x, given)
    if extra is not None:
        return extra
    if x.dtype.is_floating_point and x.dim() == 4:
        return "image"
    if not x.dtype.is_floating_point and x.dim() == 2:
        return "tokens"
    if x.dtype.is_floating_point and x.dim() == 2:
        return "features"
    raise ValueError(
        f"ls.saliency shows images (N, C, H, W) float, token ids (N, L) integer, features "
        f"(N, D) float, sequences (N, L, D) or signals (N, C, L) float, or video (N, C, T, H, W) "
        f"float; got shape {tuple(x.shape)} dtype {x.dtype} (one image needs a batch dimension: "
        "x[None]). Use ls.attribute for other shapes."
    )


def display_image(img: torch.Tensor, side: tuple[int, int]) -> np.ndarray:
    """(C, H, W) -> uint8 (h, w, 3) or (h, w, 1), min-max normalised over the whole sample."""
    t = img.detach().float().cpu()
    if t.shape[0] not in (1, 3):
        t = t.mean(0, keepdim=True)
    t = torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)
    if tuple(t.shape[1:]) != side:
        t = F.interpolate(t[None], size=side, mode="area")[0]
    lo, hi = float(t.min()), float(t.max())
    t = (t - lo) / (hi - lo) if hi > lo else torch.zeros_like(t)
    return (t.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def _signed_range(a: np.ndarray) -> float:
    finite = a[np.isfinite(a)]
    m = float(np.abs(finite).max()) if finite.size else 0.0
    return m if m > 0 else 1.0


def _coded(a: np.ndarray) -> dict[str, Any]:
    """uint8 codes over [-m, m] (NaN/Inf sentinels, see wire/quantize.py) as a payload dict."""
    m = _signed_range(a)
    codes, q = quantize_u8(a, -m, m)
    return {"codes": encode_array(codes), "quant": q, "max_abs": m}


def _check_labels(labels: Any, name: str) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"{name}= must be a list of strings; got {type(labels).__name__}.")
    return [str(v) for v in labels]


# Options every method takes (ls.attribute's own keywords).
_COMMON = (
    "output",
    "embedding",
    "embedding_reduce",
    "forward_kwargs",
    "internal_batch_size",
    "memory_budget",
    "eval_mode",
)


def _method_options(method: str) -> set[str] | None:
    """Keyword options ``method`` takes; None where any may be valid (smoothgrad passes its
    base's options on)."""
    if method == "smoothgrad":
        return None
    params = inspect.signature(METHODS[method]).parameters
    return {k for k, p in params.items() if p.kind == inspect.Parameter.KEYWORD_ONLY}


def _split_options(methods: list[str], kw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each method's share of ``kw`` (n_steps= goes to integrated_gradients, not to gradient);
    an option no shown method takes is an error here, at call time."""
    out: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for m in methods:
        valid = _method_options(m)
        out[m] = {k: v for k, v in kw.items() if k in _COMMON or valid is None or k in valid}
        used |= set(out[m])
    unknown = [k for k in kw if k not in used]
    if unknown:
        raise TypeError(
            f"no method in {methods} takes the option(s) {unknown}; each method's options are "
            "listed in ls.attribute's docstring (integrated_gradients: n_steps, baselines, ...)."
        )
    return out


class SaliencyView(TensorView):
    """Attributions of ``model`` on ``inputs`` for ``target``, per method; see ``ls.saliency``."""

    # Reads _meta right after assigning (and the workspace bakes from it): passes before return.
    _defer_above = None

    _esm = bundle("saliency")

    # Shown methods (one panel each), the sample shown, the class explained per sample.
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    batch = traitlets.Int(0).tag(sync=True)
    target: traitlets.List[Any] = traitlets.List().tag(sync=True)
    opacity = traitlets.Float(0.6).tag(sync=True)
    # "signed": diverging map symmetric around 0; "absolute": sequential map of |attribution|.
    sign = traitlets.Enum(("signed", "absolute"), default_value="signed").tag(sync=True)
    labels = traitlets.List(traitlets.Unicode(), allow_none=True, default_value=None).tag(sync=True)
    tokens: traitlets.List[Any] = traitlets.List(allow_none=True, default_value=None).tag(sync=True)
    # The video frame shown (video inputs (N, C, T, H, W)).
    frame = traitlets.Int(0).tag(sync=True)
    # The attention matrix open in the heatmap: [layer index, head] or [] for none.
    attention_open = traitlets.List(traitlets.Int(), default_value=[]).tag(sync=True)
    # What the view draws. _info: {"kind", "n", "shape", "methods"}; _samples: per sample
    # {"image": payload (h, w, c) uint8, "maps": {method: {codes, quant, max_abs}} ((h, w) or (L,)),
    # "topk": {"probs", "indices"}, "target"}; _attention: {"layers", "heads", "tokens", "thumb",
    # "codes" (layers*heads, th, tw) uint8 of 0..1, "batch"}.
    _info = traitlets.Dict().tag(sync=True)
    _samples: traitlets.List[Any] = traitlets.List().tag(sync=True)
    _attention = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        target: Any = None,
        method: str | Sequence[str] = "integrated_gradients",
        *,
        labels: Sequence[str] | None = None,
        tokens: Sequence[str] | Sequence[Sequence[str]] | None = None,
        topk: int = TOPK,
        budget: int = SALIENCY_BUDGET,
        height: int = 360,
        input_kind: str | None = None,
        **kw: Any,
    ) -> None:
        self._model = check_module(model)
        self._inputs = inputs
        x = _inputs_tensor(inputs)
        kind = _input_kind(x, self._model, input_kind)
        methods = [method] if isinstance(method, str) else list(method)
        if not methods:
            raise ValueError(f"method= needs at least one method name; valid: {list(METHODS)}.")
        for m in methods:
            if m not in METHODS:
                raise ValueError(f"unknown method {m!r}; valid methods are {list(METHODS)}.")
        n = int(x.shape[0])
        label_list = _check_labels(labels, "labels")
        token_list = self._check_tokens(tokens, x, kind)
        kw = _model_keywords(self._model, methods, kw)
        self._kw = dict(kw)
        self._method_kw = _split_options(methods, kw)
        self._budget = int(budget)
        self._x = x
        self._kind = kind
        self._topk_k = int(topk)
        # Predictions first: target=None means the predicted class, which the view names.
        self._topk = self._predict()
        self._n_classes = self._classes_count()
        if label_list is not None and self._n_classes and len(label_list) != self._n_classes:
            raise ValueError(
                f"labels= has {len(label_list)} names but the model scores {self._n_classes} "
                f"classes; pass one name per class (labels[i] names class i), or labels=None."
            )
        targets = self._resolve_targets(target, n)
        # Samples whose class was chosen (given, or retargeted): the rest follow the prediction.
        self._chosen = set() if target is None else set(range(n))
        self._n_inputs = n  # rows past it: inputs shown by show_input
        # Compute everything before the widget exists: bad input raises with nothing left behind.
        maps = {m: self._attribute(m, targets) for m in methods}
        self._maps = maps
        self._attn: dict[str, torch.Tensor] | None = None
        self._attn_batch = -1
        if kind == "tokens":
            self._attention_for(0)
        super().__init__(height=height)
        with self.hold_sync():
            self.methods = methods
            self.labels = label_list  # type: ignore[assignment]
            self.tokens = token_list  # type: ignore[assignment]
            self.target = [self._json_target(t) for t in targets]
            self._info = {
                "kind": kind,
                "n": n,
                "shape": list(x.shape),
                "methods": methods,
                "classes": self._n_classes,
            }
            self._samples = self._bake_all(targets)
            self._attention = self._bake_attention()
        self._ready = True

    # ---- computation ----------------------------------------------------------------------

    def _predict(self) -> Any:
        try:
            return predict_topk(
                self._model,
                self._inputs,
                k=self._topk_k,
                output=self._kw.get("output"),
                forward_kwargs=self._kw.get("forward_kwargs"),
            )
        except ValueError:
            return None  # not an (N, classes) output: no top-k list, targets as given

    def _resolve_targets(self, target: Any, n: int) -> list[Any]:
        if target is None:
            if self._topk is None:
                return [None] * n
            return [int(v) for v in self._topk.indices[:, 0]]
        if callable(target):
            raise TypeError(
                "ls.saliency needs class targets it can show and change (an int, or a list with "
                "one per sample); for a callable target use ls.attribute."
            )
        if isinstance(target, list):
            if len(target) != n:
                raise ValueError(
                    f"target= has {len(target)} entries for {n} samples; pass one per sample."
                )
            return list(target)
        return [target] * n

    @staticmethod
    def _json_target(t: Any) -> Any:
        if isinstance(t, tuple):
            return [int(v) for v in t]
        return None if t is None else int(t)

    def _attribute(
        self,
        method: str,
        targets: list[Any],
        rows: slice | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> torch.Tensor:
        """The attribution as a display map: (n, h, w) for images, (n, L) for tokens/features."""
        inputs = self._inputs
        tg: Any = targets if all(t is not None for t in targets) else None
        if rows is not None:
            inputs = self._rows(rows)
            tg = tg[rows] if tg is not None else None
        kw = dict(self._method_kw.get(method, self._kw))
        if method == "attention":
            kw.pop("output", None)
        attr = attribute(self._model, inputs, tg, method=method, progress=progress, **kw)
        if isinstance(attr, tuple):
            attr = attr[0]
        a = attr.detach().float().cpu()
        if self._kind in EXTRA_KINDS:
            return display_map(self._kind, a, self._x)
        if self._kind == "image":
            if a.dim() == 4:
                a = a.sum(1)  # channels (Grad-CAM and attention maps have one)
            if a.dim() != 3:
                raise ValueError(
                    f"method {method!r} gave shape {tuple(attr.shape)}, not a map over the image"
                )
        elif a.dim() == 3:
            a = a.sum(-1)  # (N, L, D) when embedding_reduce=None
        return a

    def _rows(self, rows: slice) -> Any:
        if isinstance(self._inputs, (tuple, list)):
            return tuple(
                v[rows] if isinstance(v, torch.Tensor) and v.dim() > 0 else v for v in self._inputs
            )
        return self._inputs[rows]

    # ---- baking ---------------------------------------------------------------------------

    def _image_side(self) -> tuple[int, int]:
        x = self._x
        h, w = int(x.shape[2]), int(x.shape[3])
        per_pixel = x.shape[0] * ((3 if x.shape[1] == 3 else 1) + len(self._maps))
        side = min(MAX_IMAGE_SIDE, max(h, w))
        while side > MIN_IMAGE_SIDE:
            th, tw = fit_shape((h, w), side)
            if per_pixel * th * tw <= self._budget - THUMB_BUDGET:
                break
            side = int(side * 0.8)
        return fit_shape((h, w), max(side, MIN_IMAGE_SIDE))

    def _bake_sample(self, b: int, target: Any) -> dict[str, Any]:
        sample: dict[str, Any] = {"target": self._json_target(target)}
        maps: dict[str, Any] = {}
        if self._kind in EXTRA_KINDS:
            sample.update(bake(self._kind, self._x, self._maps, b, self._budget - THUMB_BUDGET))
            maps = sample.pop("maps")
        elif self._kind == "image":
            side = self._image_side()
            sample["image"] = encode_array(display_image(self._x[b], side))
            for m, a in self._maps.items():
                maps[m] = _coded(block_reduce(a[b], side, agg="mean"))
        else:
            if self._kind == "tokens":
                sample["ids"] = encode_array(self._x[b].detach().cpu().to(torch.int32))
            for m, a in self._maps.items():
                maps[m] = _coded(a[b].numpy().astype(np.float32))
        sample["maps"] = maps
        if self._topk is not None:
            sample["topk"] = {
                "probs": [float(p) for p in self._topk.probs[b]],
                "indices": [int(i) for i in self._topk.indices[b]],
            }
        return sample

    def _bake_all(self, targets: list[Any]) -> list[dict[str, Any]]:
        return [self._bake_sample(b, targets[b]) for b in range(int(self._x.shape[0]))]

    def _attention_for(self, b: int) -> None:
        """Attention weights of sample ``b`` alone (layers x heads x T x S for one sample: all
        samples at once would hold N times that)."""
        if self._attn_batch == b:
            return
        try:
            self._attn = attention_weights(
                self._model,
                self._rows(slice(b, b + 1)),
                forward_kwargs=self._kw.get("forward_kwargs"),
            )
        except ValueError:
            self._attn = None  # a model without attention: no grid
        self._attn_batch = b

    def _layer_list(self) -> list[tuple[str, torch.Tensor]]:
        if not self._attn:
            return []
        return [(k, w) for k, w in self._attn.items() if f"{k}#0" not in self._attn]

    def _bake_attention(self) -> dict[str, Any]:
        layers = self._layer_list()
        if not layers:
            return {}
        b = self._attn_batch
        heads = max(int(w.shape[1]) for _, w in layers)
        # encoder-decoder models mix shapes (self-attention T x T, cross-attention T x S): the
        # thumbnails share the largest one's size
        t = max(int(w.shape[2]) for _, w in layers)
        s = max(int(w.shape[3]) for _, w in layers)
        side = THUMB_SIDE
        while side > 8 and len(layers) * heads * np.prod(fit_shape((t, s), side)) > THUMB_BUDGET:
            side //= 2
        th, tw = fit_shape((t, s), side)
        codes = np.zeros((len(layers), heads, th, tw), dtype=np.uint8)
        for i, (_, w) in enumerate(layers):
            for h in range(int(w.shape[1])):
                img = block_reduce(w[0, h].float(), (th, tw), agg="mean")
                if img.shape != (th, tw):  # a smaller layer: stretched to the shared size
                    img = F.interpolate(torch.from_numpy(img)[None, None], (th, tw))[0, 0].numpy()
                hi = float(np.nanmax(img)) if np.isfinite(img).any() else 1.0
                codes[i, h], _q = quantize_u8(img, 0.0, hi if hi > 0 else 1.0)
        return {
            "layers": [k for k, _ in layers],
            "heads": heads,
            "shape": [t, s],
            "shapes": [[int(w.shape[2]), int(w.shape[3])] for _, w in layers],
            "thumb": [th, tw],
            "codes": encode_array(codes),
            "batch": b,
        }

    @traitlets.observe("methods")
    def _methods_changed(self, change: Any) -> None:
        """New methods from Python (or a linked widget): compute the missing ones at the
        current targets; a bad name or option is shown as the view's error."""
        if not getattr(self, "_ready", False):
            return
        methods = list(change["new"])
        try:
            if not methods:
                raise ValueError(f"methods needs at least one name; valid: {list(METHODS)}.")
            for m in methods:
                if m not in METHODS:
                    raise ValueError(f"unknown method {m!r}; valid methods are {list(METHODS)}.")
            method_kw = _split_options(methods, self._kw)
            old_kw, self._method_kw = self._method_kw, {**self._method_kw, **method_kw}
            targets = self._targets()
            try:
                fresh = {m: self._attribute(m, targets) for m in methods if m not in self._maps}
            except Exception:
                self._method_kw = old_kw
                raise
        except (TypeError, ValueError, RuntimeError) as exc:
            self._error = str(exc)
            return
        self._maps = {m: fresh[m] if m in fresh else self._maps[m] for m in methods}
        self._error = ""
        with self.hold_sync():
            self._info = {**self._info, "methods": methods}
            self._samples = self._bake_all(targets)

    @traitlets.validate("batch")
    def _valid_batch(self, proposal: Any) -> int:
        n = int(self._x.shape[0])
        b = proposal["value"]
        if not 0 <= b < n:
            raise traitlets.TraitError(f"sample {b} is outside 0..{n - 1}; pass 0 to {n - 1}.")
        return b

    @traitlets.observe("batch")
    def _batch_changed(self, _change: Any) -> None:
        self._error = ""
        if self._kind == "tokens" and self._attn is not None:
            self._attention_for(self.batch)
            self._attention = self._bake_attention()
            if self.attention_open:
                self._open_attention()

    @traitlets.observe("attention_open")
    def _attention_open_changed(self, _change: Any) -> None:
        try:
            self._open_attention()
        except (IndexError, ValueError) as exc:
            self._error = str(exc)

    def _open_attention(self) -> None:
        if not self.attention_open:
            return
        layers = self._layer_list()
        if len(self.attention_open) != 2 or not layers:
            raise ValueError("attention_open takes [layer index, head] of a model with attention")
        li, h = self.attention_open
        if not 0 <= li < len(layers):
            raise IndexError(f"attention layer {li} is outside 0..{len(layers) - 1}")
        path, w = layers[li]
        if not 0 <= h < w.shape[1]:
            raise IndexError(f"head {h} is outside 0..{int(w.shape[1]) - 1} of {path!r}")
        self._error = ""
        self.title = f"attention {path} head {h} (sample {self._attn_batch}): queries x keys"
        tokens = self._sample_tokens(self._attn_batch)
        n = int(w.shape[-1])
        names = tokens if tokens is not None and len(tokens) == n else None
        with self.hold_sync():
            self.axis_labels = {"rows": names, "cols": names} if names else {}
            self.data = w[0, h]

    # ---- requests -------------------------------------------------------------------------

    @request("retarget")
    def _retarget(self, args: dict[str, Any]) -> dict[str, Any]:
        """Recompute every method for sample ``batch`` at class ``target``; progress is sent as
        ``{"ls_progress": 1, "id", "method", "fraction"}`` messages while it runs."""
        n = int(self._x.shape[0])
        b = int(args.get("batch", self.batch))
        if not 0 <= b < n:
            raise IndexError(f"sample {b} is outside 0..{n - 1}")
        raw = args.get("target")
        if isinstance(raw, bool) or not isinstance(raw, (int, list)):
            raise TypeError(f"target must be a class index; got {raw!r}")
        new_t: Any = tuple(int(v) for v in raw) if isinstance(raw, list) else int(raw)
        classes = self._n_classes
        if isinstance(new_t, int) and classes is not None and not 0 <= new_t < classes:
            raise ValueError(f"target {new_t} is out of range: the model has {classes} classes")
        rid = args.get("_id")
        methods = list(self.methods)
        targets = [t if i != b else new_t for i, t in enumerate(self._targets())]
        last = [0.0]

        def progress_for(i: int) -> Callable[[float], None]:
            def report(fraction: float) -> None:
                now = time.monotonic()
                if now - last[0] < PROGRESS_INTERVAL and fraction < 1.0:
                    return
                last[0] = now
                self.send(
                    {
                        "ls_progress": 1,
                        "id": rid,
                        "method": methods[i],
                        "fraction": (i + float(fraction)) / len(methods),
                    }
                )

            return report

        fresh = {
            m: self._attribute(m, targets, slice(b, b + 1), progress_for(i))
            for i, m in enumerate(methods)
        }
        for m, a in fresh.items():
            self._maps[m][b] = a[0]
        self._chosen.add(b)
        samples = list(self._samples)
        samples[b] = self._bake_sample(b, new_t)
        with self.hold_sync():
            self.target = [self._json_target(t) for t in targets]
            self._samples = samples
        return {"batch": b, "target": self._json_target(new_t)}

    def recompute(self) -> None:
        """The model changed (it trained): predict again and recompute every method; a sample
        whose class was not chosen (given as ``target=`` or picked in the view) follows the new
        prediction. A failure is the view's error, the old maps stay."""
        try:
            topk = self._predict()
            targets = self._targets()
            if topk is not None:
                predicted = [int(v) for v in topk.indices[:, 0]]
                targets = [t if b in self._chosen else predicted[b] for b, t in enumerate(targets)]
            maps = {m: self._attribute(m, targets) for m in self.methods}
        except (TypeError, ValueError, RuntimeError) as exc:
            self._error = str(exc)
            return
        self._topk, self._maps = topk, maps
        if self._kind == "tokens":
            self._attn_batch = -1  # the weights changed: not the cached sample's attention
            self._attention_for(self.batch)
        self._error = ""
        with self.hold_sync():
            self.target = [self._json_target(t) for t in targets]
            self._samples = self._bake_all(targets)
            if self._kind == "tokens":
                self._attention = self._bake_attention()

    def _targets(self) -> list[Any]:
        return [tuple(t) if isinstance(t, list) else t for t in self.target]

    def show_input(self, x: torch.Tensor, label: str = "an added input") -> int:
        """Show the saliency of one more input ``x`` (one sample shaped like a row of the
        inputs, e.g. a dataset sample picked in the workspace's projection): computed for it
        alone, at its predicted class, kept as the row after the inputs (replacing an input
        shown this way before) and shown; ``label`` names it beside the sample box (the row
        number alone would read as one of the inputs). Returns its row.

        >>> view.show_input(dataset[123][0])      # doctest: +SKIP
        """
        n = self._n_inputs
        if not isinstance(self._inputs, torch.Tensor):
            raise TypeError("show_input needs a view made on one input tensor")
        if self._kind in EXTRA_KINDS:
            raise ValueError(f"show_input takes image, token or feature inputs, not {self._kind}")
        x = torch.as_tensor(x).to(device=self._x.device, dtype=self._x.dtype)
        if tuple(x.shape) != tuple(self._x.shape[1:]):
            raise ValueError(
                f"the input has shape {tuple(x.shape)}; this view's samples have shape "
                f"{tuple(self._x.shape[1:])}"
            )
        rows = torch.cat([self._x[:n], x[None]])
        old = self._x, self._inputs, self._topk, self._maps
        self._x = self._inputs = rows
        try:
            self._topk = self._predict()
            targets = self._targets()[:n]
            targets.append(int(self._topk.indices[n, 0]) if self._topk is not None else None)
            one = slice(n, n + 1)
            self._maps = {
                m: torch.cat([a[:n], self._attribute(m, targets, rows=one)])
                for m, a in self._maps.items()
            }
            extra = self._bake_sample(n, targets[n])
        except Exception:
            self._x, self._inputs, self._topk, self._maps = old
            raise
        self._error = ""
        with self.hold_sync():
            self.target = [self._json_target(t) for t in targets]
            self._info = {**self._info, "n": n + 1, "shape": list(rows.shape), "extra": label}
            self._samples = [*self._samples[:n], extra]
            self.batch = n
        return n

    def _classes_count(self) -> int | None:
        if self._topk is None:
            return None
        one = self._rows(slice(0, 1))
        args = one if isinstance(one, tuple) else (one,)
        with preserved(self._model), torch.no_grad():
            self._model.eval()
            out = select_output(
                self._model(*args, **(self._kw.get("forward_kwargs") or {})),
                self._kw.get("output"),
            )
        return int(out.shape[-1])

    def _sample_tokens(self, b: int) -> list[str] | None:
        """The token strings of sample ``b`` (``tokens=`` is one list, or one list per sample)."""
        t = self.tokens
        if not t:
            return None
        return list(t[b]) if isinstance(t[0], list) else list(t)

    def _check_tokens(self, tokens: Any, x: torch.Tensor, kind: str) -> list[Any] | None:
        if tokens is None:
            return None
        if kind in ("image", "signal", "video"):
            raise ValueError(f"tokens= is for token-id, feature or sequence inputs, not {kind}s")
        if isinstance(tokens, str) or not isinstance(tokens, Sequence):
            raise TypeError(
                f"tokens= must be a list of strings (one per position) or one such list per "
                f"sample; got {type(tokens).__name__}."
            )
        length = int(x.shape[1])
        if tokens and not isinstance(tokens[0], str) and isinstance(tokens[0], Sequence):
            if len(tokens) != x.shape[0] or any(len(t) != length for t in tokens):
                raise ValueError(
                    f"tokens= per sample must be {int(x.shape[0])} lists of {length} strings"
                )
            return [[str(s) for s in t] for t in tokens]
        if len(tokens) != length:
            raise ValueError(
                f"tokens= has {len(tokens)} strings for {length} positions; pass one per position."
            )
        return [str(s) for s in tokens]


_input_kind = input_kind


def _model_keywords(model: nn.Module, methods: list[str], kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with the model's own keyword arguments (``attention_mask=``: no method takes it,
    the model's ``forward`` names it) moved into ``forward_kwargs``."""
    taken = set(_COMMON).union(*(method_keywords(m) for m in methods))
    rest, model_kw = split_model_kwargs(model, kw, taken)
    if model_kw:
        rest["forward_kwargs"] = {**(kw.get("forward_kwargs") or {}), **model_kw}
    return rest


def saliency(
    model: nn.Module,
    inputs: Any,
    target: Any = None,
    method: str | Sequence[str] = "integrated_gradients",
    **kw: Any,
) -> SaliencyView:
    """Attributions of ``model``'s output for ``target`` on ``inputs``, shown over the input.

    ``method``: a method name of ``ls.attribute`` or a list of them (shown side by side).
    ``target``: a class index, a list with one per sample, or None (the predicted class).
    ``labels=``: class names for the top-k list; ``tokens=``: strings for token positions (one
    list, or one per sample); ``topk=`` (5); ``budget=`` bytes baked for export (2 MiB).
    Other keywords go to ``ls.attribute`` for every method (``n_steps=``, ``embedding=``,
    ``output=``, ``forward_kwargs=``, ...); the model's own keyword arguments
    (``attention_mask=``, ``decoder_input_ids=``) go to every forward pass.

    Inputs and how they are shown: images (N, C, H, W) with the map over them; token ids (N, L)
    and features (N, D) as coloured tokens; sequences (N, L, D) as a step x feature strip with
    per-step totals; signals (N, C, L) as the waveform (one channel) or the channels x time image
    (a spectrogram) with the attribution over it; video (N, C, T, H, W) frame by frame with a
    scrubber (``view.frame``). (N, L, D) and (N, C, L) have the same rank: a model with an
    ``nn.Conv1d`` on ``C`` channels is taken as a signal model; ``input_kind="sequence"`` or
    ``"signal"`` says otherwise.

    Computes every method once at call time (bad input raises here); clicking a class in the view
    recomputes that sample. Peak memory: that of ``ls.attribute`` for the slowest method, plus
    the display maps (N x H x W floats per method) and, for token inputs, one forward's
    attention weights of the shown sample (computed again when the sample changes).

    >>> view = ls.saliency(cnn, images, method=["gradient", "integrated_gradients"])  # doctest: +SKIP
    >>> ls.saliency(lm, ids, tokens=["the", "cat", "sat"], embedding="embed")           # doctest: +SKIP
    """
    return SaliencyView(model, inputs, target, method, **kw)
