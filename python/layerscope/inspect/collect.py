"""``collect(model, data, layers=...)``: one streaming pass over a dataset -> ``Collected``.

Per layer it keeps the per-sample representation (pooled over space/time), per-unit running
statistics and per-unit top-k samples (see ``unitstats.py``); for the model, the predictions,
their probability and, with labels, the per-sample loss.

Memory is bounded whatever the dataset size:

- representations: at most ``max_bytes`` for all layers together. While the pass runs, sample
  ``i`` is kept iff ``i % stride == 0``; ``stride`` starts at 1 and doubles (dropping every other
  kept sample) whenever the next sample would exceed the cap. So the kept samples are evenly
  spaced, deterministic, and ``Collected.rep_index`` lists them; ``rep_stride`` says the rule.
- statistics and top-k: ``O(units x (bins + top_k))`` per layer (the histogram's bincount holds
  ``units x 2 x (bins + 3)`` counts, 6 groups instead of 2 for bounded activations);
- per-sample scalars (label, prediction, probability, loss): 24 bytes a sample, for every sample;
- one batch of layer outputs at a time (two with the worker thread, which reduces a batch while
  the next one's forward runs: see ``_Worker``), plus, while one layer's batch is reduced: with
  the fused kernel (``fused.py``: CPU, numba, a dataset of 2**25 values or more) one sample's
  values and two (batch, units) arrays; on the torch path about four temporaries of that batch's
  size (a units-last copy, deviations, histogram slots, sign).

The model is run under ``preserved`` in eval mode with no grads: it comes back exactly as it was.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from . import fused
from .batches import DatasetError, dataset_length, is_one_shot, iter_batches, sample_input
from .capture import _layer_list, first_tensor
from .modules import check_module, find_module
from .progress import Progress
from .restore import preserved
from .scores import Scores
from .unitstats import Scratch, UnitStats, as_units, bounds_of, unit_layout

POOLS = ("mean", "max", None)
DEFAULT_MAX_BYTES = 256 * 2**20
CHUNK_VALUES = 2**20  # float32 values of consecutive batches reduced together (see _Chunks)
SCRATCH_VALUES = 2**22  # a layer's batch up to this size reduces in reused work buffers
FLOAT16_MAX = 65504.0
FLOAT32_MAX = float(np.finfo(np.float32).max)
# With the fused kernel and a core to spare, batches reduce on a worker thread (_Worker); off:
# on the main thread (tests run both).
WORKER = os.environ.get("LAYERSCOPE_COLLECT_WORKER", "1") != "0"


@dataclass
class LayerData:
    """What ``collect`` kept for one layer. Arrays are numpy; ``stats`` as in ``unitstats.py``."""

    path: str
    shape: tuple[int, ...]  # per-sample output shape
    layout: str  # "vec", "seq" or "conv"
    bounds: tuple[float, float] | None
    stats: dict[str, np.ndarray]
    reps: np.ndarray  # (kept samples, dim) float16/float32; rows follow Collected.rep_index
    nonfinite_reps: int = 0  # kept representation rows holding NaN/Inf

    @property
    def units(self) -> int:
        return int(self.stats["mean"].shape[0])

    def top(self, unit: int) -> list[tuple[int, float, int]]:
        """``(sample index, value, flat position)`` of a unit's top samples, largest first."""
        s = self.stats
        return [
            (int(i), float(v), int(p))
            for i, v, p in zip(
                s["top_index"][unit], s["top_value"][unit], s["top_pos"][unit], strict=True
            )
            if i >= 0
        ]

    def position(self, flat: int) -> tuple[int, ...]:
        """A flat position of ``top_pos`` as coordinates in the output's space/time dims."""
        if self.layout == "vec":
            return ()
        if self.layout == "seq":
            return (flat,)
        return tuple(int(c) for c in np.unravel_index(flat, self.shape[1:]))


