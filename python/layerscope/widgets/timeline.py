"""``ls.timeline(rec)``: a recorded training run as curves and an epoch scrubber (``TimelineView``).

The view is an ipywidgets ``VBox``: bqplot figures for the loss (x: step) and the per-epoch
metrics (x: epoch), and a ``ScrubberView`` anywidget with the epoch slider, play/pause, speed, the
layer picker and, for the selected layer, its weight heatmap, its weight histograms over epochs,
its activation on the probe batch and its gradient-norm and update-ratio curves.

Scrubbing never asks the kernel: when a layer is selected, the frames of every epoch are sent in
one message (``frames``: uint8 codes at screen resolution within ``budget`` bytes), so dragging
the slider repaints from memory in the browser, also while a training loop holds the kernel and
in an exported page (the same trait is the baked state). A live ``Recorder`` pushes each new
epoch as it is recorded (``rec.on_epoch``): while the colour ranges hold (they are rounded
outwards, so they grow now and then), only the new epochs' rows go (``frames_tail``, joined to
``frames`` in the browser), not every epoch's frames again. A store path or URL
(``ls.timeline("runs/exp1")``) is opened with ``follow=True``, so the view grows as another
process writes epochs (pushed from the poller's thread through the comm; closing the view stops
the poller). The scrub position is kept: after a scrub to an older epoch the view stays there
while new epochs extend the slider; the "follow latest" box (``view.scrubber.follow``) turns
following back on.

>>> view = ls.timeline(rec)                       # doctest: +SKIP
>>> traitlets.link((graph, "selected"), (view, "layer"))   # doctest: +SKIP
>>> graph.overlay = layer_change_overlay(rec, 0, 9)        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import itertools
import math
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
import traitlets

from ..record import History, RecordedRun, ThinnedError, parse_budget
from ..wire.codec import payload_serialization
from ..wire.quantize import nice_range, quantize_u8
from ..wire.tiles import block_reduce, fit_budget
from .axes import axis_format, integer_ticks
from .base import BaseView
from .bundles import bundle

# Longest side of a frame: the panel's size on screen (a frame is never finer than the tensor).
FRAME_MAX_SIDE = 256
# Bytes of frames in the synced state by default: what is pushed ahead of a drag and what a saved
# notebook or exported page holds (all epochs of the selected layer).
DEFAULT_BUDGET = "8MB"
# Points of a per-step curve sent to the browser (bucket means beyond it).
CURVE_POINTS = 1000
# What an empty chart says instead of drawing a made-up point.
NO_LOSS = "loss: none recorded yet (rec.step(loss=...))"
NO_METRICS = "metrics: none recorded yet (rec.epoch(val_acc=...))"


def _as_2d(a: np.ndarray) -> torch.Tensor:
    """A snapshot as the 2-D image the views show: ``[shape[0], prod(shape[1:])]`` (1-D: one row).

    The Recorder's reduced snapshots are already such images, so exact and reduced epochs match.
    """
    a = np.asarray(a, dtype=np.float32)
    # Snapshots read from a store are read-only memory maps: torch wants writable memory.
    t = torch.from_numpy(a if a.flags.writeable else a.copy())
    return t.reshape(_shape2d(a.shape))


def downsample(y: np.ndarray, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a per-step series with at most ``points`` points: bucket means over steps
    (NaN where a bucket has no value), ``x`` the bucket's mean step.

    >>> x, y = downsample(np.arange(10.0), 5)
    >>> x.tolist(), y.tolist()
    ([0.5, 2.5, 4.5, 6.5, 8.5], [0.5, 2.5, 4.5, 6.5, 8.5])
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n <= points:
        return np.arange(n, dtype=np.float64), y
    edges = np.linspace(0, n, points + 1).astype(np.int64)
    xs = (edges[:-1] + edges[1:] - 1) / 2.0
    finite = np.isfinite(y)
    sums = np.add.reduceat(np.where(finite, y, 0.0), edges[:-1])
    counts = np.add.reduceat(finite.astype(np.int64), edges[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        ys = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return xs, ys


def layer_change_overlay(
    rec: History, a: int | None = None, b: int | None = None
) -> dict[str, float]:
    """Per module path: relative weight change ‖W_b − W_a‖ / ‖W_a‖ between epochs ``a`` and ``b``
    (defaults: the last two), for ``GraphView.overlay``.

    >>> g = ls.graph(model, x)                                # doctest: +SKIP
    >>> g.overlay = layer_change_overlay(rec, 0, rec.epochs[-1])   # doctest: +SKIP
    """
    if not isinstance(rec, History):
        raise TypeError(
            f"layer_change_overlay needs an ls.Recorder or a Recorder.open(...) run; got {type(rec).__name__}"
        )
    return dict(rec.layer_change(a, b))


def clamp_epoch(epochs: list[int], value: int) -> int:
    """``value`` if it is a recorded epoch, else the nearest recorded one, with a warning that
    says so (an epoch that was never recorded is never accepted silently).

    >>> clamp_epoch([0, 1, 2], 1)
    1
    """
    if value in epochs or (not epochs and value == 0):
        return value
    if not epochs:
        warnings.warn(
            f"epoch {value} is not recorded: no epoch is recorded yet (call rec.epoch()); showing 0",
            stacklevel=4,
        )
        return 0
    nearest = min(epochs, key=lambda e: (abs(e - value), e))
    warnings.warn(
        f"epoch {value} is not recorded (recorded: {epochs[0]}..{epochs[-1]}, {len(epochs)} epochs); "
        f"showing epoch {nearest}",
        stacklevel=4,
    )
    return nearest


def _locked(method: Callable[..., None]) -> Callable[..., None]:
    """Run a ``TimelineView`` handler under the view's lock: a followed run pushes epochs from
    its poller's thread (a live Recorder from its training thread) while the kernel's thread
    handles the user's clicks. Two pushes at once broke ipywidgets' sync ("Set changed size
    during iteration"), and a push could pair one layer's name with another's frames."""

    @functools.wraps(method)
    def run(self: TimelineView, *args: Any) -> None:
        with self._lock:
            method(self, *args)

    return run


def _shape2d(shape: tuple[int, ...]) -> tuple[int, int]:
    """The 2-D image shape of an array of ``shape`` (as ``_as_2d`` makes it)."""
    if len(shape) >= 2:
        return shape[0], math.prod(shape[1:])
    return 1, math.prod(shape)


def _row_ranges(frames: np.ndarray) -> np.ndarray:
    """``[mins, maxs]`` of each frame's finite values (inf and -inf where there are none)."""
    if not len(frames):
        return np.zeros((2, 0), np.float64)
    flat = frames.reshape(len(frames), -1)
    finite = np.isfinite(flat)
    lo = np.where(finite, flat, np.inf).min(axis=1)
    hi = np.where(finite, flat, -np.inf).max(axis=1)
    return np.stack([lo, hi]).astype(np.float64)


def _modules(rec: History) -> list[str]:
    """Module paths that own recorded parameters, in order of first appearance."""
    return list(dict.fromkeys(n.rpartition(".")[0] for n in rec.parameters))


def _weight_of(rec: History, layer: str) -> str | None:
    """The parameter a layer's heatmap shows: ``layer.weight``, else its first parameter."""
    return _Recorded(rec).weight_of(layer)


class _Recorded:
    """What a run recorded, indexed once: per module its parameters' heatmap parameter, and the
    layers with recorded activations. (``rec.parameters`` walks every epoch's snapshots: read
    per layer it made a workspace's bake of 4,000 layers take tens of seconds.)"""

    def __init__(self, rec: History) -> None:
        self.epochs = rec.epochs
        own: dict[str, list[str]] = {}
        for n in rec.parameters:
            own.setdefault(n.rpartition(".")[0], []).append(n)
        self.own = own
        self.layers = set(rec.layers)

    def weight_of(self, layer: str) -> str | None:
        own = self.own.get(layer, [])
        if f"{layer}.weight" in own:
            return f"{layer}.weight"
        return own[0] if own else None


@dataclasses.dataclass
class _Built:
    """What ``_Frames.build`` made, kept for the next (a live push extends it).

    The arrays hold ``cap`` rows (the frame slots, see ``TimelineView.frames_payload``), the
    first ``len(epochs)`` used: a new epoch's row is written in place, nothing is copied.
    ``codes`` rows are ``frames`` rows quantized with ``q``; ``gen`` changes whenever rows
    already quantized change (a new colour range, frame size or a row made again), and then
    ``codes`` is a new buffer: the rows of a payload sent before are never written again.
    """

    epochs: list[int]
    full: tuple[int, int]  # the smallest 2-D shape over the epochs
    frames: np.ndarray  # (cap, h, w) float32, NaN where nothing is readable
    have: np.ndarray  # (cap,) bool: which rows were read
    ranges: np.ndarray  # (2, cap): each frame's finite min and max
    codes: np.ndarray  # (cap, h, w) uint8
    q: dict[str, Any]
    gen: int


_GENERATIONS = itertools.count(1)


def _requantized(
    codes: np.ndarray,
    q: dict[str, Any],
    start: int | None,
    n: int,
    values: Callable[[int], np.ndarray],
    lo: float,
    hi: float,
) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Rows ``:n`` of ``codes`` (a buffer of at least ``n`` rows) quantized over ``[lo, hi]``:
    with ``start``, while the range is ``q``'s, only rows ``start:n`` (``values(start)``), the
    rows before as they were sent; else every row (``values(0)``) into a new buffer, and True
    (rows sent before changed). Returns the buffer, its quantization and that flag."""
    if start is not None:
        new, got = quantize_u8(values(start), lo, hi)
        if got == q:
            codes[start:n] = new
            return codes, q, False
    out = np.empty_like(codes)
    out[:n], got = quantize_u8(values(0), lo, hi)
    return out, got, True


def _grown(a: np.ndarray, cap: int, fill: float | bool, axis: int = 0) -> np.ndarray:
    """``a`` with room for ``cap`` rows along ``axis`` (the same array when it has it)."""
    if a.shape[axis] >= cap:
        return a
    shape = list(a.shape)
    shape[axis] = cap
    out = np.full(shape, fill, a.dtype)
    out[(slice(None),) * axis + (slice(0, a.shape[axis]),)] = a
    return out


class _Frames:
    """All epochs of one tensor (a parameter or a layer's activation) as screen-sized frames.

    The last build is kept (``built``), so a live run that adds an epoch reduces and quantizes
    only that one. The colour range is one for all epochs (a frame's colours compare with the
    others'), rounded outwards (``nice_range``) so that it grows only now and then: while new
    frames fall inside it, the codes of the frames before stay as they were sent.
    """

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        self.out_shape: tuple[int, int] | None = None
        # Each epoch's 2-D shape (None: nothing readable), so that a live run's push reads only
        # the new epoch (a follower's read of an old epoch opens a file). Shape and frame are
        # made again for an epoch that ``rec.thinned`` names since (reduced or let go): a live
        # view shows what a new view of the run would. ``thinned_seen``: entries already read.
        self.shapes: dict[int, tuple[int, int] | None] = {}
        self.thinned_seen = 0
        self.built: _Built | None = None

    def read(self, rec: History, epoch: int) -> np.ndarray | None:
        try:
            snap = (
                rec.snapshot(self.name, epoch)
                if self.kind == "param"
                else rec.activation(self.name, epoch)
            )
        except (KeyError, ThinnedError, LookupError):
            return None
        return np.asarray(snap.array)

    def _forget_thinned(self, rec: History) -> set[int] | None:
        """Forget the shape of each epoch ``rec.thinned`` names for this tensor since the last
        call; return those epochs (None: forget everything, another run's list)."""
        thinned = rec.thinned
        if len(thinned) < self.thinned_seen:  # another run's list (a store reloaded)
            self.shapes.clear()
            self.thinned_seen = 0
            return None
        forgot: set[int] = set()
        for entry in thinned[self.thinned_seen :]:
            e = entry.get("epoch")
            if e is not None and self.name in entry.get("tensors", ()):
                self.shapes.pop(e, None)
                forgot.add(e)
        self.thinned_seen = len(thinned)
        return forgot

    def _smallest(
        self, rec: History, epochs: list[int], read: dict[int, np.ndarray]
    ) -> tuple[int, int] | None:
        """The smallest 2-D image over epochs (reduced epochs are smaller than exact ones); the
        snapshots it had to read go into ``read``, for ``_fill`` to take."""
        shapes = []
        for e in epochs:
            if e not in self.shapes:
                a = self.read(rec, e)
                self.shapes[e] = None if a is None else _shape2d(a.shape)
                if a is not None:
                    read[e] = a
            shape = self.shapes[e]
            if shape is not None:
                shapes.append(shape)
        if not shapes:
            return None
        return min(s[0] for s in shapes), min(s[1] for s in shapes)

    def _fill(self, rec: History, b: _Built, rows: list[int], read: dict[int, np.ndarray]) -> None:
        """Make rows ``rows`` of ``b`` (frames, have, ranges) from their epochs' snapshots
        (``read``: snapshots read already in this build); NaN where nothing is readable."""
        out = b.frames.shape[1:]
        for i in rows:
            e = b.epochs[i]
            b.frames[i], b.have[i] = np.nan, False
            if self.shapes.get(e) is None:  # nothing to read (see _smallest): not tried again
                continue
            a = read.pop(e, None)
            if a is None:
                a = self.read(rec, e)
            if a is not None:
                b.frames[i] = block_reduce(_as_2d(a), out)
                b.have[i] = True
        if rows:
            b.ranges[:, rows] = _row_ranges(b.frames[rows])

    def build(
        self, rec: History, epochs: list[int], max_cells: int, cap: int
    ) -> dict[str, Any] | None:
        """The payload of ``epochs``' frames within ``max_cells`` cells a frame; ``cap`` (at
        least ``len(epochs)``) rows are kept for the epochs to come."""
        # What the last build made, extended when the run only gained epochs since (a live
        # push): then only the new epochs are read, and those that ``rec.thinned`` names since
        # (their rows are made again), not every epoch of the run.
        forgot = self._forget_thinned(rec)
        last = self.built
        if last is not None and (forgot is None or epochs[: len(last.epochs)] != last.epochs):
            last = None
        new = epochs[len(last.epochs) :] if last is not None else epochs
        # After thinning, the smallest shape again over all epochs (their shapes are kept).
        read: dict[int, np.ndarray] = {}
        full = self._smallest(rec, new if last is not None and not forgot else epochs, read)
        if last is not None and not forgot:
            had = last.full
            full = had if full is None else (min(full[0], had[0]), min(full[1], had[1]))
        if full is None:
            self.built = None
            return None
        out = fit_budget(full, FRAME_MAX_SIDE, max(1, max_cells))
        if out != self.out_shape:
            self.out_shape = out
            last = None  # every frame again, at the new size
        cap = max(cap, len(epochs))
        if last is None:
            b = _Built(
                list(epochs),
                full,
                np.full((cap, *out), np.nan, np.float32),
                np.zeros(cap, bool),
                np.zeros((2, cap), np.float64),
                np.zeros((cap, *out), np.uint8),
                {},
                0,
            )
            start = 0
        else:
            start = len(last.epochs)
            b = dataclasses.replace(
                last,
                epochs=list(epochs),
                full=full,
                frames=_grown(last.frames, cap, np.nan),
                have=_grown(last.have, cap, False),
                ranges=_grown(last.ranges, cap, 0.0, axis=1),
                codes=_grown(last.codes, cap, 0),
            )
        n = len(epochs)
        self._fill(rec, b, list(range(start, n)), read)
        again = [i for i, e in enumerate(epochs[:start]) if e in forgot] if forgot else []
        self._fill(rec, b, again, read)  # thinned since: made again in place
        self.built = b
        # The finite range over every frame, from each frame's (kept with it).
        lo = float(b.ranges[0, :n].min(initial=np.inf))
        hi = float(b.ranges[1, :n].max(initial=-np.inf))
        if not lo <= hi:  # nothing finite
            lo = hi = 0.0
        # Signed data: a range symmetric around 0 (the diverging map's centre is 0).
        if lo < 0 < hi:
            m = max(-lo, hi)
            lo, hi = -m, m
        lo, hi = nice_range(lo, hi)
        extend = start if last is not None and not again else None
        b.codes, b.q, changed = _requantized(
            b.codes, b.q, extend, n, lambda i: b.frames[i:n], lo, hi
        )
        if changed:
            b.gen = next(_GENERATIONS)
        q = b.q
        return {
            "name": self.name,
            "shape": list(full),
            "codes": b.codes[:n],
            "have": b.have[:n].astype(np.uint8),
            "quant": q,
            "diverging": bool(q["lo"] < 0 < q["hi"]),
        }


def _shares(counts: np.ndarray) -> np.ndarray:
    """The square root of each bin's share of its row's values (so that the tails show)."""
    c = counts.astype(np.float64)
    return np.sqrt(c / np.maximum(c.sum(axis=1, keepdims=True), 1.0))


class _Histograms:
    """One parameter's histograms over epochs as codes (``_shares`` of each epoch's counts), one
    colour range for all epochs, rounded outwards. Kept like ``_Frames``: a live push quantizes
    only the new epochs' rows while the range holds (a histogram, once recorded, does not
    change); ``gen`` changes when rows already quantized change, and then ``codes`` is a new
    buffer."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.epochs = np.zeros(0, np.int64)
        self.codes = np.zeros((0, 0), np.uint8)  # rows [:len(epochs)] used
        self.top = 0.0  # the largest share so far
        self.q: dict[str, Any] = {}
        self.gen = 0

    def build(self, rec: History) -> dict[str, Any] | None:
        try:
            h = rec.histograms(self.name)
        except KeyError:
            self.gen = 0
            return None
        n, k, bins = len(h.epochs), len(self.epochs), h.counts.shape[1]
        if k > n or self.codes.shape[1] != bins or not np.array_equal(h.epochs[:k], self.epochs):
            k = 0  # another run's rows (a store read again): every row again
            self.codes = np.zeros((0, bins), np.uint8)
        share = _shares(h.counts[k:])
        top = max(self.top if k else 0.0, float(share.max(initial=0.0)))
        hi = nice_range(0.0, top)[1] if top > 0 else 1.0
        if n > len(self.codes):  # room for as many rows again
            self.codes = _grown(self.codes, max(n, 2 * len(self.codes)), 0)
        self.codes, self.q, changed = _requantized(
            self.codes, self.q, k or None, n, lambda i: share if i else _shares(h.counts), 0.0, hi
        )
        if changed:
            self.gen = next(_GENERATIONS)
        self.epochs, self.top = h.epochs, top
        return {
            "epochs": h.epochs.astype(np.int32),
            "codes": self.codes[:n],
            "quant": self.q,
            "lo": float(h.edges[0]),
            "hi": float(h.edges[-1]),
        }


class ScrubberView(BaseView):
    """The front-end half of ``TimelineView``: slider, play, layer picker and the layer panels.

    ``frames`` holds everything the panels show for every epoch (see module docstring).
    ``_frame_ms`` is reported by the browser: repaint times of the last frames (ms).
    """

    _esm = bundle("timeline")

    epoch = traitlets.Int(0).tag(sync=True)
    # Show each new epoch as it is recorded. Scrubbing turns it off (in the browser, at once:
    # the kernel hears of it only after a training cell ends); the "follow latest" box turns it on.
    follow = traitlets.Bool(True).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    layers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # (ints, set by the view only: a List(Int()) checked each of them on every push)
    epochs: traitlets.List[int] = traitlets.List().tag(sync=True)
    frames = traitlets.Dict().tag(sync=True, **payload_serialization)
    # What a live run added since ``frames`` was set, when that is all that changed: the new
    # epochs' frame and histogram rows, and the small parts (epochs, steps, curves) whole; ``{}``
    # when there is none. The front end joins the two (js/timeline/data.ts); see ``frames_now``.
    frames_tail = traitlets.Dict().tag(sync=True, **payload_serialization)
    _frame_ms = traitlets.List(traitlets.Float()).tag(sync=True)
    # Model ids of the bqplot epoch markers: the browser moves them while scrubbing (no kernel).
    _markers = traitlets.Dict().tag(sync=True)
    # The loss and metric curves as data, for hosts that draw them themselves (the workspace):
    # {"loss": {x, y}, "points": {x, y}, "metrics": {name: y}, "epochs": [...]} (float32).
    _curves = traitlets.Dict().tag(sync=True, **payload_serialization)
    # What the run did not keep whole or measured on some steps only (plain text), shown under
    # the controls wherever the scrubber is (this view, the workspace, marimo).
    notes = traitlets.Unicode("").tag(sync=True)
    # The newest recorded epoch (set by the TimelineView), for the validator below.
    _newest: Callable[[], int | None] | None = None

    def frames_now(self) -> dict[str, Any]:
        """``frames`` with ``frames_tail`` joined in: what the view shows."""
        return joined_frames(self.frames, self.frames_tail)

    @traitlets.validate("epoch")
    def _valid_epoch(self, proposal: Any) -> int:
        """A scrub to the then-newest epoch, sent by the browser while following, can reach the
        kernel only after a newer epoch was recorded (it waited behind the training cell):
        following wins, the newest stays shown, as the browser itself shows it."""
        value = int(proposal["value"])
        newest = self._newest() if self._newest is not None else None
        from_browser = "epoch" in self._property_lock
        if from_browser and self.follow and newest is not None and value < newest:
            return newest
        return value


class TimelineView(widgets.VBox):
    """A recorded training run: curves, an epoch scrubber and the selected layer's panels.

    Traits: ``epoch`` (an epoch number from ``rec.epochs``; synced with the slider) and ``layer``
    (a module path; link it to ``GraphView.selected``). ``log_y`` switches the loss axis to log.
    ``budget``: bytes of frames pushed to (and saved with) the view.

    >>> view = ls.timeline(rec)                                  # doctest: +SKIP
    >>> view.epoch = 3; view.layer = "features.0"                # doctest: +SKIP
    """

    epoch = traitlets.Int(0)
    layer = traitlets.Unicode("")
    log_y = traitlets.Bool(False)

    def __init__(
        self,
        rec: History | str | os.PathLike[str],
        *,
        layer: str | None = None,
        budget: int | str = DEFAULT_BUDGET,
        curves: bool = True,
        storage_options: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        self._owned: RecordedRun | None = None
        if isinstance(rec, (str, os.PathLike)):
            # A store written by another process: follow it while the view is open.
            rec = self._owned = RecordedRun(
                os.fspath(rec), follow=True, storage_options=storage_options
            )
        elif storage_options is not None:
            raise TypeError("storage_options= applies to a store URL: pass the URL with it")
        if not isinstance(rec, History):
            raise TypeError(
                "ls.timeline needs an ls.Recorder (recording now) or a run from "
                f"ls.Recorder.open('runs/NAME'); got {type(rec).__name__}"
            )
        self._unsubscribe: Callable[[], None] | None = None
        self._links: list[Any] = []
        self._quiet = False  # select a layer without pushing its frames (a push follows)
        self._lock = threading.RLock()  # see _locked
        # The generations of the rows in ``scrubber.frames`` (see ``_send_frames``), its number.
        self._base_gens: list[int | None] | None = None
        self._rev = 0
        self.rec = rec
        self.budget = parse_budget(budget)
        self._param: _Frames | None = None
        self._selected = ""
        self._hist: _Histograms | None = None
        self._act: _Frames | None = None
        self._recorded: _Recorded | None = None
        self.scrubber = ScrubberView()
        self.scrubber._newest = lambda: self.rec.epochs[-1] if self.rec.epochs else None
        # Without bqplot figures (curves=False) the curves travel as data in scrubber._curves.
        self._figures = curves
        # A run whose epoch() is called every N steps (axis="step") is labelled in steps.
        self._steps_axis = getattr(rec, "axis", "epoch") == "step"
        # What the run did not keep (budget thinning, snapshot policy), said under the charts.
        self.notes = widgets.HTML("", layout=widgets.Layout(margin="0 0 0 60px"))
        self.notes.add_class("ls-timeline-notes")
        # (``notes`` keeps the HTML for Python; the scrubber shows the same text in the page.)
        children: list[widgets.Widget] = [self.scrubber]
        if curves:
            self._build_figures()
            self.scrubber._markers = {
                "loss": self._loss_marker.model_id,
                "metric": self._metric_marker.model_id,
            }
            children.insert(0, widgets.HBox([self.loss_fig, self.metric_fig]))
        super().__init__(children=children, **kw)
        self.add_class("ls-timeline")
        layers = _modules(rec)
        self.scrubber.layers = layers
        # Before the first epoch nothing is recorded yet: the layer is taken on trust.
        if layer is not None and layers and layer not in layers:
            raise ValueError(
                f"layer {layer!r} has no recorded parameters; recorded layers: {layers}"
            )
        epochs = rec.epochs
        self.scrubber.epochs = epochs
        # Kernel and front end share one epoch and one layer (the slider and the picker).
        self._links = [
            traitlets.link((self, "epoch"), (self.scrubber, "epoch")),
            traitlets.link((self, "layer"), (self.scrubber, "layer")),
        ]
        self.observe(self._on_layer, names="layer")
        self.observe(self._on_epoch, names="epoch")
        self.observe(self._on_log_y, names="log_y")
        self.epoch = epochs[-1] if epochs else 0
        self.layer = layer if layer is not None else (layers[0] if layers else "")
        if not self.scrubber.frames:  # no layer to select yet (nothing recorded)
            self._send_frames()
        self._update_curves()
        on_epoch = getattr(rec, "on_epoch", None)
        self._unsubscribe = on_epoch(self._on_recorded) if callable(on_epoch) else None

    @traitlets.validate("epoch")
    def _valid_epoch(self, proposal: Any) -> int:
        return clamp_epoch(self.rec.epochs, int(proposal["value"]))

    # -- curves (bqplot) -------------------------------------------------------------------------

    def _build_figures(self) -> None:
        import bqplot as bq

        self._sx = bq.LinearScale()
        self._sy_lin, self._sy_log = bq.LinearScale(), bq.LogScale()
        # Marks start empty, axes and legends hidden, so that nothing is drawn at (0, 0) before
        # there is data; the figure titles say in words what is missing.
        self._loss = bq.Lines(
            x=np.zeros(0),
            y=np.zeros(0),
            scales={"x": self._sx, "y": self._sy_lin},
            colors=["#1f77b4"],
            labels=["loss (per step)"],
        )
        # One point per epoch, the mean loss of its steps, in the middle of them: click one to
        # jump there.
        self._loss_pts = bq.Scatter(
            x=np.zeros(0),
            y=np.zeros(0),
            scales={"x": self._sx, "y": self._sy_lin},
            colors=["#1f77b4"],
            default_size=24,
            labels=["epoch mean"],
        )
        self._loss_marker = bq.Lines(
            x=np.zeros(2),
            y=np.zeros(2),
            scales={"x": self._sx, "y": self._sy_lin},
            colors=["#d62728"],
            stroke_width=2,
        )
        self._loss_axes = [
            bq.Axis(scale=self._sx, label="step", tick_format="d", visible=False),
            bq.Axis(scale=self._sy_lin, side="left", tick_format=".2f", visible=False),
        ]
        self.loss_fig = bq.Figure(
            marks=[self._loss, self._loss_pts, self._loss_marker],
            axes=self._loss_axes,
            title=NO_LOSS,
            layout=widgets.Layout(width="520px", height="260px"),
            fig_margin={"top": 40, "bottom": 40, "left": 60, "right": 20},
            legend_location="bottom-left",  # a falling loss leaves that corner empty
        )
        self._ex, self._ey = bq.LinearScale(), bq.LinearScale()
        # A run whose epoch() is called every N steps (axis="step") is labelled in steps.
        self._epoch_axis = bq.Axis(
            scale=self._ex,
            label="step" if self._steps_axis else "epoch",
            tick_format="d",
            visible=False,
        )
        self._metric_lines = bq.Lines(
            x=np.zeros(0),
            y=np.zeros(0),
            scales={"x": self._ex, "y": self._ey},
            display_legend=False,
            marker="circle",
        )
        self._metric_pts = bq.Scatter(
            x=np.zeros(0),
            y=np.zeros(0),
            scales={"x": self._ex, "y": self._ey},
            colors=["#444444"],
            default_size=24,
            opacities=[0.0],
        )
        self._metric_marker = bq.Lines(
            x=np.zeros(2),
            y=np.zeros(2),
            scales={"x": self._ex, "y": self._ey},
            colors=["#d62728"],
            stroke_width=2,
        )
        self._metric_axis = bq.Axis(scale=self._ey, side="left", tick_format=".2f", visible=False)
        self.metric_fig = bq.Figure(
            marks=[self._metric_lines, self._metric_pts, self._metric_marker],
            axes=[self._epoch_axis, self._metric_axis],
            title=NO_METRICS,
            layout=widgets.Layout(width="520px", height="260px"),
            fig_margin={"top": 40, "bottom": 40, "left": 60, "right": 20},
            legend_location="bottom-right",
        )
        self._loss_pts.on_element_click(self._clicked)
        self._metric_pts.on_element_click(self._clicked)

    def _clicked(self, _mark: Any, event: dict[str, Any]) -> None:
        index = (event.get("data") or {}).get("index")
        epochs = self.rec.epochs
        if isinstance(index, int) and 0 <= index < len(epochs):
            self.epoch = epochs[index]

    def _curve_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The loss curve (downsampled) and each epoch's point: ``x, y, px, py``."""
        rec = self.rec
        loss = rec.scalars().get("loss", np.zeros(0))
        x, y = downsample(loss)
        ends = rec.epoch_steps().astype(np.int64)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        # Each epoch's point: the mean of the finite losses of its steps, in the middle of those
        # steps. From running sums, not a loop over epochs (a live view does this after every
        # epoch(), and a run may call it every step).
        finite = np.isfinite(loss)
        total = np.concatenate([[0.0], np.cumsum(np.where(finite, loss, 0.0))])
        count = np.concatenate([[0], np.cumsum(finite)])
        a, b = np.clip(starts, 0, len(loss)), np.clip(ends, 0, len(loss))
        n = count[b] - count[a]
        with np.errstate(invalid="ignore", divide="ignore"):
            pts = np.where(n > 0, (total[b] - total[a]) / np.maximum(n, 1), math.nan)
        px = (starts + np.maximum(ends, starts + 1) - 1) / 2
        return x, y, px.astype(np.float64), pts.astype(np.float64)

    def _update_curves(self) -> None:
        x, y, px, pts = self._curve_data()
        if not self._figures:
            f32 = np.float32
            self.scrubber._curves = {
                "loss": {"x": x.astype(f32), "y": y.astype(f32)},
                "points": {"x": px.astype(f32), "y": pts.astype(f32)},
                # (binary, as the rest: lists of ints were walked item by item on each push)
                "epochs": np.asarray(self.rec.epochs, dtype=np.int32),
                "steps": self.rec.epoch_steps().astype(np.int32),
                "metrics": {k: v.astype(f32) for k, v in self.rec.metrics().items()},
                "axis": "step" if self._steps_axis else "epoch",
            }
            self.scrubber.notes = text = _note_text(self.rec)
            self.notes.value = _notes_html(text)
            return
        rec = self.rec
        epochs = rec.epochs
        steps = rec.epoch_steps()
        with self._loss.hold_sync(), self._loss_pts.hold_sync():
            self._loss.x, self._loss.y = (x, y) if len(x) else (np.zeros(0), np.zeros(0))
            # (epochs recorded before any step have no mean: NaN, not drawn)
            self._loss_pts.x = px if len(x) else np.zeros(0)
            self._loss_pts.y = pts if len(x) else np.zeros(0)
            self._loss.display_legend = self._loss_pts.display_legend = bool(len(x))
        self.loss_fig.title = "loss" if len(x) else NO_LOSS
        for axis in self._loss_axes:
            axis.visible = bool(len(x))
        if len(x):
            self._loss_axes[0].tick_values = integer_ticks(0, float(x[-1]))
        if not self.log_y:
            self._loss_axes[1].tick_format = axis_format(np.asarray(y, dtype=np.float64))
        metrics = rec.metrics()
        ex = np.asarray(steps if self._steps_axis else epochs, dtype=np.float64)
        if metrics and len(ex):
            names = list(metrics)
            ys = np.stack([metrics[n] for n in names])
            if len(ex) == 1:  # bqplot squeezes a (k, 1) array: one point, one line
                names, ys = names[:1], ys[0]
            with self._metric_lines.hold_sync(), self._metric_pts.hold_sync():
                self._metric_lines.x, self._metric_lines.y = ex, ys
                self._metric_lines.labels = names
                self._metric_pts.x, self._metric_pts.y = ex, ys if ys.ndim == 1 else ys[0]
                self._metric_lines.display_legend = True
            self._metric_axis.tick_format = axis_format(np.asarray(ys, dtype=np.float64))
            # Whole epochs only: at most ~10 ticks.
            self._epoch_axis.tick_values = integer_ticks(ex[0], ex[-1])
        has = bool(metrics and len(ex))
        self.metric_fig.title = "metrics" if has else NO_METRICS
        self._epoch_axis.visible = self._metric_axis.visible = has
        self._update_markers()
        self.scrubber.notes = text = _note_text(rec)
        self.notes.value = _notes_html(text)

    def _update_markers(self) -> None:
        rec = self.rec
        epochs = rec.epochs
        if not epochs or not self._figures:
            return
        i = epochs.index(self.epoch) if self.epoch in epochs else len(epochs) - 1
        step = float(max(int(rec.epoch_steps()[i]) - 1, 0))
        ly = np.asarray(self._loss.y, dtype=np.float64)
        finite = ly[np.isfinite(ly) & ((ly > 0) | (not self.log_y))]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self._loss_marker.x, self._loss_marker.y = np.array([step, step]), np.array([lo, hi])
        my = np.asarray(self._metric_lines.y, dtype=np.float64)
        mf = my[np.isfinite(my)]
        mlo, mhi = (float(mf.min()), float(mf.max())) if mf.size else (0.0, 1.0)
        if not mhi > mlo:  # a flat metric: give the marker (and the axis) some height
            pad = max(0.05, abs(mlo) * 0.05)
            mlo, mhi = mlo - pad, mhi + pad
        e = float(rec.epoch_steps()[i]) if self._steps_axis else float(self.epoch)
        self._metric_marker.x, self._metric_marker.y = np.array([e, e]), np.array([mlo, mhi])

    @_locked
    def _on_log_y(self, change: dict[str, Any]) -> None:
        if not self._figures:
            return
        sy = self._sy_log if change["new"] else self._sy_lin
        # Log ticks span decades: significant digits without trailing zeros ("0.5", "1", "2").
        self._loss_axes[1].tick_format = (
            "~g" if change["new"] else axis_format(np.asarray(self._loss.y, dtype=np.float64))
        )
        for m in (self._loss, self._loss_pts, self._loss_marker):
            m.scales = {"x": self._sx, "y": sy}
        self._loss_axes[1].scale = sy
        self.loss_fig.axes = [self._loss_axes[0], self._loss_axes[1]]
        self._update_markers()

    # -- frames ----------------------------------------------------------------------------------

    @_locked
    def _on_epoch(self, change: dict[str, Any]) -> None:
        epochs = self.rec.epochs
        if "epoch" in getattr(self.scrubber, "_property_lock", {}):
            # The browser moved the slider: it has moved the markers too (and synced them);
            # setting them here again would redraw bqplot's SVG mid-scrub.
            return
        self._update_markers()
        # Set from Python to an older epoch: stay there while new ones arrive.
        if epochs and change["new"] != epochs[-1]:
            self.scrubber.follow = False

    @_locked
    def _on_layer(self, change: dict[str, Any]) -> None:
        self._select(change["new"])
        if not self._quiet:
            self._send_frames()

    def _index(self) -> _Recorded:
        """The run's index, made again when epochs were recorded since."""
        index = self._recorded
        if index is None or index.epochs != self.rec.epochs:
            index = self._recorded = _Recorded(self.rec)
        return index

    def _select(self, layer: str) -> None:
        # The layer the frames are of (``layer`` can change in another thread before its
        # observer, waiting for the lock, selects it: a push meanwhile names these frames').
        self._selected = layer
        index = self._index()
        if layer and layer not in index.own:
            # Linked to GraphView.selected: a module without recorded parameters shows nothing.
            self._param = self._act = self._hist = None
        else:
            param = index.weight_of(layer) if layer else None
            self._param = _Frames("param", param) if param else None
            self._hist = _Histograms(param) if param else None
            self._act = _Frames("act", layer) if layer in index.layers else None

    def frames_payload(self) -> dict[str, Any]:
        """What the scrubber gets for the selected layer: every epoch's frames, histograms and
        per-step curves, within ``budget`` bytes (see ``frames``' layout in js/timeline/data.ts)."""
        rec, layer = self.rec, self._selected
        epochs = rec.epochs
        out: dict[str, Any] = {
            "layer": layer,
            # "step": epoch() is called every N steps, and the scrubber counts steps.
            "axis": "step" if self._steps_axis else "epoch",
            "epochs": np.asarray(epochs, dtype=np.int32),
            "steps": rec.epoch_steps().astype(np.int32),
            "param": None,
            "act": None,
            "hist": None,
            "grad": None,
            "ratio": None,
        }
        if not epochs or (self._param is None and self._act is None):
            return out
        tensors = [f for f in (self._param, self._act) if f is not None]
        # Histograms and curves are small next to the frames: reserve 1/8 of the budget for them.
        # The frames are sized for the epoch count rounded up to a power of two: their size then
        # changes only when the count doubles, and a live run makes every frame again only then
        # (sized for the exact count, a push rebuilt them all every few epochs). They use at
        # least half of the budget.
        slots = 1 << (len(epochs) - 1).bit_length()
        per_frame = (self.budget * 7 // 8) // (len(tensors) * slots)
        if self._param is not None:
            out["param"] = self._param.build(rec, epochs, per_frame, slots)
            assert self._hist is not None
            out["hist"] = self._hist.build(rec)
            for key, series in (("grad", rec.grad_norms), ("ratio", rec.update_ratios)):
                x, y = downsample(series(self._param.name))
                out[key] = {"x": x.astype(np.float32), "y": y.astype(np.float32)}
        if self._act is not None:
            out["act"] = self._act.build(rec, epochs, per_frame, slots)
        return out

    def _send_frames(self, *, extend: bool = False) -> None:
        """Set the scrubber's frames. With ``extend`` (a live push), when the run only gained
        epochs since the last whole payload and the rows sent then are unchanged (same colour
        range and frame size, none made again), only what was added goes (``frames_tail``):
        the new rows, and the small parts whole. The tail grows with each push until it holds
        an eighth of the rows (at least ``TAIL_ROWS``); then a whole payload goes again."""
        payload = self.frames_payload()
        tensors = [f.built if f is not None else None for f in (self._param, self._act)]
        gens = [b.gen if b is not None else None for b in tensors]
        gens.append(self._hist.gen if payload["hist"] is not None and self._hist else None)
        base, n = self.scrubber.frames, len(payload["epochs"])
        rows = len(base.get("epochs", ()))
        if (
            extend
            and self._base_gens == gens
            and (base["layer"], base["axis"]) == (payload["layer"], payload["axis"])
            and rows <= n <= rows + max(TAIL_ROWS, rows // 8)
        ):
            tail: dict[str, Any] = {k: payload[k] for k in _TAIL_KEYS}
            tail["base"] = base["rev"]
            for key in ("param", "act"):
                t = payload[key]
                tail[key] = t and {"codes": t["codes"][rows:], "have": t["have"]}
            h = payload["hist"]
            had = len(base["hist"]["epochs"]) if h else 0
            tail["hist"] = h and {"epochs": h["epochs"], "codes": h["codes"][had:]}
            self.scrubber.frames_tail = tail
            return
        self._rev += 1
        payload["rev"] = self._rev
        self._base_gens = gens
        with self.scrubber.hold_sync():
            self.scrubber.frames = payload
            self.scrubber.frames_tail = {}

    @_locked
    def _on_recorded(self, epoch: int) -> None:
        """A live Recorder finished ``epoch``: push its frame (the kept build reduces only it)."""
        follow = self.scrubber.follow
        layers = _modules(self.rec)
        if layers != self.scrubber.layers:
            self.scrubber.layers = layers
        self._quiet = True
        try:
            if not self.layer and layers:
                self.layer = layers[0]
            elif self._param is None and self.layer in layers:
                self._select(self.layer)
        finally:
            self._quiet = False
        with self.scrubber.hold_sync():
            self.scrubber.epochs = self.rec.epochs
            self._send_frames(extend=True)
            # Asked again: from a follower's thread, the user may have scrubbed meanwhile.
            if follow and self.scrubber.follow:
                self.epoch = epoch
        self._update_curves()

    # -- public helpers ---------------------------------------------------------------------------

    def overlay(self, a: int | None = None, b: int | None = None) -> dict[str, float]:
        """``layer_change_overlay(self.rec, a, b)``: set it as ``graph.overlay``."""
        return layer_change_overlay(self.rec, a, b)

    def __repr__(self) -> str:
        rec = getattr(self, "rec", None)
        if rec is None:
            return "TimelineView()"
        return f"TimelineView({len(rec.epochs)} epochs, layer {self.layer!r})"

    @property
    def frame_ms(self) -> list[float]:
        """Repaint times (ms) of the last frames the browser painted (empty until it reports)."""
        return [float(v) for v in self.scrubber._frame_ms]

    def close(self) -> None:
        # Also reached from __del__ of a view whose __init__ raised (bad arguments).
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
            self._unsubscribe = None
        owned = getattr(self, "_owned", None)
        if owned is not None:
            owned.close()  # stop following the store this view opened
        # (the lock after the poller stopped: it waits for a push under way, which holds it)
        with getattr(self, "_lock", contextlib.nullcontext()):
            notes = getattr(self, "notes", None)
            if notes is not None:
                notes.close()
            for link in getattr(self, "_links", []):
                link.unlink()
            self._links = []
            for w in (getattr(self, n, None) for n in ("scrubber", "loss_fig", "metric_fig")):
                if w is not None:
                    w.close()
            super().close()


# What a tail carries whole (small next to the frames), besides the new rows of the frames and
# histograms.
_TAIL_KEYS = ("epochs", "steps", "grad", "ratio")
# The fewest new rows a tail may hold before a whole payload goes again.
TAIL_ROWS = 8


def joined_frames(frames: dict[str, Any], tail: dict[str, Any]) -> dict[str, Any]:
    """A scrubber's ``frames`` with its ``frames_tail`` joined in (the tail of another payload,
    or none, is ignored), as the front end joins them (js/timeline/data.ts, ``decodeFrames``)."""
    if not tail or tail.get("base") != frames.get("rev"):
        return frames
    out = {**frames, **{k: tail[k] for k in _TAIL_KEYS}}
    for key in ("param", "act", "hist"):
        t, more = frames.get(key), tail.get(key)
        if t is not None and more is not None:
            out[key] = {**t, **more, "codes": np.concatenate([t["codes"], more["codes"]])}
    return out


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``, and evenly spaced runs of three or more as
    ``"20-100 every 20"``: a run thinned at every other snapshot for thousands of them is one
    phrase, not thousands of numbers."""
    v = sorted(set(values))
    out: list[str] = []
    i = 0
    while i < len(v):
        j = i + 1
        if j < len(v):
            d = v[j] - v[i]
            while j + 1 < len(v) and v[j + 1] - v[j] == d:
                j += 1
            if d == 1 or j - i >= 2:  # consecutive, or evenly spaced, three or more
                out.append(f"{v[i]}-{v[j]}" + (f" every {d}" if d > 1 else ""))
                i = j + 1
                continue
        out.append(str(v[i]))
        i += 1
    return ", ".join(out)


def _ordinal(k: int) -> str:
    """``2`` -> ``"2nd"``, ``11`` -> ``"11th"``."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


_ACTIONS = {
    "reduced": "kept at reduced resolution (budget)",
    "dropped": "tensors let go (budget)",
    "policy_reduced": "snapshots reduced by the snapshot policy",
    "policy_stats": "snapshots skipped by the snapshot policy (stats and histograms only)",
}


def _notes_html(text: str) -> str:
    """``_note_text``'s text as HTML (``TimelineView.notes``)."""
    return f'<div style="font-size:12px;color:#8a5a00">{html.escape(text)}</div>' if text else ""


def _note_text(rec: History) -> str:
    """One line per kind of thinning or skipping in ``rec.thinned`` and per sampled series (empty
    when nothing was): at which epochs, or steps for a run whose epoch() is called every N steps."""
    by: dict[str, list[int]] = {}
    steps: list[int] = []
    for t in rec.thinned:
        if t.get("action") == "steps_decimated":
            steps.append(int(t.get("before_step", 0)))
        elif t.get("epoch") is not None:
            by.setdefault(str(t["action"]), []).append(int(t["epoch"]))
    if by and getattr(rec, "axis", "epoch") == "step":
        # By the steps the snapshots were taken at ("at steps 20-400 every 20").
        at = dict(zip(rec.epochs, rec.epoch_steps().tolist(), strict=True))
        lines = [
            f"{_ACTIONS.get(a, a)}: at steps {_ranges([at.get(e, e) for e in es])}"
            for a, es in sorted(by.items())
        ]
    else:
        lines = [f"{_ACTIONS.get(a, a)}: epochs {_ranges(es)}" for a, es in sorted(by.items())]
    if steps:
        lines.append(f"per-parameter step series halved before step {max(steps)} (budget)")
    sampled = []
    for key, what in (
        ("grad_norms_every", "gradient norms"),
        ("update_ratios_every", "update ratios"),
    ):
        k = rec.sampling.get(key, 1)
        if k != 1:
            sampled.append(f"{what} {'never' if k == 0 else f'every {_ordinal(k)} step'}")
    out = ""
    if lines:
        out += "Not kept whole: " + "; ".join(lines) + " (see rec.thinned). "
    if sampled:
        out += "Measured on some steps only: " + ", ".join(sampled) + " (see rec.sampling)."
    return out.strip()


def timeline(
    rec: History | str | os.PathLike[str],
    *,
    layer: str | None = None,
    budget: int | str = DEFAULT_BUDGET,
    curves: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> TimelineView:
    """A ``TimelineView`` of a live ``ls.Recorder``, a run from ``ls.Recorder.open(path)``, or a
    store path or URL (``"runs/exp1"``, ``"s3://bucket/run"``) that another process is writing:
    that one is followed live (``Recorder.open(path, follow=True)``) until the view is closed.

    ``layer``: the module path shown first (default: the first with parameters); ``budget``: bytes
    of frames pushed ahead of scrubbing and saved with the view (all epochs of the layer);
    ``storage_options``: fsspec options for a URL (``{"endpoint_url": ..., "key": ...}``).
    ``curves=False``: no bqplot figures; ``view.scrubber``, one anywidget, then draws the loss and
    metric curves itself (for hosts that refuse widget containers: marimo).

    >>> rec = ls.Recorder(model, probe=x[:32])          # doctest: +SKIP
    >>> view = ls.timeline(rec); view                    # doctest: +SKIP
    >>> ls.timeline("runs/exp1")                         # doctest: +SKIP
    >>> mo.ui.anywidget(ls.timeline(rec, curves=False).scrubber)   # doctest: +SKIP
    """
    return TimelineView(
        rec, layer=layer, budget=budget, curves=curves, storage_options=storage_options
    )
