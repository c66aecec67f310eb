"""``ls.projection(model, data, layer=...)``: a layer's per-sample representations in 2-D
(``ProjectionView``).

The kernel runs ``inspect.collect`` once per layer and projects in ``inspect.project``: PCA at
once; UMAP / t-SNE on a background thread that reports progress and replaces the PCA picture
when done. Everything the front end needs to repaint is pushed with the points: coordinates
(re-centred, float32), every colouring (label, prediction, correct, loss, probability, the
user's arrays), and with ``recorder=`` the aligned coordinates of every recorded epoch, so
changing the colouring, toggling classes and scrubbing epochs never wait on the kernel. Hovering
asks the kernel for that one sample's input; an exported page uses inputs baked within a byte
budget and says how many were left out. ``selected`` (dataset sample indices) is two-way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import traitlets
from torch import nn

from ..inspect.batches import DatasetError, dataset_length
from ..inspect.collect import Collected, collect_into
from ..inspect.modules import check_module, find_module
from ..inspect.project import Progress, Projector, check_method, finite_rows, fit, recentre
from ..inspect.unitstats import as_units, unit_layout
from ..wire.codec import encode_array
from .base import BaseView, request
from .bundles import bundle
from .samples import Decode, bake_samples, sample_payload

THUMB_BUDGET = 512 * 1024
PROGRESS_EVERY_S = 0.25
BUILTIN_COLOURS = ("label", "prediction", "correct", "loss", "probability")


def _payload(a: np.ndarray) -> dict[str, Any]:
    return encode_array(np.ascontiguousarray(a))


def _categorical(values: np.ndarray, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Integer codes (uint8 / int16 / int32, -1 unknown) and class names, for the legend."""
    values = np.asarray(values)
    if values.dtype.kind in "iub" and values.size and values.min() >= 0 and values.max() < 65536:
        # small non-negative integers (class ids): a count and a lookup, no sort of n values
        classes = np.flatnonzero(np.bincount(values.astype(np.int64, copy=False)))
        lookup = np.zeros(int(classes[-1]) + 1, np.int32)
        lookup[classes] = np.arange(len(classes))
        codes = lookup[values]
    else:
        classes = np.unique(values)
        codes = np.searchsorted(classes, values)
    dtype = np.uint8 if len(classes) < 255 else np.int16 if len(classes) < 32767 else np.int32
    labels = [
        str(names[int(c)]) if names is not None and 0 <= int(c) < len(names) else str(c)
        for c in classes
    ]
    return {"kind": "categorical", "values": _payload(codes.astype(dtype)), "classes": labels}


def _continuous(values: np.ndarray) -> dict[str, Any]:
    v = np.asarray(values, np.float32)
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return {"kind": "continuous", "values": _payload(v.astype(np.float16)), "range": [lo, hi]}


def _default_layer(model: nn.Module) -> str:
    leaves = [p for p, m in model.named_modules() if p and not list(m.children())]
    if not leaves:
        return ""
    return leaves[-2] if len(leaves) > 1 else leaves[-1]


def _pooled_epoch(array: np.ndarray, module: nn.Module, pool: str | None) -> np.ndarray:
    t = torch.from_numpy(np.asarray(array, np.float32))
    v = as_units(t, unit_layout(module, tuple(t.shape)))
    if pool == "max":
        return v.amax(2).numpy()
    if pool is None:
        return v.flatten(1).numpy()
    return v.mean(2).numpy()


def _start_at(xy: np.ndarray) -> np.ndarray:
    """Start positions for ``Projector.follow``: points without one (NaN at the neighbouring
    epoch) start at the median of the others."""
    xy = np.array(xy, np.float64)
    bad = ~np.isfinite(xy).all(1)
    if bad.any():
        xy[bad] = np.median(xy[~bad], 0) if (~bad).any() else 0.0
    return xy