@dataclass
class Collected:
    """The result of ``collect``: plain numpy, usable without widgets.

    ``layers[path]`` holds each layer's ``LayerData``; ``labels``, ``predictions``,
    ``probability`` (of the prediction) and ``loss`` cover every sample (None where not known);
    ``rep_index`` lists the samples whose representations were kept (all of them unless the
    ``max_bytes`` cap made the pass subsample, see ``rep_stride``).
    """

    n: int
    layers: dict[str, LayerData]
    rep_index: np.ndarray
    rep_stride: int
    max_bytes: int
    pool: str | None
    labels: np.ndarray | None = None
    predictions: np.ndarray | None = None
    probability: np.ndarray | None = None
    loss: np.ndarray | None = None
    input_shape: tuple[int, ...] = ()
    input_dtype: str = "float32"
    notes: list[str] = field(default_factory=list)
    data: Any = field(default=None, repr=False)

    def __getitem__(self, path: str) -> LayerData:
        if path not in self.layers:
            raise KeyError(f"no layer {path!r} was collected; collected: {list(self.layers)}")
        return self.layers[path]

    @property
    def subsampled(self) -> bool:
        return self.rep_stride > 1

    def sample(self, index: int) -> torch.Tensor | None:
        """Input ``index`` from the data (None when the data cannot be indexed: an iterable)."""
        if not 0 <= index < self.n:
            raise IndexError(f"sample index {index} is outside 0..{self.n - 1}")
        return None if self.data is None else sample_input(self.data, index)

    def samples(self, indices: Sequence[int]) -> torch.Tensor | None:
        """Inputs ``indices`` stacked (one gather for tensor data); None for an iterable."""
        if self.data is None:
            return None
        idx = [int(i) for i in indices]
        if any(not 0 <= i < self.n for i in idx):
            raise IndexError(f"sample indices must lie in 0..{self.n - 1}")
        x = self.data[0] if isinstance(self.data, tuple) else self.data
        if isinstance(x, (torch.Tensor, np.ndarray)):
            t = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
            return t[torch.tensor(idx, dtype=torch.int64)]
        rows = [sample_input(self.data, i) for i in idx]
        return torch.stack([r for r in rows if r is not None]) if rows else None

    @property
    def correct(self) -> np.ndarray | None:
        if self.labels is None or self.predictions is None:
            return None
        return self.labels == self.predictions

    def __repr__(self) -> str:
        kept = f"{len(self.rep_index):,}" + (
            f" (every {self.rep_stride}th)" if self.subsampled else ""
        )
        return (
            f"Collected(n={self.n:,}, layers={list(self.layers)}, representations kept={kept}, "
            f"labels={'yes' if self.labels is not None else 'no'})"
        )


class _Reps:
    """Per-sample representations of every layer under one byte cap (the stride rule above).

    Kept samples are the multiples of ``stride`` among those seen, so their indices are
    ``range(0, n, stride)`` (``index``); each layer's rows are written into one buffer that
    grows by doubling up to the cap (to the dataset's size when it is known): a batch costs one
    copy a layer, and the result is the buffer, not a concatenation of parts."""

    def __init__(self, max_bytes: int, dtype: torch.dtype, expected: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.dtype = dtype
        self.expected = expected  # samples in the dataset, when known
        self.stride = 1
        self.kept = 0  # rows kept (of every layer)
        self.bufs: dict[str, torch.Tensor] = {}  # (capacity, dim); rows 0..kept-1 are kept
        self.dtypes: dict[str, torch.dtype] = {}
        self._per_sample = 0

    @property
    def index(self) -> np.ndarray:
        return np.arange(self.kept, dtype=np.int64) * self.stride

    def per_sample(self) -> int:
        return self._per_sample

    def add(self, start: int, pooled: dict[str, torch.Tensor], extent: dict[str, float]) -> None:
        """Keep the rows of ``pooled`` (samples ``start`` ..) the stride rule keeps;
        ``extent[p]``: the largest finite |value| of layer ``p`` so far (a pooled value cannot
        exceed it)."""
        for p, t in pooled.items():
            if p not in self.bufs:
                self.dtypes[p] = self.dtype
                self.bufs[p] = torch.empty((0, t.shape[1]), dtype=self.dtype)
                self._per_sample += t.shape[1] * self.dtype.itemsize
            if self.dtypes[p] == torch.float16 and extent.get(p, 0.0) > FLOAT16_MAX:
                # float16 would turn these into Inf: keep this layer in float32 instead.
                self.dtypes[p] = torch.float32
                self.bufs[p] = self.bufs[p].float()
                self._per_sample += t.shape[1] * 2
        b = next(iter(pooled.values())).shape[0]
        cap = max(1, self.max_bytes // max(1, self._per_sample))
        while self.kept + _count(start, b, self.stride) > cap:
            self.stride *= 2  # keep the rows of the multiples of the new stride: every other
            half = (self.kept + 1) // 2
            for buf in self.bufs.values():
                buf[:half] = buf[: self.kept : 2].clone()
            self.kept = half
        first = -(-start // self.stride) * self.stride  # the first kept index >= start
        if first >= start + b:
            return
        k = _count(start, b, self.stride)
        end = self.kept + k
        for p, t in pooled.items():
            buf = self.bufs[p]
            if buf.shape[0] < end:  # grow: to the dataset's kept rows if known, else doubling
                want = -(-self.expected // self.stride) if self.expected else 0
                want = want if want >= end else 2 * end
                grown = torch.empty((min(cap, want), t.shape[1]), dtype=buf.dtype)
                grown[: self.kept] = buf[: self.kept]
                self.bufs[p] = buf = grown
            # a copy (converting to the kept dtype): t may be a buffer the next batch reuses
            buf[self.kept : end] = t[first - start :: self.stride]
        self.kept = end

    def result(self, path: str) -> np.ndarray:
        buf = self.bufs.get(path)
        if buf is None:
            return np.zeros((0, 0), np.float32)
        rows = buf[: self.kept]
        # a buffer grown by doubling may hold up to twice the kept rows: give back only these
        return (rows.clone() if buf.shape[0] > self.kept + self.kept // 4 else rows).numpy()


def leaf_layers(model: nn.Module) -> list[str]:
    """Paths of the model's leaf modules, in model order: what ``collect`` takes by default."""
    return [n for n, m in model.named_modules() if n and next(m.children(), None) is None]


def collect_every_layer(
    model: nn.Module, data: Any, first: str | None = None, **kwargs: Any
) -> Collected:
    """``collect`` of every leaf layer (and ``first``, put first) in one pass, leaving out with a
    note the layers that give no per-sample output: what a view does with data it can read only
    once (a generator), so that the user can still switch layers.

    >>> col = collect_every_layer(model, (batch for batch in stream), first="features.1")  # doctest: +SKIP
    """
    leaves = leaf_layers(model)
    layers = [first, *(p for p in leaves if p != first)] if first is not None else leaves
    return collect(model, data, layers, skip_missing=True, **kwargs)


def collect_into(
    cache: dict[str, Collected], model: nn.Module, data: Any, layers: Sequence[str], **kwargs: Any
) -> None:
    """``collect`` of the ``layers`` not in ``cache`` yet, in one pass over ``data``, stored in
    ``cache`` under each of them (a view that will show several layers pays one pass, not one
    each). With several, a layer that gives no per-sample output is left out with a note."""
    missing = [p for p in dict.fromkeys(layers) if p not in cache]
    if missing:
        col = collect(model, data, missing, skip_missing=len(missing) > 1, **kwargs)
        cache.update(dict.fromkeys(missing, col))


def _drop_missing(
    paths: list[str], outs: dict[str, torch.Tensor], b: int, notes: list[str]
) -> list[str]:
    """The layers of ``paths`` that gave a per-sample output (N, units, ...) in this batch."""
    kept = [p for p in paths if p in outs and outs[p].dim() >= 2 and outs[p].shape[0] == b]
    left = [p for p in paths if p not in kept]
    if not kept:
        raise RuntimeError(
            "no layer gave a per-sample output (N, ...) in the first batch: "
            f"{', '.join(repr(p) for p in paths[:8])}"
        )
    if left:
        shown = ", ".join(repr(p) for p in left[:6]) + (" …" if len(left) > 6 else "")
        notes.append(
            f"{len(left)} layer(s) left out: no per-sample output (N, ...) in the first batch "
            f"({shown})"
        )
    return kept


def _count(start: int, b: int, stride: int) -> int:
    """How many of the indices start..start + b - 1 are multiples of ``stride``."""
    return (start + b - 1) // stride - (start - 1) // stride


def _pool(w: torch.Tensor, pool: str | None) -> torch.Tensor:
    """(B, P, U) -> (B, D): mean or max over positions, or every position (None: D = U x P,
    unit-major, as ``as_units(out).flatten(1)``)."""
    if pool == "mean":
        return w.mean(dim=1)
    if pool == "max":
        return w.amax(dim=1)
    return w.transpose(1, 2).flatten(1)


class _Chunks:
    """Layer outputs of consecutive batches, units last, gathered until about ``budget`` values
    (all layers together) and then reduced at once: the statistics' per-op costs (dispatch,
    thread start-up, two host syncs) are paid per chunk, not per batch, which is what they cost
    most on small batches of small layers. A batch of half the budget or more is reduced on its
    own, uncopied. Memory: the buffers hold ``budget`` float32 values in all."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.cap: int | None = None  # rows a chunk holds
        self.bufs: dict[str, torch.Tensor] = {}
        self.rows = 0
        self.start = 0

    def fits(self, ws: dict[str, torch.Tensor], b: int) -> bool:
        if self.cap is None:
            per = sum(int(w[0].numel()) for w in ws.values())
            self.cap = self.budget // max(1, per)
        return self.cap >= 2 * b

    def room(self, b: int) -> bool:
        return self.cap is not None and self.rows + b <= self.cap

    def put(self, ws: dict[str, torch.Tensor], start: int, b: int) -> None:
        assert self.cap is not None
        if self.rows == 0:
            self.start = start
        for p, w in ws.items():
            buf = self.bufs.get(p)
            if buf is None:
                buf = torch.empty((self.cap, *w.shape[1:]), dtype=torch.float32, device=w.device)
                self.bufs[p] = buf
            buf[self.rows : self.rows + b].copy_(w)
        self.rows += b

    def take(self) -> tuple[dict[str, torch.Tensor], int]:
        out = {p: buf[: self.rows] for p, buf in self.bufs.items()}
        self.rows = 0
        return out, self.start


class _Worker:
    """One thread that reduces a batch while the main thread runs the next batch's forward.

    At most one batch is in flight (``submit`` waits for the one before), so the batches reduce
    in order, exactly as on the main thread, and memory holds one more batch of the collected
    layers' outputs. An error in the worker is raised by the next ``submit`` or ``wait``."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="layerscope-collect")
        self._pending: Future[None] | None = None

    def submit(self, fn: Any, *args: Any) -> None:
        self.wait()
        self._pending = self._pool.submit(fn, *args)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the batch in flight (its error, if the pass is failing anyway, is dropped:
        the first error is the one to report) and stop the thread."""
        pending, self._pending = self._pending, None
        if pending is not None:
            wait([pending])
        self._pool.shutdown()


def _spare_core() -> bool:
    """Whether this process may run on more cores than torch's threads use."""
    if not WORKER:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores > torch.get_num_threads()


def _check_args(pool: Any, top_k: Any, bins: Any, dtype: Any, max_bytes: Any) -> None:
    if pool not in POOLS:
        raise ValueError(f"pool must be 'mean', 'max' or None (keep every position), got {pool!r}")
    for name, v in (("top_k", top_k), ("bins", bins)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if dtype not in (torch.float16, torch.float32):
        raise ValueError(f"dtype must be torch.float16 or torch.float32, got {dtype!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive int (bytes), got {max_bytes!r}")


def collect(
    model: nn.Module,
    data: Any,
    layers: str | Sequence[str] | None = None,
    *,
    labels: Any = None,
    pool: str | None = "mean",
    top_k: int = 20,
    batch_size: int = 256,
    bins: int = 50,
    dtype: torch.dtype = torch.float16,
    max_bytes: int | str = DEFAULT_MAX_BYTES,
    loss_fn: Any = None,
    progress: bool = True,
    predict: bool = True,
    skip_missing: bool = False,
    **model_kwargs: Any,
) -> Collected:
    """Run ``model`` over ``data`` once and keep, per layer, what dataset-level views need.

    ``data``: a tensor (samples along dim 0, cut into ``batch_size`` batches), a tuple
    ``(inputs, labels)``, a ``DataLoader`` or any iterable of batches (inputs or (inputs, labels)).
    ``layers``: module path(s), default every leaf module. ``pool``: how a sample's representation
    is pooled over space/time ("mean", "max", or None to keep every position). ``max_bytes``
    caps the stored representations (int or "256MB"; see the module docstring for the rule when
    the data does not fit). ``loss_fn(output, labels)`` gives per-sample losses (default:
    cross-entropy for class outputs ``(N, C)`` with integer labels); ``predict=False`` skips
    predictions and losses (labels are still kept). ``skip_missing=True`` leaves out, with a
    note, the layers that give no per-sample output ``(N, ...)`` in the first batch (they did
    not run, or returned no tensor) instead of raising: what a view uses to collect every leaf
    layer of a one-shot iterable (a generator) in its one pass.

    >>> col = ls.inspect.collect(model, (x, y), layers=["features.2", "classifier.2"])  # doctest: +SKIP
    >>> col["features.2"].stats["frac_zero"]          # dead units: near 1.0          # doctest: +SKIP
    """
    check_module(model)
    if isinstance(max_bytes, str):
        from ..record.budget import parse_budget

        max_bytes = parse_budget(max_bytes)
    _check_args(pool, top_k, bins, dtype, max_bytes)
    paths = _layer_list(model, layers) if layers is not None else leaf_layers(model)
    if not paths:
        raise ValueError("the model has no leaf modules to collect from; pass layers=[...]")
    modules = {p: find_module(model, p) for p in paths}
    total = dataset_length(data)
    if total == 0:
        raise DatasetError("the dataset is empty: there are no samples to collect over")
    p0 = next(model.parameters(), None)
    device = p0.device if p0 is not None else torch.device("cpu")
    # float inputs go in the parameters' float dtype (a half-precision model takes half inputs)
    param_dtype = p0.dtype if p0 is not None and p0.is_floating_point() else None
    reps = _Reps(int(max_bytes), dtype, total)
    stats: dict[str, UnitStats] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    layouts: dict[str, str] = {}
    nonfinite_rows: dict[str, int] = dict.fromkeys(paths, 0)
    notes: list[str] = []
    scores = Scores(loss_fn, predict, notes)
    outs: dict[str, torch.Tensor] = {}
    one_shot = is_one_shot(data)
    n = 0
    input_shape: tuple[int, ...] = ()
    input_dtype = "float32"
    bar = Progress(total, "layerscope collect", "sample", enabled=progress)

    def hook(path: str) -> Any:
        def fn(_m: nn.Module, _i: Any, out: Any) -> None:
            t = first_tensor(out)
            if t is not None:
                outs[path] = t.detach()

        return fn

    # Chunks amortise per-op costs that exist with several threads (waking the pool, a barrier
    # per op: on a shared 2-core machine per-batch reduction cost 4x the chunked one) or on an
    # accelerator (a launch per op); on one CPU thread a batch at a time keeps the working set
    # in cache and was 5-6 % faster (bench/dataset.py, BENCHMARKS.md).
    chunked = device.type != "cpu" or torch.get_num_threads() > 1
    chunks = _Chunks(CHUNK_VALUES if chunked else 0)
    # On the CPU with numba, for a dataset big enough to repay loading the compiled kernel, one
    # pass of the fused kernel (fused.py) reduces each layer's batch as the layer laid it out:
    # no chunks, no units-last copy. Decided at the first batch, when the layers' sizes are known.
    one_pass = False
    # ... and with a core torch does not use, on a worker thread while the next batch's forward
    # runs (the kernel releases the GIL): see _Worker
    worker: _Worker | None = None
    scratch = Scratch()  # shared by the layers: 3 buffers of at most SCRATCH_VALUES

    def reduce(ws: dict[str, torch.Tensor], first: int, native: bool = False) -> None:
        """Statistics, pooled representations and the stored rows of samples ``first`` .. from
        ``ws[layer]``: (samples, positions, units), contiguous; ``native``: (samples, units,
        positions) as ``as_units`` gives them."""
        pooled: dict[str, torch.Tensor] = {}
        for p, w in ws.items():
            st = stats[p]
            if native:
                st.update_native(w, first)
                w = w.transpose(1, 2)
            else:
                # reused work buffers up to SCRATCH_VALUES: bounded memory, no fresh pages
                st.update_units_last(w, first, scratch if w.numel() <= SCRATCH_VALUES else None)
            rs, rm = st.last_rowsum, st.last_rowmax
            if pool is not None and rs is not None and rm is not None:
                # the statistics' per-sample sums and maxima are the pooled forms
                pr = rs / w.shape[1] if pool == "mean" else rm
            else:
                pr = _pool(w.float(), pool)
            # finite values, none above extent in size, pool to finite rows unless a sum of
            # positions can overflow float32
            if not st.last_all_finite or st.extent * w.shape[1] >= FLOAT32_MAX:
                nonfinite_rows[p] += int((~torch.isfinite(pr)).any(dim=1).sum())
            pooled[p] = pr
        reps.add(first, pooled, {p: stats[p].extent for p in ws})

    try:
        with preserved(model), torch.no_grad():
            model.eval()
            handles = [modules[p].register_forward_hook(hook(p)) for p in paths]
            try:
                for k, (xb, yb, start) in enumerate(
                    iter_batches(data, labels=labels, batch_size=batch_size)
                ):
                    if k == 0:
                        input_shape, input_dtype = (
                            tuple(xb.shape[1:]),
                            str(xb.dtype).replace("torch.", ""),
                        )
                    outs.clear()
                    x_dev = xb.to(device)
                    if x_dev.is_floating_point() and param_dtype is not None:
                        x_dev = x_dev.to(param_dtype)
                    output = model(x_dev, **model_kwargs)
                    b = xb.shape[0]
                    if k == 0 and skip_missing:
                        paths = _drop_missing(paths, outs, b, notes)
                    ws: dict[str, torch.Tensor] = {}
                    for p in paths:
                        if p not in outs:
                            raise RuntimeError(
                                f"layer {p!r} did not run (or returned no tensor) in the forward "
                                f"pass of batch {k}; choose layers that run, e.g. from "
                                "ls.inspect.trace(model, x)"
                            )
                        out = outs[p]
                        if out.shape[0] != b:
                            raise RuntimeError(
                                f"layer {p!r} returned shape {tuple(out.shape)}, whose first dim is "
                                f"not the batch ({b}); collect needs per-sample outputs"
                            )
                        if p not in stats:
                            shapes[p] = tuple(out.shape[1:])
                            layouts[p] = unit_layout(modules[p], tuple(out.shape))
                            units = as_units(out, layouts[p]).shape[1]
                            stats[p] = UnitStats(units, bins, bounds_of(modules[p]), top_k)
                        elif tuple(out.shape[1:]) != shapes[p]:
                            raise DatasetError(
                                f"layer {p!r} gave per-sample shape {tuple(out.shape[1:])} in batch "
                                f"{k} but {shapes[p]} before: the batches change shape; pad or "
                                "resize samples to one shape"
                            )
                        ws[p] = as_units(out, layouts[p])
                    if k == 0:
                        one_pass = device.type == "cpu" and fused.worth_it(
                            total, sum(int(w[0].numel()) for w in ws.values())
                        )
                    if one_pass:
                        if k == 0 and _spare_core():
                            worker = _Worker()
                        if worker is not None:
                            worker.submit(reduce, dict(ws), start, True)
                        else:
                            reduce(ws, start, native=True)
                    else:
                        ws = {p: w.transpose(1, 2) for p, w in ws.items()}  # units last
                        if chunks.rows and not chunks.room(b):
                            reduce(*chunks.take())
                        if chunks.fits(ws, b):
                            chunks.put(ws, start, b)
                        else:  # a batch big enough on its own: reduced at once, not copied first
                            reduce({p: w.contiguous() for p, w in ws.items()}, start)
                    scores.add(output, yb)
                    n += b
                    bar.update(b)
                    # let this batch's outputs go before the next forward pass: the allocator
                    # then reuses their memory (warm in cache) as the plain loop does
                    outs.clear()
                    ws.clear()
                    del output, x_dev
                if chunks.rows:
                    reduce(*chunks.take())
                if worker is not None:
                    worker.wait()
                scores.flush()
            finally:
                if worker is not None:
                    worker.close()
                for h in handles:
                    h.remove()
    finally:
        bar.close()
    if n == 0:
        if one_shot:
            raise DatasetError(
                f"the dataset is empty: the iterator ({type(data).__name__}) yielded no "
                "samples. An iterator such as a generator can be read only once; if it was "
                "read before (by an earlier collect or view), pass data that can be read again: "
                "a tensor, a tuple (inputs, labels), a DataLoader, or a list of batches"
            )
        raise DatasetError("the dataset is empty: it yielded no samples")
    if reps.stride > 1:
        notes.append(
            f"representations of {reps.kept:,} of {n:,} samples kept (every "
            f"{reps.stride}th: {format_mb(reps.per_sample() * n)} would exceed max_bytes="
            f"{format_mb(int(max_bytes))}); statistics and top-k cover all {n:,}"
        )
    layer_data = {}
    for p in paths:
        kept = reps.result(p)
        layer_data[p] = LayerData(
            path=p,
            shape=shapes[p],
            layout=layouts[p],
            bounds=stats[p].bounds,
            stats=stats[p].finish(),
            reps=kept,
            # no sample's row held NaN/Inf: none of the kept ones can (a scan of the kept rows
            # costs ~5 % of a small model's pass)
            nonfinite_reps=_nonfinite_kept(kept) if nonfinite_rows[p] else 0,
        )
    for p, c in nonfinite_rows.items():
        if c:
            notes.append(f"layer {p!r}: {c:,} samples have NaN/Inf in their representation")

    def cat(parts: list[np.ndarray]) -> np.ndarray | None:
        return np.concatenate(parts) if parts and sum(len(q) for q in parts) == n else None

    return Collected(
        n=n,
        layers=layer_data,
        rep_index=reps.index,
        rep_stride=reps.stride,
        max_bytes=int(max_bytes),
        pool=pool,
        labels=cat(scores.labels),
        predictions=cat(scores.predictions),
        probability=cat(scores.probability),
        loss=cat(scores.loss),
        input_shape=input_shape,
        input_dtype=input_dtype,
        notes=notes,
        data=data if sample_input(data, 0) is not None else None,
    )


def _nonfinite_kept(reps: np.ndarray) -> int:
    return int((~np.isfinite(reps)).any(axis=1).sum()) if reps.size else 0


def format_mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"