class ProjectionView(BaseView):
    """Per-sample representations of ``layer`` in 2-D; ``selected`` holds sample indices."""

    _esm = bundle("projection")

    layer = traitlets.Unicode("").tag(sync=True)
    method = traitlets.Unicode("pca").tag(sync=True)
    color_by = traitlets.Unicode("label").tag(sync=True)
    selected = traitlets.List(traitlets.Int()).tag(sync=True)
    hidden = traitlets.List(traitlets.Unicode()).tag(sync=True)
    epoch = traitlets.Int(-1).tag(sync=True)
    height = traitlets.Int(420).tag(sync=True)
    point_size = traitlets.Float(0.0).tag(sync=True)
    # {"layer", "method", "xy", "index", "n_total", "n_drawn", "centre", "scale", "explained"}
    _points = traitlets.Dict().tag(sync=True)
    # name -> {"kind": "categorical"|"continuous", "values", "classes" | "range"}, point order
    _arrays = traitlets.Dict().tag(sync=True)
    # {"state": ""|"running"|"done"|"error", "method", "progress", "text"}
    _status = traitlets.Dict().tag(sync=True)
    # over training: {"epochs": [...], "xy": (E, n, 2) float32, "centre", "scale", "method"}
    _frames = traitlets.Dict().tag(sync=True)
    # inputs baked for hovering offline (see widgets/samples.py)
    _thumbs = traitlets.Dict().tag(sync=True)
    _notes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    _painted = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        model: nn.Module | None,
        data: Any = None,
        *,
        layer: str | None = None,
        labels: Any = None,
        method: str = "pca",
        color_by: str | Any = "label",
        arrays: Mapping[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        recorder: Any = None,
        decode: Decode = None,
        pool: str | None = "mean",
        batch_size: int = 256,
        max_bytes: int | str = 256 * 2**20,
        progress: bool = True,
        wait: bool = False,
        bake_budget: int = THUMB_BUDGET,
        **kwargs: Any,
    ) -> None:
        check_method(method)  # a missing package fails here, before any work
        self._ready = False
        self._model = check_module(model) if model is not None else None
        if self._model is None and not isinstance(data, Collected):
            raise TypeError(
                "projection needs a model (torch.nn.Module) and data, or a Collected from "
                "ls.inspect.collect as data"
            )
        self._class_names = list(class_names) if class_names is not None else None
        self._decode = decode
        self._pool = pool
        self._collect_kw = {"batch_size": batch_size, "max_bytes": max_bytes, "progress": progress}
        self._recorder = recorder
        self._bake_budget = bake_budget
        self._cache: dict[str, Collected] = {}
        self._worker: threading.Thread | None = None
        self._generation = 0
        self._user_arrays: dict[str, np.ndarray] = {}
        if recorder is not None and data is None:
            args = getattr(recorder, "_probe_args", None)
            if not args:
                raise ValueError(
                    "recorder= needs a Recorder made with probe=inputs (the probe set it records)"
                )
            data = args[0]
        if data is None:
            raise TypeError(
                "projection needs data: a tensor, (inputs, labels), a DataLoader, or an iterable"
            )
        self._data = data
        self._labels_arg = labels
        if isinstance(data, Collected):
            self._collected_given: Collected | None = data
            path = layer if layer is not None else next(iter(data.layers))
        else:
            self._collected_given = None
            assert self._model is not None
            path = layer if layer is not None else _default_layer(self._model)
            find_module(self._model, path)
            n = dataset_length(data)
            if labels is not None and n is not None and len(labels) != n:
                raise DatasetError(
                    f"labels have {len(labels)} entries but the data has {n} samples; pass one "
                    "label per sample, in the same order"
                )
        if not isinstance(color_by, str):
            self._user_arrays["custom"] = np.asarray(color_by)
            color_by = "custom"
        for name, values in (arrays or {}).items():
            self._user_arrays[str(name)] = np.asarray(values)
        super().__init__(color_by=color_by, **kwargs)
        self._wait = wait
        self.method = method
        self.layer = path
        self._ready = True
        self._refresh()

    # -- data ------------------------------------------------------------------------------------

    def collected(self, layer: str | None = None) -> Collected:
        """The ``Collected`` of ``layer`` (default: the shown one), computed once per layer."""
        path = self.layer if layer is None else layer
        if self._collected_given is not None:
            if path not in self._collected_given.layers:
                raise KeyError(
                    f"layer {path!r} was not collected; this view was given layers "
                    f"{list(self._collected_given.layers)}"
                )
            return self._collected_given
        if path not in self._cache:
            self.prefetch([path])
        return self._cache[path]

    def prefetch(self, layers: Sequence[str]) -> None:
        """The ``layers`` not collected yet, in one pass over the data (``collect_into``): the
        workspace saving every layer's panel pays one pass, not one per layer."""
        if self._collected_given is not None:
            return
        assert self._model is not None
        collect_into(
            self._cache,
            self._model,
            self._data,
            layers,
            labels=self._labels_arg,
            pool=self._pool,
            **self._collect_kw,
        )

    def _check_lengths(self, col: Collected) -> None:
        for name, values in self._user_arrays.items():
            if len(values) != col.n:
                raise DatasetError(
                    f"the array {name!r} has {len(values)} entries but the data has {col.n} "
                    "samples; pass one value per sample"
                )

    def recollect(self) -> None:
        """The model changed (it trained): forget the passes over the data and show the layer
        again from a new one. A ``Collected`` given as data stays: there is nothing to re-read."""
        if self._collected_given is not None:
            return
        self._cache.clear()
        try:
            self._refresh()
        except (KeyError, ValueError, ImportError, RuntimeError) as exc:
            self._error = str(exc)

    @traitlets.observe("layer", "method")
    def _selection_changed(self, change: Any) -> None:
        if change["name"] == "method":
            check_method(change["new"])
        if not getattr(self, "_ready", False):
            return  # still in __init__
        try:
            self._refresh()
        except (KeyError, ValueError, ImportError, RuntimeError) as exc:
            self._error = str(exc)

    def _refresh(self) -> None:
        self._generation += 1
        col = self.collected()
        self._check_lengths(col)
        data = col[self.layer]
        reps = data.reps
        ok = finite_rows(reps)
        index = col.rep_index[ok]
        notes = list(col.notes)
        if (~ok).any():
            notes.append(
                f"{int((~ok).sum()):,} samples have NaN/Inf in {self.layer!r}'s representation "
                "and cannot be placed: they are not drawn"
            )
        if len(index) < 2:
            raise ValueError(
                f"only {len(index)} samples of {self.layer!r} have a finite representation: "
                "nothing to project"
            )
        self._index = index
        self._reps = reps[ok]
        pca = fit(self._reps, "pca")
        with self.hold_sync():
            self._error = ""
            self._notes = notes
            self._set_points(col, pca.embedding, "pca", getattr(pca, "explained", None))
            self._arrays = self._colourings(col, index)
            self._thumbs = self._bake(col, index)
            self._frames = self._over_training(col, "pca")[0] if self._recorder is not None else {}
            self._status = {"state": "done", "method": "pca", "progress": 1.0, "text": ""}
        if self.method != "pca":
            self._start(self.method, self._reps, col, self._generation)

    def _set_points(
        self, col: Collected, embedding: np.ndarray, method: str, explained: Any = None
    ) -> None:
        xy, centre, scale = recentre(embedding)
        index = self._index
        dense = len(index) == col.n and bool((index == np.arange(col.n)).all())
        self._points = {
            "layer": self.layer,
            "method": method,
            "xy": _payload(xy),
            "index": None if dense else _payload(index.astype(np.int32)),
            "n_total": col.n,
            "n_drawn": len(index),
            "centre": centre,
            "scale": scale,
            "explained": explained,
        }

    def _start(self, method: str, reps: np.ndarray, col: Collected, generation: int) -> None:
        self._status = {
            "state": "running",
            "method": method,
            "progress": 0.0,
            "text": f"{method} starting",
        }
        last = [0.0]

        def progress(fraction: float, words: str) -> None:
            now = time.monotonic()
            if generation == self._generation and (
                now - last[0] > PROGRESS_EVERY_S or fraction >= 1
            ):
                last[0] = now
                self._status = {
                    "state": "running",
                    "method": method,
                    "progress": fraction,
                    "text": words,
                }

        def work() -> None:
            try:
                if self._recorder is not None:
                    # over training: fit the last epoch, place every other epoch (and the live
                    # picture) into that embedding, so points move smoothly when scrubbing
                    frames, ref_rows, ref, xy = self._over_training(col, method, progress)
                    # the live picture in the last epoch's embedding: that embedding itself
                    # when the model has not changed since (equal up to the float16 that
                    # collect may store), else placed into it
                    same = reps.shape == ref_rows.shape and np.allclose(
                        reps, ref_rows, rtol=1e-3, atol=1e-3 * float(np.abs(ref_rows).max())
                    )
                    start = _start_at(xy[-1])
                    live = ref.embedding if same else ref.follow(reps, start)
                else:
                    proj = fit(reps, method, progress)
                    live = proj.embedding
            except Exception as exc:  # shown in the view, never a silent blank
                if generation == self._generation:
                    self._status = {
                        "state": "error",
                        "method": method,
                        "progress": 0.0,
                        "text": f"{method} failed: {type(exc).__name__}: {exc}; showing PCA",
                    }
                return
            if generation != self._generation:
                return  # a newer layer/method replaced this request
            with self.hold_sync():
                self._set_points(col, live, method)
                if self._recorder is not None:
                    self._frames = frames
                self._status = {"state": "done", "method": method, "progress": 1.0, "text": ""}

        if self._wait:
            work()
            return
        self._worker = threading.Thread(target=work, name=f"layerscope-{method}", daemon=True)
        self._worker.start()

    def wait(self, timeout: float | None = None) -> ProjectionView:
        """Block until a background UMAP/t-SNE is done (for scripts and tests)."""
        if self._worker is not None:
            self._worker.join(timeout)
        return self

    def _colourings(self, col: Collected, index: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if col.labels is not None:
            out["label"] = (
                _categorical(col.labels[index], self._class_names)
                if col.labels.ndim == 1 and not np.issubdtype(col.labels.dtype, np.floating)
                else _continuous(col.labels[index].reshape(len(index), -1)[:, 0])
            )
        if col.predictions is not None:
            out["prediction"] = _categorical(col.predictions[index], self._class_names)
            out["probability"] = _continuous(col.probability[index])  # type: ignore[index]
        if col.correct is not None:
            c = np.where(col.correct[index], 0, 1)
            out["correct"] = {
                "kind": "categorical",
                "values": _payload(c.astype(np.uint8)),
                "classes": ["correct", "wrong"],
            }
        if col.loss is not None:
            out["loss"] = _continuous(col.loss[index])
        for name, values in self._user_arrays.items():
            v = values[index]
            out[name] = (
                _categorical(v)
                if v.dtype.kind in "iubUSO" and len(np.unique(v)) <= 64
                else _continuous(v.astype(np.float32))
            )
        if self.color_by not in out and self.color_by not in BUILTIN_COLOURS:
            raise ValueError(
                f"color_by={self.color_by!r} is not one of the colourings: {sorted(out)}; pass "
                "an array, or arrays={{name: values}}"
            )
        return out

    def _bake(self, col: Collected, index: np.ndarray) -> dict[str, Any]:
        if col.data is None:
            return {"kind": "none", "index": [], "left_out": len(index)}

        baked = bake_samples(col.samples, index, self._bake_budget, self._decode)  # type: ignore[arg-type]
        # sample indices as one int32 buffer (a list of 100k+ ints costs the kernel and the
        # page far more as JSON), or {"range": k} when they are 0..k-1 (every sample drawn)
        index = np.asarray(baked["index"], np.int32)
        dense = (
            bool(len(index))
            and index[-1] == len(index) - 1
            and bool((index == np.arange(len(index))).all())
        )
        baked["index"] = {"range": len(index)} if dense else _payload(index)
        return baked

    def _over_training(
        self, col: Collected, method: str, progress: Progress | None = None
    ) -> tuple[dict[str, Any], np.ndarray, Projector, np.ndarray]:
        """Every recorded epoch's points in one picture: ``method`` fitted on the last epoch
        (the reference), the other epochs placed by ``Projector.follow`` (PCA: the same basis;
        UMAP and t-SNE: each epoch's own neighbour graph, optimised briefly from the positions
        of the epoch after it). Returns the frames' payload, the reference rows and fit, and
        the frames (epochs, points, 2) in data units."""
        rec = self._recorder
        assert self._model is not None
        module = find_module(self._model, self.layer)
        epochs = list(rec.activation_epochs(self.layer)) if self.layer in rec.layers else []
        if not epochs:
            raise ValueError(
                f"the recorder has no activations of {self.layer!r}: make it with "
                f"ls.Recorder(model, probe=x, layers=[{self.layer!r}, ...])"
            )
        reps = []
        for e in epochs:
            snap = rec.activation(self.layer, e, exact=True)
            reps.append(_pooled_epoch(snap.array, module, self._pool))
        if reps[0].shape[0] != col.n:
            raise ValueError(
                f"the recorder's probe has {reps[0].shape[0]} samples but the data has {col.n}"
            )
        # The points of the live picture, in its order; a row with NaN/Inf at some epoch is
        # NaN there (not drawn at that epoch, and counted in the note).
        rows = [r[self._index] for r in reps]
        ok = [finite_rows(r) for r in rows]
        report = progress or (lambda f, words: None)
        name = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}[method]
        # the fit takes most of the time: 80 % of the bar, the placements the rest
        ref = fit(rows[-1][ok[-1]], method, lambda f, words: report(0.8 * f, words))
        frames = np.full((len(epochs), len(self._index), 2), np.nan, np.float64)
        frames[-1, ok[-1]] = ref.embedding
        for k in range(len(epochs) - 2, -1, -1):
            # back from the reference, each epoch from the positions of the one after it
            report(
                0.8 + 0.2 * (len(epochs) - 2 - k) / len(epochs),
                f"{name}: epoch {epochs[k]} from epoch {epochs[k + 1]}'s positions "
                f"({len(epochs) - 1 - k} of {len(epochs) - 1})",
            )
            if ok[k].any():
                frames[k, ok[k]] = ref.follow(rows[k][ok[k]], _start_at(frames[k + 1][ok[k]]))
        finite = np.isfinite(frames[..., 0])
        _, centre, scale = recentre(frames[finite])
        flat = ((frames - np.asarray(centre)) / scale).astype(np.float32)
        missing = int((~finite).sum())
        if missing:
            note = f"{missing:,} (epoch, sample) points have NaN/Inf representations: not drawn"
            if note not in self._notes:
                self._notes = [*self._notes, note]
        how = (
            f"every epoch in epoch {epochs[-1]}'s basis"
            if method == "pca"
            else f"fitted on epoch {epochs[-1]}; each earlier epoch starts from the next one's "
            "positions"
        )
        payload = {
            "epochs": list(epochs),
            "xy": _payload(flat),
            "centre": centre,
            "scale": scale,
            "method": f"{method} ({how})",
        }
        return payload, rows[-1][ok[-1]], ref, frames

    # -- requests --------------------------------------------------------------------------------

    @request("sample")
    def _sample(self, args: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        """One sample for the hover card: its input, label, prediction and probability, loss."""
        col = self.collected()
        i = int(args["index"])
        if not 0 <= i < col.n:
            raise IndexError(f"sample index {i} is outside 0..{col.n - 1}")
        info: dict[str, Any] = {"index": i}
        for name, arr in (
            ("label", col.labels),
            ("prediction", col.predictions),
            ("probability", col.probability),
            ("loss", col.loss),
        ):
            if arr is not None and arr.ndim == 1:
                v = arr[i]
                info[name] = float(v) if np.issubdtype(arr.dtype, np.floating) else int(v)
        names = self._class_names
        if names is not None:
            for k in ("label", "prediction"):
                if k in info and 0 <= info[k] < len(names):
                    info[k + "_name"] = str(names[info[k]])
        x = col.sample(i)
        if x is None:
            info["input"] = {
                "kind": "none",
                "why": "the data is an iterable: inputs cannot be fetched again",
            }
            return info, []
        content, buffers = sample_payload(x, self._decode)
        info["input"] = content
        return info, buffers


def projection(
    model: nn.Module | None,
    data: Any = None,
    layer: str | None = None,
    labels: Any = None,
    method: str = "pca",
    color_by: str | Any = "label",
    **kwargs: Any,
) -> ProjectionView:
    """A scatter of ``layer``'s per-sample representations of ``data`` in 2-D.

    ``method``: "pca" (at once), "umap" (umap-learn) or "tsne" (openTSNE), run in the background
    with PCA shown meanwhile. ``color_by``: "label", "prediction", "correct", "loss",
    "probability", or an array with one value per sample (more: ``arrays={name: values}``).
    ``recorder=rec`` (a Recorder with ``probe=``) adds its epochs to scrub, aligned: the last
    epoch's PCA basis, or for UMAP / t-SNE each earlier epoch optimised briefly from the
    positions of the epoch after it (``Projector.follow``). ``selected`` holds the selected sample indices (set it to highlight samples).
    Other keywords: ``class_names``, ``decode`` (token id -> text), ``pool``, ``batch_size``,
    ``max_bytes`` (see ``ls.inspect.collect``), ``height``, ``bake_budget`` (bytes of hover
    inputs saved with the view for an exported page; 512 KB).

    >>> view = ls.projection(model, (x, y), layer="classifier.2", method="umap")   # doctest: +SKIP
    >>> view.selected                                                              # doctest: +SKIP
    """
    return ProjectionView(
        model, data, layer=layer, labels=labels, method=method, color_by=color_by, **kwargs
    )
