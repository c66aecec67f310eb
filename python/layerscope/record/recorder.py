"""``Recorder``: a cheap record of a model's training, step by step and epoch by epoch.

>>> rec = ls.Recorder(model, probe=x_probe)              # doctest: +SKIP
>>> for epoch in range(E):                                # doctest: +SKIP
...     for xb, yb in loader:
...         loss = loss_fn(model(xb), yb); loss.backward(); rec.step(loss=loss)
...         opt.step(); opt.zero_grad()
...     rec.epoch(val_acc=acc)

What ``step()`` costs: the loss and scalars are kept as device tensors (no ``.item()``, no host
sync); per-parameter gradient norms are one ``torch._foreach_norm`` over the ``.grad`` tensors,
kept as 0-d device tensors (one torch call a step). They reach the host in one stack and one
copy at ``epoch()`` (or every 4096 steps). Under DDP the gradients and weights are the same on
every rank after the all-reduce, so one rank measures each step (the ranks other than 0 in turn)
and the epoch's all-reduce brings the norms to every rank: rank 0's ``step()`` records the loss.

The update ratio ‖Δw‖/‖w‖ of the optimizer step that follows step ``s`` is measured at the next
call (``step`` or ``epoch``): step ``s`` copies the parameters into reference buffers on the
device (allocated once: one model's worth of device memory) and the next call subtracts in place;
the norms of Δw and w join that step's one ``_foreach_norm``. That costs three passes over the
weights, about as much as the gradient norms, so by default it is done on every 10th step
(``ratio_every``; 1 for every step, 0 for never): a ratio curve needs no more. An optimizer that
did not step (gradient accumulation) gives NaN, not 0.

``every=k`` measures gradient norms on every k-th step only; loss and scalars are recorded on
every step.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..inspect.capture import capture
from ..inspect.modules import check_module, find_module
from . import distributed as dist_stats
from .budget import format_bytes, parse_budget
from .follow import DEFAULT_INTERVAL, Poller
from .histograms import DEFAULT_BINS, HistogramCounts, choose_edges, count
from .history import EpochRecord, Held, History, fill_derived
from .location import ShardedArray, load_array, open_location
from .policy import SnapshotPolicy, parse_snapshot, reduce_tensor
from .steplog import FLUSH_EVERY, RecorderWarning
from .store import RunStore, StoreError, load_history
from .summary import summarize, summarize_fused
from .tensors import dtype_name, host_copy, to_numpy
from .thinning import choose_drop, reduce_array, reduced_shape

AXES = ("epoch", "step")
_GRAD = ("grad",)
# Seconds a rank waits for the others in the Recorder's collectives before raising.
DEFAULT_TIMEOUT_S = 300.0

# A CPU model with at least this many parameter values is summarised on two threads.
PARALLEL_ELEMENTS = 1 << 22

# Tensors above this many values are what "reduced resolution" shrinks (a 256x256 image).
REDUCED_ELEMENTS = 256 * 256


class Recorder(History):
    """Record a model's training history within a memory budget, optionally also on disk.

    - ``probe``: a fixed input batch (tensor, tuple of positional inputs, or dict of keyword
      inputs) whose layer activations are captured at each ``epoch()``; ``probe_kwargs``: the
      model's keyword arguments for that pass beside positional probe inputs (``attention_mask=``);
    - ``store``: a directory; each epoch is also written there (see ``layerscope.record.store``).
      If it already holds a run (a re-run cell), the new run goes to a numbered sibling
      (``runs/exp1-2``; the repr says so) unless ``mode="append"``, ``"overwrite"`` or ``"refuse"``;
    - ``budget``: bytes of history held in memory ("512MB", "2GB", or an int). Beyond it, older
      epochs are thinned (see ``rec.thinned``; a warning says what);
    - ``layers``: module paths whose activations to record (default: every layer that ran, see
      ``inspect.capture``);
    - ``every``: measure gradient norms every ``every`` steps (loss and scalars: every step);
    - ``mode``: what to do with an existing run at ``store``: None or "new" (a new run in a
      numbered sibling), "refuse" (raise StoreConflictError), "append", "overwrite";
    - ``params``: parameter names or module paths to snapshot (default: all);
    - ``bins``: histogram bins, fixed per parameter at its first epoch;
    - ``reduced_elements``: size a thinned tensor is reduced to (default a 256x256 image);
    - ``ratio_every``: measure update ratios every N steps (default 10, 0: never);
    - ``snapshot``: what each epoch keeps of each parameter beyond its stats and histogram:
      "auto" (default), "full", "reduced", "stats", an int k (full every k epochs), a list of
      parameter names, or a ``SnapshotPolicy`` (see ``layerscope.record.policy`` for the default's
      sizing: a 1B-parameter model keeps ~75 MB per epoch);
    - ``axis``: "epoch", or "step" when ``epoch()`` is called every N steps (LLM training): the
      timeline's axis then counts steps;
    - ``reduce``: under torch.distributed, per-step scalars and ``epoch()`` metrics are rank 0's
      (None) or the mean over ranks ("mean");
    - ``storage_options``: passed to fsspec for a URL store (``s3://...``: ``{"key": ...,
      "endpoint_url": ...}``);
    - ``timeout``: seconds a rank waits for the others in the Recorder's collectives.

    Under ``torch.distributed`` (a ``torchrun`` job: DDP, or FSDP2 ``fully_shard``) the same calls
    work in every rank: statistics and histograms are computed on each rank's shard and
    all-reduced (O(tensors x bins) bytes, never the parameters; see ``rec.communicated``), rank 0
    writes the store, and each rank writes its own shards of sharded parameters. Call ``step``,
    ``epoch`` and ``close`` on every rank; ranks that disagree raise ``DistributedRecorderError``
    instead of hanging. A model wrapped in ``DistributedDataParallel`` is recorded as its
    ``.module`` (parameter names without the ``module.`` prefix). Under DDP, work that every
    rank would repeat is done once, and not by rank 0, which writes the store: each step's norms
    and each parameter's statistics by the other ranks in turn, the probe pass (its forward
    needs no collective) by the last rank, which writes the activations and their stats beside
    its shards for rank 0's manifest (without a store, rank 0 runs it). The per-step norms reach
    rank 0's in-memory history at ``epoch()`` (those after the last one at ``close()``), the
    activations once the epoch is written.

    ``epoch()`` copies every chosen parameter to the host (bit-exact), summarises it and runs the
    probe; histograms and activation stats are counted off the training loop (on first read,
    before thinning, or on the store's writer thread). A CPU model of 4M or more values whose
    torch runs one thread is summarised on two threads. ``budget`` counts host memory; the
    update-ratio reference buffers are one copy of the parameters on their device. With AMP's
    ``GradScaler``, call ``rec.step()`` after ``scaler.unscale_(opt)`` to record true gradient norms.

    Bad inputs do not stop training: a NaN loss is recorded and flagged, a non-scalar loss is
    recorded as its mean and flagged (both in ``rec.flags``, with one warning); parameters added
    or removed and device/dtype moves are detected and flagged. If writing the store fails (full
    or read-only disk) the Recorder warns once, keeps the error in ``rec.store_error`` and goes on
    in memory only: losing the training run would be worse than losing its record on disk. A store
    that cannot be created at all raises ``StoreError`` at construction, before training starts.

    >>> rec = Recorder(model, probe=x[:32], store="runs/exp1")   # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        probe: Any = None,
        store: str | Path | None = None,
        budget: int | str = "512MB",
        layers: str | Sequence[str] | None = None,
        every: int = 1,
        mode: str | None = None,
        *,
        params: str | Sequence[str] | None = None,
        bins: int = DEFAULT_BINS,
        reduced_elements: int = REDUCED_ELEMENTS,
        ratio_every: int = 10,
        probe_kwargs: dict[str, Any] | None = None,
        snapshot: Any = "auto",
        axis: str = "epoch",
        reduce: str | None = None,
        storage_options: dict[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self._given_ddp = _is_ddp(model)
        model = _unwrap_ddp(model)
        self.model = check_module(model)
        if axis not in AXES:
            raise ValueError(
                f"axis must be 'epoch' or 'step' (epoch() called every N steps), got {axis!r}"
            )
        self._axis = axis
        if reduce not in (None, "mean"):
            raise ValueError(f"reduce must be None (rank 0's values) or 'mean', got {reduce!r}")
        self.reduce = reduce
        self._dist = dist_stats.Collectives(timeout) if dist_stats.active() else None
        self.rank = self._dist.rank if self._dist is not None else 0
        self.world = self._dist.world if self._dist is not None else 1
        # Norm rows summed over the ranks at epoch(); None: another rank measured that value.
        self._dist_rows: list[
            tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], list[torch.Tensor | None]]
        ] = []
        self._communicated: list[int] = []
        self.budget = parse_budget(budget)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(
                f"every must be a positive int (measure grads every N steps), got {every!r}"
            )
        self.every = every
        if not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be a positive int, got {bins!r}")
        self.bins = bins
        self.reduced_elements = int(reduced_elements)
        if isinstance(ratio_every, bool) or not isinstance(ratio_every, int) or ratio_every < 0:
            raise ValueError(
                f"ratio_every must be an int >= 0 (measure update ratios every N steps, 0: never), "
                f"got {ratio_every!r}"
            )
        self.ratio_every = ratio_every
        self._sampling = {"grad_norms_every": every, "update_ratios_every": ratio_every}
        self._probe_args, self._probe_kwargs = _probe_inputs(probe)
        if probe_kwargs:
            # the model's keyword arguments for the probe pass (attention_mask=, ...)
            extra = _probe_inputs(dict(probe_kwargs))[1]
            self._probe_kwargs = {**self._probe_kwargs, **extra}
            if self._probe_args is None:
                self._probe_args = ()
        self._layers = _check_layers(model, layers)
        self._param_filter = _check_params(model, params)
        chosen = [(n, p) for n, p in model.named_parameters() if self._chosen(n)]
        param_bytes = sum(p.numel() * p.element_size() for _, p in chosen)
        self.policy: SnapshotPolicy = parse_snapshot(snapshot, param_bytes, [n for n, _ in chosen])
        self.store_error: StoreError | None = None
        self._store: RunStore | None = None
        self._next_epoch = 0
        # The previous epoch's parameters (for "change since the last snapshot"); False: reduced.
        self._last: dict[str, tuple[np.ndarray, bool]] = {}
        if store is not None:
            self._open_store(store, mode, storage_options)
        elif mode is not None:
            raise ValueError("mode= applies to a store: pass store='runs/NAME' with it")
        self._flags_saved = (len(self._log.flags), len(self._flags))  # already in the store
        self._listeners: list[Callable[[int], None]] = []
        self._names: tuple[str, ...] | None = None
        self._ids: tuple[int, ...] = ()
        self._named: list[tuple[str, nn.Parameter]] = []
        self._grad_names: tuple[str, ...] = ()
        self._grad_list: list[torch.Tensor] = []
        self._ref: list[torch.Tensor] | None = None
        self._ref_step: int | None = None
        self._device = torch.device("cpu")
        self._dtype = torch.float32
        self._uniform = True
        self._grad_params: list[torch.Tensor] = []
        self._sharded: dict[str, int] = {}  # parameter -> shard dim (FSDP2)
        self._shared_steps = False  # DDP: one rank measures each step's norms (see _measures)
        self._step_sq: tuple[list[Any], np.ndarray] | None = None
        self._model_sig = 0.0
        self._pool: ThreadPoolExecutor | None = None
        self._refresh_params()
        # DDP with a store: the rank that runs the probe and writes its activations (see
        # _probe_here); 0: rank 0 runs it and the activations go in its manifest.
        self._acts_rank = 0
        if (
            self._given_ddp
            and not self._sharded
            and self.world > 1
            and self._store is not None
            and self._probe_args is not None
        ):
            self._acts_rank = self.world - 1
        self._acts_out: dict[str, np.ndarray] = {}
        if self._dist is not None:
            self._dist.header(2.0, 0, self._model_sig, 0.0)

    def _open_store(
        self, store: str | Path, mode: str | None, storage_options: dict[str, Any] | None
    ) -> None:
        meta = {
            "axis": self._axis,
            "world": self.world,
            "policy": self.policy.describe(),
            "sampling": self._sampling,
        }
        model_name = type(self.model).__name__
        if model_name.startswith("FSDP") and any(
            c.__name__ == model_name[4:] for c in type(self.model).__mro__
        ):  # fully_shard swaps the class for FSDP<Name>
            model_name = model_name[4:]
        error: BaseException | None = None
        try:
            self._store = RunStore(
                store,
                mode if self.rank == 0 else "append",
                model_name,
                storage_options=storage_options,
                rank=self.rank,
                world=self.world,
                meta=meta,
            )
        except Exception as e:
            error = e
        if self._dist is not None:
            # Every rank learns whether rank 0 could open the store (else the others would wait
            # for it in the first epoch's collectives).
            ok = self._dist.all_reduce(
                torch.tensor([0.0 if error else 1.0]), dist_stats.dist.ReduceOp.MIN, "store check"
            )
            if error is None and float(ok[0]) < 1:
                raise StoreError(
                    f"layerscope.Recorder (rank {self.rank}): another rank could not open the store "
                    f"{store}; see that rank's error"
                )
        if error is not None:
            raise error
        assert self._store is not None
        if self._store.appending and self.rank == 0:
            load_history(self._store.loc, self)
            self._next_epoch = max(self._records, default=-1) + 1
            if self._records:
                last = self._records[max(self._records)]
                self._last = {
                    n: (load_array(h.path), True)
                    for n, h in last.params.items()
                    if h.path is not None and h.path_exact and not isinstance(h.path, ShardedArray)
                }

    @property
    def axis(self) -> str:
        return self._axis

    @property
    def communicated(self) -> list[int]:
        """Bytes this rank sent in the Recorder's all-reduces, per epoch (empty when not distributed)."""
        return list(self._communicated)

    # -- step ----------------------------------------------------------------------------------

    def step(self, loss: Any = None, **scalars: Any) -> None:
        """Record one training step: ``loss`` and named scalars (numbers or scalar tensors, kept on
        the device), and the gradient norm of each parameter (call it after ``loss.backward()``).

        >>> rec.step(loss=loss, lr=sched.get_last_lr()[0])      # doctest: +SKIP
        """
        s = self._log.count
        self._log.count = s + 1
        if loss is not None:
            self._log.add_value("loss", s, loss)
        for name, value in scalars.items():
            self._log.add_value("scalar:" + name, s, value)
        if self._grad_list:
            self._tensor_step(s)
        if self._log.pending >= FLUSH_EVERY and not (self._dist is not None and self.reduce):
            self._log.flush()
        if self._store is not None and self._store.error is not None:
            self._store_failed()

    def log(self, **scalars: Any) -> None:
        """Add scalars (``loss=`` included) to the most recent step, e.g. from a callback that
        learns the loss after ``step()`` ran; a value given twice for a step keeps the last.

        >>> rec.step(); rec.log(loss=outputs["loss"])           # doctest: +SKIP
        """
        if self._log.count == 0:
            raise LookupError("no step recorded yet: call rec.step() first")
        s = self._log.count - 1
        for name, value in scalars.items():
            self._log.add_value("loss" if name == "loss" else "scalar:" + name, s, value)

    def _tensor_step(self, s: int) -> None:
        if self._sharded:  # FSDP2: the local shards (the DTensor may hand out a new local view)
            self._grad_list = [dist_stats.local_part(p)[0] for p in self._grad_params]
        p0 = self._grad_list[0]
        if p0.dtype is not self._dtype or p0.device != self._device:
            self._moved(s, p0)
        mine = self._measures(s)
        reference = self.ratio_every > 0 and s % self.ratio_every == 0
        if not mine and self._ref_step is None and not reference:  # DDP: another rank's step
            if s % self.every == 0:
                self._dist_rows.append((self._grad_names, _GRAD, (s,), self._zeros(1)))
            return
        if self._ref_step is None and not reference:
            # Most steps: the gradient norms only, one _foreach_norm (no stack: the 0-d norms
            # are stacked all at once when the step log is flushed).
            if s % self.every == 0:
                norms: list[torch.Tensor | None] = self._zeros(1)
                if mine:
                    with torch.no_grad():
                        norms = list(self._norms([self._grads()]))
                self._add_row(_GRAD, (s,), norms)
            return
        # At most three torch calls a step, whatever the number of parameters: the update after
        # the reference step (ref -= w), one _foreach_norm over [Δ, grads, w], ref <- w. Under
        # DDP the kinds and steps of a row are the same on every rank, its values come from the
        # rank that measured them (zeros elsewhere).
        with torch.no_grad():
            parts: list[tuple[str, int, Sequence[torch.Tensor | None] | None]] = []
            if self._ref_step is not None:
                r = self._ref_step
                if self._ref is not None and self._measures(r):  # the rank that took the reference
                    torch._foreach_sub_(self._ref, self._grad_list)  # now -Δw
                    parts.append(("delta", r, self._ref))
                else:
                    parts.append(("delta", r, None))
                self._ref_step = None
            if s % self.every == 0:
                parts.append(("grad", s, self._grads() if mine else None))
            if reference:
                parts.append(("wnorm", s, self._grad_list if mine else None))
            if parts:
                self._add_row(
                    tuple(k for k, _, _ in parts), tuple(st for _, st, _ in parts), self._row(parts)
                )
            if reference:
                if mine:
                    if self._ref is None:
                        self._ref = [p.detach().clone() for p in self._grad_list]
                    else:
                        torch._foreach_copy_(self._ref, self._grad_list)
                self._ref_step = s

    def _row(
        self, parts: list[tuple[str, int, Sequence[torch.Tensor | None] | None]]
    ) -> list[torch.Tensor | None]:
        """The norms of the parts this rank measured (one _foreach_norm), zeros for the others'."""
        measured = [ts for _, _, ts in parts if ts is not None]
        norms = iter(self._norms(measured) if measured else [])
        n = len(self._grad_names)
        row: list[torch.Tensor | None] = []
        for _, _, ts in parts:
            row += [next(norms) for _ in range(n)] if ts is not None else self._zeros(1)
        return row

    def _measures(self, s: int) -> bool:
        """Whether this rank measures step ``s``'s norms: always, except for a model given as
        ``DistributedDataParallel`` (no shards), whose gradients and weights are the same on every
        rank after the all-reduce, so one rank measures each step: the ranks other than 0 in turn
        (rank 0 writes the store); the epoch's SUM brings the rows to every rank."""
        if not self._shared_steps:
            return True
        return 1 + s % (self.world - 1) == self.rank

    def _zeros(self, kinds: int) -> list[torch.Tensor | None]:
        """Another rank's part of a row (None: summed as zeros, see ``_measured_to_host``)."""
        return [None] * (kinds * len(self._grad_names))

    def _finish_update(self) -> None:
        """Measure the update that followed the last measured step (the weights are final now)."""
        assert self._ref_step is not None
        r = self._ref_step
        if self._ref is not None and self._measures(r):
            with torch.no_grad():
                torch._foreach_sub_(self._ref, self._grad_list)
                row: list[torch.Tensor | None] = list(self._norms([self._ref]))
        else:
            row = self._zeros(1)
        self._add_row(("delta",), (r,), row)
        self._ref_step = None

    def _grads(self) -> list[torch.Tensor | None]:
        if not self._sharded:
            return [p.grad for p in self._grad_list]
        return [
            None if p.grad is None else dist_stats.local_part(p.grad)[0] for p in self._grad_params
        ]

    def _add_row(
        self, kinds: tuple[str, ...], steps: tuple[int, ...], row: list[torch.Tensor | None]
    ) -> None:
        if self._sharded or self._shared_steps:  # summed over ranks at epoch()
            self._dist_rows.append((self._grad_names, kinds, steps, row))
        else:  # every value measured here: no None
            self._log.add_row(self._grad_names, kinds, steps, row)  # type: ignore[arg-type]

    def _norms(self, lists: Sequence[Sequence[torch.Tensor | None]]) -> list[torch.Tensor]:
        """The L2 norms of all tensors in ``lists``, 0-d tensors on the device (NaN for a missing
        grad): no host sync."""
        flat = [t for group in lists for t in group]
        if self._uniform and not any(t is None for t in flat):
            try:
                return list(torch._foreach_norm(flat))  # type: ignore[arg-type]
            except RuntimeError:  # grads on another device or dtype than their parameters
                self._uniform = False
        present = [t for t in flat if t is not None]
        norms = iter(torch._foreach_norm(present) if present else [])
        nan = torch.full((), math.nan, device=self._device)
        return [next(norms).to(self._device, torch.float32) if t is not None else nan for t in flat]

    def _moved(self, s: int, p0: torch.Tensor) -> None:
        # The model went to another device or dtype: settle what is pending (one host sync, once)
        # and start the update-ratio reference afresh.
        self._log.flush()
        self._flags.append(
            {
                "step": s,
                "flag": "device_changed",
                "from": f"{self._device}/{dtype_name_of(self._dtype)}",
                "to": f"{p0.device}/{dtype_name_of(p0.dtype)}",
            }
        )
        self._ref = None
        self._ref_step = None
        self._set_layout()

    def _set_layout(self) -> None:
        params = self._grad_list
        self._device = params[0].device if params else torch.device("cpu")
        self._dtype = params[0].dtype if params else torch.float32
        self._uniform = all(p.device == self._device and p.dtype == self._dtype for p in params)

    def _refresh_params(self) -> None:
        named = [(n, p) for n, p in self.model.named_parameters() if self._chosen(n)]
        if self._dist is not None:
            self._sharded = {}
            for n, p in named:
                _, dim = dist_stats.local_part(p)
                if dim is not None:
                    self._sharded[n] = dim
            self._model_sig = dist_stats.signature([(n, tuple(p.shape)) for n, p in named])
            # (a model given as DDP: its gradients are synchronized; a bare module may not be)
            self._shared_steps = self._given_ddp and not self._sharded and self.world > 1
        names = tuple(n for n, _ in named)
        ids = tuple(id(p) for _, p in named)
        if self._names is not None and (names != self._names or ids != self._ids):
            old = dict(zip(self._names, self._ids, strict=True))
            new = dict(zip(names, ids, strict=True))
            self._flags.append(
                {
                    "step": self._log.count,
                    "epoch": self._next_epoch,
                    "flag": "parameters_changed",
                    "added": [n for n in names if n not in old],
                    "removed": [n for n in self._names if n not in new],
                    "replaced": [n for n in names if n in old and old[n] != new[n]],
                }
            )
        self._names, self._ids = names, ids
        self._named = named
        grad = [(n, p) for n, p in named if p.requires_grad]
        if [id(p) for _, p in grad] != [id(p) for p in self._grad_params]:
            self._ref = None
            self._ref_step = None
        self._grad_names = tuple(n for n, _ in grad)
        self._grad_params = [p for _, p in grad]
        self._grad_list = [dist_stats.local_part(p)[0] if self._sharded else p for _, p in grad]
        self._set_layout()

    def _chosen(self, name: str) -> bool:
        if self._param_filter is None:
            return True
        return any(name == f or name.startswith(f + ".") or f == "" for f in self._param_filter)

    # -- epoch ---------------------------------------------------------------------------------

    def epoch(self, **metrics: Any) -> int:
        """Snapshot the model at the end of an epoch; return the epoch's number.

        Records every chosen parameter (bit-exact), its histogram on fixed bins, stats and change
        since the previous epoch; the activations of the chosen layers on the probe batch; and the
        ``metrics`` (numbers or scalar tensors). The model is left as it was (DESIGN.md promises).

        >>> rec.epoch(val_acc=0.97)        # doctest: +SKIP
        3
        """
        values = {k: _metric(k, v) for k, v in metrics.items()}
        if self._grad_list:
            if self._sharded:
                self._grad_list = [dist_stats.local_part(p)[0] for p in self._grad_params]
            p0 = self._grad_list[0]
            if p0.device != self._device or p0.dtype != self._dtype:
                self._moved(self._log.count, p0)
            elif self._ref_step is not None:
                self._finish_update()
        e = self._next_epoch
        sent_before = self._dist.bytes_sent if self._dist is not None else 0
        if self._dist is not None:
            values = self._sync_steps(e, values)
        self._log.flush()
        self._refresh_params()
        record = EpochRecord(epoch=e, step=self._log.count, time=time.time(), metrics=values)
        skipped: list[dict[str, Any]] = []
        shards: dict[str, tuple[np.ndarray, int, bool]] = {}
        # A DDP model's probe pass first: while rank 0 runs it, the other ranks summarise the
        # parameters (see distributed.owners), and it needs no collective. A sharded model's
        # after its statistics: its forward gathers parameters and may leave them unsharded.
        probe_first = not self._sharded
        if probe_first:
            self._probe(record)
        if self._dist is not None:
            self._snapshot_params_dist(record, skipped, shards)
            self._communicated.append(self._dist.bytes_sent - sent_before)
            self._log.flush()  # the step norms the SUM brought
        else:
            self._snapshot_params(record, skipped)
        if skipped:
            self._thinned.extend(skipped)
            if any(a["action"] == "policy_reduced" for a in skipped):
                self._policy_reduced.add(e)
        if not probe_first:
            self._probe(record)
        self._records[e] = record
        self._recount(record)
        self._next_epoch = e + 1
        if self._store is not None:
            if self.rank == self._acts_rank != 0:  # this rank ran the probe: its acts, always
                # (and whether the probe failed: every rank flags the rest alike)
                n_rec = len(self._flags)
                failed = [
                    f for f in self._flags[self._flags_saved[1] :] if f["flag"] == "probe_failed"
                ]
                self._store.submit_shards(e, shards, self._acts_out, failed)
                self._flags_saved = (self._flags_saved[0], n_rec)
                self._acts_out = {}
            elif shards:
                self._store.submit_shards(e, shards)
            if self.rank == 0:
                n_log, n_rec = self._flags_saved
                new_flags = [*self._log.flags[n_log:], *self._flags[n_rec:]]
                self._flags_saved = (len(self._log.flags), len(self._flags))
                sharded = {
                    n: {
                        "dim": self._sharded[n],
                        "shape": record.param_stats[n]["shape"],
                        "dtype": record.param_stats[n]["dtype"],
                    }
                    for n in shards
                }
                self._store.submit(
                    record,
                    self._log.take_unsaved(),
                    self._edges,
                    new_flags,
                    sharded=sharded,
                    extra={"skipped": skipped},
                    acts_from=self._acts_rank or None,
                )
            else:
                self._log.take_unsaved()
            if self._store.error is not None:
                self._store_failed()
        else:
            self._log.take_unsaved()
        self._enforce_budget()
        for callback in list(self._listeners):
            try:
                callback(e)
            except Exception as exc:  # a view's bug must not stop training
                warnings.warn(
                    f"layerscope.Recorder: an on_epoch callback failed ({exc!r}); training goes on.",
                    RecorderWarning,
                    stacklevel=2,
                )
        return e

    def on_epoch(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(epoch)`` after each recorded epoch (a live view refreshes from it);
        returns a function that unsubscribes. A failing callback warns, never stops training.

        >>> stop = rec.on_epoch(lambda e: print("epoch", e))     # doctest: +SKIP
        """
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _snapshot_params(self, record: EpochRecord, skipped: list[dict[str, Any]]) -> None:
        levels: dict[str, list[str]] = {"reduced": [], "stats": []}
        last: dict[str, tuple[np.ndarray, bool]] = {}
        with torch.no_grad():
            for name, level, stats, hist, held, change in self._map_params(
                lambda n, p: self._snapshot_param(n, p, record.epoch)
            ):
                record.param_stats[name] = stats
                if hist is not None:
                    record.hist[name] = hist
                if level != "full":
                    levels[level].append(name)
                if held is None:
                    continue
                record.params[name] = held
                if change is not None:
                    record.change[name] = change
                assert held.array is not None
                last[name] = (held.array, held.exact)
        self._last = last
        self._policy_entries(record.epoch, levels, skipped)

    def _snapshot_param(
        self, name: str, p: torch.Tensor, epoch: int
    ) -> tuple[str, str, dict[str, Any], HistogramCounts | None, Held | None, float | None]:
        """One parameter's epoch: stats where it lives, then per the policy its histogram (when
        no full copy is kept: counted now) and a full or reduced host copy, and its change."""
        with torch.no_grad():
            # Stats where the tensor lives (cheap on a GPU), then one copy out. The bins are
            # fixed at a parameter's first epoch; the histogram of a full copy is counted later,
            # off the training loop (see fill_derived).
            level = self.policy.level(name, epoch)
            edges = self._edges.get(name)
            known = edges is not None and len(edges) == self.bins + 1
            # A big CPU tensor: stats (and the histogram, when counted now on known bins) in
            # one pass over cache-sized chunks; else the usual passes.
            fused = summarize_fused(p, edges if known and level != "full" else None)
            stats, hist = fused if fused is not None else (summarize(p), None)
            if not known:
                edges = self._edges[name] = choose_edges(stats["min"], stats["max"], self.bins)
            assert edges is not None
            if level != "full":
                if hist is None:
                    hist = count(p, edges, stats)
                if level == "stats":
                    return name, level, stats, hist, None, None
                array, exact = reduce_tensor(p, self.reduced_elements), False
                held = Held(tuple(p.shape), dtype_name(p), False, array)
            else:
                t = host_copy(p)
                array, exact = to_numpy(t), True
                held = Held(tuple(t.shape), dtype_name(t), True, array)
            prev = self._last.get(name)
            change = None
            if prev is not None:
                change = _change(prev, array, exact, self.reduced_elements)
            return name, level, stats, hist, held, change

    def _map_params(self, work: Callable[[str, torch.Tensor], Any]) -> list[Any]:
        """``work(name, param)`` for every chosen parameter, in order. A big model on the CPU
        whose torch runs one thread (torchrun's default, or set_num_threads(1)) is split over
        two threads: the passes over its tensors are what epoch() costs, and torch's kernels
        run without the GIL."""
        named = self._named
        big = (
            torch.get_num_threads() == 1
            and (os.cpu_count() or 1) > 1
            and sum(p.numel() for _, p in named) >= PARALLEL_ELEMENTS
            and all(p.device.type == "cpu" for _, p in named)
        )
        if not big:
            return [work(n, p) for n, p in named]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="layerscope-epoch")
        return list(self._pool.map(lambda item: work(*item), named))

    def _policy_entries(
        self, epoch: int, levels: dict[str, list[str]], skipped: list[dict[str, Any]]
    ) -> None:
        for level, names in levels.items():
            if names:
                skipped.append(
                    {
                        "epoch": epoch,
                        "action": f"policy_{level}",
                        "tensors": names,
                        "on_disk": False,
                        "policy": self.policy.describe(),
                    }
                )

    def _sync_steps(self, e: int, metrics: dict[str, float]) -> dict[str, float]:
        """Distributed: check the ranks agree, sum the shards' squared step norms, average the
        step values and metrics when ``reduce="mean"``. Returns the epoch's metrics."""
        assert self._dist is not None
        rows = self._dist_rows
        self._dist_rows = []
        flat = _measured_to_host(rows) if rows else None
        keys: list[str] = []
        if self.reduce == "mean":
            keys = sorted(self._log._values)
        counts = [len(self._log._values[k][0]) for k in keys]
        what = f"{0 if flat is None else flat.size}|{keys}|{counts}|{sorted(metrics)}"
        all_ok = self._dist.header(
            dist_stats.EPOCH, e, self._model_sig, float(zlib.crc32(what.encode())), self._store_ok()
        )
        if not all_ok:
            self._peer_store_failed()
        self._step_sq = None
        if flat is not None:
            sq = flat * flat
            if self.rank != 0 and not self._shared_steps:
                sq = self._rank0_stands_for_replicated(rows, sq)
            # Summed over the ranks in the parameters' SUM (see _snapshot_params_dist): the
            # shards' squared norms add up, and a DDP step's norms come from the one rank
            # that measured them (the others hold zeros there).
            self._step_sq = (rows, sq)
        if self.reduce == "mean" and (keys or metrics):
            parts = [
                torch.stack(
                    [torch.as_tensor(v, dtype=torch.float64).cpu() for v in self._log._values[k][1]]
                )
                for k in keys
            ]
            mnames = sorted(metrics)
            parts.append(torch.tensor([metrics[k] for k in mnames], dtype=torch.float64))
            total = (
                self._dist.all_reduce(torch.cat(parts), dist_stats.dist.ReduceOp.SUM, "step values")
                / self.world
            )
            offset = 0
            for k, c in zip(keys, counts, strict=True):
                self._log._values[k] = (self._log._values[k][0], list(total[offset : offset + c]))
                offset += c
            metrics = {k: float(total[offset + i]) for i, k in enumerate(mnames)}
        return metrics

    def _rank0_stands_for_replicated(self, rows: list[Any], sq: np.ndarray) -> np.ndarray:
        """A sharded model's squared step norms, zero for its replicated tensors on ranks > 0:
        rank 0's stand for all."""
        offset = 0
        for names, kinds, _, _row in rows:
            replicated = np.asarray([n not in self._sharded for n in names])
            for _k in kinds:
                sq[offset : offset + len(names)][replicated] = 0.0
                offset += len(names)
        return sq

    def _snapshot_params_dist(
        self,
        record: EpochRecord,
        skipped: list[dict[str, Any]],
        shards: dict[str, tuple[np.ndarray, int, bool]],
    ) -> None:
        """Stats and histograms from every rank's shard, all-reduced (see ``distributed``): a
        shard by each rank, a replicated tensor by the one rank that ``distributed.owners`` names."""
        assert self._dist is not None
        d = dist_stats
        rank0 = self.rank == 0
        bins = self.bins
        op = d.dist.ReduceOp
        locals_: list[tuple[str, torch.Tensor, torch.Tensor, int | None]] = []
        for name, p in self._named:
            local, dim = d.local_part(p)
            locals_.append((name, p, local, dim))
        n = len(locals_)
        sharded = [i for i, item in enumerate(locals_) if item[3] is not None]
        replicated = [i for i, item in enumerate(locals_) if item[3] is None]
        owner = d.owners(
            [None if item[3] is not None else item[2].numel() for item in locals_], self.world
        )
        with torch.no_grad():
            # The shards' edges known (all epochs but the first): every histogram rides in the
            # one SUM (a replicated tensor's summarising rank chooses its first edges itself).
            hist_now = all(self._known_edges(locals_[i][0]) for i in sharded)
            width = 9 + (bins + 2 if hist_now else 0)
            rows = np.zeros((n, width))
            # what this rank summarises
            which = [
                i for i, (*_, dim) in enumerate(locals_) if dim is not None or owner[i] == self.rank
            ]
            part = np.zeros((len(which), width))
            mine = self._local_rows(which, locals_, part, hist_now)
            rows[which] = part
            fps = np.zeros(2 * len(replicated))
            for k, i in enumerate(replicated):
                f = d.fingerprint(locals_[i][2])
                fps[2 * k : 2 * k + 2] = f, f * f
            lows = np.zeros((0, 2))
            if sharded:
                mins = np.asarray([[mine[i][1], -mine[i][2]] for i in sharded], np.float64)
                lows = (
                    self._dist.all_reduce(
                        torch.from_numpy(mins.reshape(-1)), op.MIN, "parameter stats"
                    )
                    .numpy()
                    .reshape(-1, 2)
                )
            step_rows, step_sq = self._step_sq if self._step_sq is not None else ([], np.zeros(0))
            self._step_sq = None
            both = self._dist.all_reduce(
                torch.from_numpy(np.concatenate([rows.reshape(-1), fps, step_sq])),
                op.SUM,
                "parameter stats",
            ).numpy()
            if step_rows:
                total = np.sqrt(both[len(both) - len(step_sq) :]).astype(np.float32)
                self._log.add_rows(step_rows, total)
                both = both[: len(both) - len(step_sq)]
            tot = both[: n * width].reshape(n, width).copy()
            for k, i in enumerate(sharded):
                tot[i, 7], tot[i, 8] = lows[k, 0], -lows[k, 1]
            for i in range(n):
                self._settle(record, locals_[i], tot[i])
            f_sums = both[n * width :].reshape(-1, 2)
            differ = [
                locals_[i][0]
                for k, i in enumerate(replicated)
                if d.differ(f_sums[k, 0], f_sums[k, 1], self.world)
            ]
            if differ:
                self._flags.append(
                    {
                        "step": self._log.count,
                        "epoch": record.epoch,
                        "flag": "params_differ_between_ranks",
                        "params": differ,
                    }
                )
                warnings.warn(
                    f"layerscope.Recorder: parameter(s) {differ[:5]} differ between ranks although "
                    "they are not sharded (DDP keeps them equal; something changed one rank's "
                    f"copy). Recording rank 0's (flagged in rec.flags).",
                    RecorderWarning,
                    stacklevel=3,
                )
                # Every rank saw the same sums: rank 0 summarises those tensors instead of the
                # rank whose turn it was (one more small all-reduce, only in this case).
                idx = [i for i, item in enumerate(locals_) if item[0] in differ]
                redo = np.zeros((len(idx), width))
                for i in idx:
                    mine.pop(i, None)
                if rank0:
                    mine.update(self._local_rows(idx, locals_, redo, hist_now))
                again = (
                    self._dist.all_reduce(
                        torch.from_numpy(redo.reshape(-1)), op.SUM, "parameter stats"
                    )
                    .numpy()
                    .reshape(len(idx), width)
                )
                for k, i in enumerate(idx):
                    tot[i] = again[k]
                    self._settle(record, locals_[i], tot[i])
            if hist_now:
                counts = tot[:, 9:]
            else:  # a sharded model's first epoch: bins from the min/max just reduced, then counts
                hrows = np.zeros((n, bins + 2))
                for i, mom in mine.items():
                    name, _, local, _ = locals_[i]
                    hrows[i] = d.local_histogram(local, self._edges[name], mom)
                counts = (
                    self._dist.all_reduce(torch.from_numpy(hrows.reshape(-1)), op.SUM, "histograms")
                    .numpy()
                    .reshape(n, bins + 2)
                )
            levels: dict[str, list[str]] = {"reduced": [], "stats": []}
            last: dict[str, tuple[np.ndarray, bool]] = {}
            for i, (name, param, local, dim) in enumerate(locals_):
                c = counts[i].astype(np.int64)
                record.hist[name] = HistogramCounts(
                    c[:-2].copy(), int(c[-2]), int(c[-1]), int(record.param_stats[name]["nan"])
                )
                level = self.policy.level(name, record.epoch)
                if dim is not None:
                    # A shard is written by its own rank, never gathered. Reduced: each rank
                    # reduces its rows with the whole parameter's blocks (rows split on dim 0
                    # only), so the shards' images stack into the parameter's image.
                    shape = tuple(param.shape)
                    if level == "full" and self._store is not None:
                        t = host_copy(local)
                        shards[name] = (to_numpy(t), dim, True)
                        if rank0:
                            record.params[name] = Held(shape, dtype_name(t), True)
                    elif level == "reduced" and dim == 0 and self._store is not None:
                        factors = reduced_shape(shape or (1,), self.reduced_elements)
                        image = reduce_tensor(local, self.reduced_elements, factors)
                        shards[name] = (image, dim, False)
                        levels["reduced"].append(name)
                        if rank0:
                            record.params[name] = Held(shape, dtype_name(local), False)
                    else:
                        levels["stats"].append(name)
                    continue
                if not rank0:
                    continue
                if level == "stats":
                    levels["stats"].append(name)
                    continue
                if level == "reduced":
                    levels["reduced"].append(name)
                    array, exact = reduce_tensor(local, self.reduced_elements), False
                    record.params[name] = Held(tuple(param.shape), dtype_name(local), False, array)
                else:
                    t = host_copy(local)
                    array, exact = to_numpy(t), True
                    record.params[name] = Held(tuple(t.shape), dtype_name(t), True, array)
                prev = self._last.get(name)
                if prev is not None:
                    record.change[name] = _change(prev, array, exact, self.reduced_elements)
                last[name] = (array, exact)
            self._last = last
        self._policy_entries(record.epoch, levels, skipped)

    def _known_edges(self, name: str) -> bool:
        edges = self._edges.get(name)
        return edges is not None and len(edges) == self.bins + 1

    def _local_rows(
        self,
        which: list[int],
        locals_: list[tuple[str, torch.Tensor, torch.Tensor, int | None]],
        rows: np.ndarray,
        hist: bool,
    ) -> dict[int, tuple[list[float], float, float]]:
        """This rank's part of the rows of the SUM for tensors ``which`` (``rows[k]`` for the
        k-th): moments, min and max (a replicated tensor's: a shard's go in the MIN) and, with
        ``hist``, histogram counts; all of them in one ``local_summaries`` call."""

        def edges_for(k: int, lo: float, hi: float) -> np.ndarray:
            # A replicated tensor's first epoch: this rank sees it whole, so it chooses the edges
            # every rank will choose from the reduced min/max (the same values).
            name = locals_[which[k]][0]
            return self._edges[name] if self._known_edges(name) else choose_edges(lo, hi, self.bins)

        got = dist_stats.local_summaries(
            [locals_[i][2] for i in which], edges_for if hist else None
        )
        for k, (i, (mom, h)) in enumerate(zip(which, got, strict=True)):
            m, lo, hi = mom
            rows[k, :7] = m
            if locals_[i][3] is None:
                rows[k, 7], rows[k, 8] = lo, hi
            if h is not None:
                rows[k, 9:] = h
        return {i: mom for i, (mom, _) in zip(which, got, strict=True)}

    def _settle(
        self,
        record: EpochRecord,
        item: tuple[str, torch.Tensor, torch.Tensor, int | None],
        row: np.ndarray,
    ) -> None:
        """A tensor's stats from its all-reduced row; its edges at its first epoch."""
        name, param, local, _ = item
        stats = dist_stats.stats_from(
            tuple(param.shape), dtype_name(local), row[:7], float(row[7]), float(row[8])
        )
        record.param_stats[name] = stats
        if not self._known_edges(name):
            self._edges[name] = choose_edges(stats["min"], stats["max"], self.bins)

    def _probe(self, record: EpochRecord) -> None:
        """The probe's activations into ``record`` (rank 0's; see ``_probe_here``)."""
        if self._probe_args is None or not self._probe_here():
            return
        e = record.epoch
        try:
            acts_record = record if self.rank == 0 else EpochRecord(e, 0, 0.0)
            self._snapshot_activations(acts_record)
            if self.rank == self._acts_rank != 0:  # written by this rank (see _probe_here)
                self._acts_out = {k: h.array for k, h in acts_record.acts.items()}  # type: ignore[misc]
        except Exception as exc:
            # The model may no longer accept the probe (changed architecture or inputs):
            # record the epoch without activations rather than stop the training.
            self._flags.append(
                {
                    "step": self._log.count,
                    "epoch": e,
                    "flag": "probe_failed",
                    "error": repr(exc),
                }
            )
            warnings.warn(
                f"layerscope.Recorder.epoch: the probe forward pass failed ({exc!r}); epoch {e} "
                "is recorded without activations (see rec.flags).",
                RecorderWarning,
                stacklevel=3,
            )

    def _probe_here(self) -> bool:
        """Rank 0 records the activations. The other ranks run the probe pass too (its forward
        may hold collectives: FSDP2 gathers parameters), except under DDP: a model given as
        ``DistributedDataParallel`` is recorded as its ``.module``, whose forward is local, so
        one rank runs it: with a store, the last rank (``_acts_rank``), which writes the
        activations and their stats beside its shards for rank 0's manifest to list (rank 0
        also writes the store, and the others' statistics are lighter); without one, rank 0."""
        if self._acts_rank:
            return self.rank == self._acts_rank or (self.rank == 0 and self._store is None)
        return self.rank == 0 or not (self._given_ddp and not self._sharded)

    def _snapshot_activations(self, record: EpochRecord) -> None:
        device, dtype = _model_device_dtype(self.model)
        args = tuple(_to_model(a, device, dtype) for a in self._probe_args or ())
        kwargs = {k: _to_model(v, device, dtype) for k, v in self._probe_kwargs.items()}
        acts = capture(self.model, *args, layers=self._layers, **kwargs)
        for layer, out in acts.items():
            # Their stats are computed when first read, or before thinning, or by the store's
            # writer thread: not here in the training loop (see History.stats).
            # capture() returns fresh tensors that nothing else writes to: no clone needed.
            t = out.detach().cpu()
            record.acts[layer] = Held(tuple(t.shape), dtype_name(t), True, to_numpy(t))

    # -- budget --------------------------------------------------------------------------------

    def _enforce_budget(self) -> None:
        if self.nbytes <= self.budget:
            return
        records = self._sorted()
        first, last = records[0].epoch, records[-1].epoch
        pinned = {r.epoch for r in records if r.pinned}
        actions: list[dict[str, Any]] = []
        # 0. Per-parameter step series (grad norms, update ratios) over the older half of the
        # run at half the rate, while they hold more than a quarter of the budget.
        while self._log.nbytes > self.budget // 4 and self.nbytes > self.budget:
            before = self._log.count // 2
            if not self._log.decimate(before):
                break
            actions.append(
                {
                    "epoch": None,
                    "action": "steps_decimated",
                    "tensors": [],
                    "before_step": before,
                    "on_disk": self._store is not None,
                }
            )
        # 1. Older, unpinned epochs keep big tensors at screen resolution.
        for r in records:
            if self.nbytes <= self.budget:
                break
            if r.epoch != last and r.epoch not in pinned:
                self._reduce(r, actions)
        # 2. Let go of whole epochs' tensors, keeping first, last, pinned and an even spacing.
        while self.nbytes > self.budget:
            kept = [r.epoch for r in records if any(h.array is not None for h in r.tensors())]
            drop = choose_drop(kept, {first, last} | pinned)
            if drop is None:
                break
            r = self._records[drop]
            fill_derived(r, self._edges)  # from the full tensors, before they go
            names = [n for n, h in [*r.params.items(), *r.acts.items()] if h.array is not None]
            for h in r.tensors():
                h.array = None
            self._recount(r)
            actions.append(self._thin_entry(drop, "dropped", names))
        # 3. Last resort: the protected epochs at reduced resolution too, ever coarser (down to
        # 64 values a tensor), the last epoch last.
        for group in ([first, *sorted(pinned - {first, last})], [last]):
            limit = self.reduced_elements
            while self.nbytes > self.budget and limit >= 64:
                for e in group:
                    self._reduce(self._records[e], actions, limit)
                limit //= 4
        self._thinned.extend(actions)
        over = self.nbytes > self.budget
        if not actions and not over:
            return
        decimated = [a["before_step"] for a in actions if a["action"] == "steps_decimated"]
        reduced = sorted({a["epoch"] for a in actions if a["action"] == "reduced"})
        dropped = sorted({a["epoch"] for a in actions if a["action"] == "dropped"})
        where = (
            f" The store at {self._store.path} keeps them at full resolution."
            if self._store is not None
            else " Pass store='runs/NAME' to keep every epoch on disk."
        )
        msg = f"layerscope.Recorder: the history outgrew its budget of {format_bytes(self.budget)}."
        if reduced:
            msg += f" Kept the big tensors of epoch(s) {reduced} at reduced resolution."
        if dropped:
            msg += f" Let go of the tensors of epoch(s) {dropped} (their scalars, histograms and stats stay)."
        if decimated:
            msg += (
                f" Kept the per-parameter step series before step {max(decimated)} at a lower rate."
            )
        if over:
            msg += (
                f" Still holding {format_bytes(self.nbytes)}: the per-step series and the epochs that "
                "are kept need more; raise budget= or record fewer layers/params."
            )
        warnings.warn(msg + where + " See rec.thinned.", RecorderWarning, stacklevel=3)

    def _reduce(
        self, r: EpochRecord, actions: list[dict[str, Any]], limit: int | None = None
    ) -> None:
        limit = self.reduced_elements if limit is None else limit
        fill_derived(r, self._edges)  # from the full tensors, before they shrink
        names = []
        for name, h in [*r.params.items(), *r.acts.items()]:
            if h.array is not None and h.array.size > limit:
                # A reduced image is reduced again from itself: block means of block means.
                h.array = reduce_array(h.array, limit)
                h.exact = False
                names.append(name)
                if r.epoch == max(self._records) and name in self._last:
                    # Hold no full copy beside the reduced one: the next change is approximate.
                    self._last[name] = (h.array, False)
        self._recount(r)  # its arrays shrank, and fill_derived may have added histograms
        if names:
            actions.append(self._thin_entry(r.epoch, "reduced", names))

    def _thin_entry(self, epoch: int, action: str, names: list[str]) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "action": action,
            "tensors": names,
            "on_disk": self._store is not None,
        }

    # -- pins, store, lifecycle ----------------------------------------------------------------

    def pin(self, epoch: int | None = None) -> int:
        """Keep ``epoch`` (default: the last recorded) whole when the history is thinned.

        >>> rec.epoch(); rec.pin()         # doctest: +SKIP
        """
        r = self._record(epoch)
        if not r.pinned:
            r.pinned = True
            if any(h.array is None or not h.exact for h in r.tensors()):
                warnings.warn(
                    f"layerscope.Recorder.pin: epoch {r.epoch} was already thinned (see rec.thinned); "
                    "pinning keeps what is left of it.",
                    RecorderWarning,
                    stacklevel=2,
                )
            if self._store is not None:
                self._store.write_pins(self.pinned)
        return r.epoch

    def flush(self) -> None:
        """Bring pending step values to the host and wait until the store has every epoch."""
        self._log.flush()
        if self._store is not None:
            self._store.flush()
            if self._store.error is not None:
                self._store_failed()

    def close(self) -> None:
        """Flush and stop the store's writer thread (the in-memory history stays readable).
        Under torch.distributed, call it on every rank (it checks they all recorded alike)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._dist is not None and not getattr(self, "_closed", False):
            self._closed = True
            try:
                # The step norms measured since the last epoch(), summed over the ranks (the
                # header first checks every rank holds as many).
                rows, self._dist_rows = self._dist_rows, []
                sq = _measured_to_host(rows) ** 2 if rows else np.zeros(0)
                all_ok = self._dist.header(
                    dist_stats.CLOSE, self._next_epoch, self._model_sig, sq.size, self._store_ok()
                )
                if not all_ok:
                    self._peer_store_failed()
                if rows:
                    if self.rank != 0 and not self._shared_steps:
                        sq = self._rank0_stands_for_replicated(rows, sq)
                    total = self._dist.all_reduce(
                        torch.from_numpy(sq), dist_stats.dist.ReduceOp.SUM, "step norms"
                    )
                    self._log.add_rows(rows, np.sqrt(total.numpy()).astype(np.float32))
            finally:
                self.flush()
                if self._store is not None:
                    self._store.close()
                self._dist.close()
            return
        self.flush()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store_path(self) -> Path | str | None:
        """The store's directory (a ``Path``) or URL; None without a (working) store."""
        return self._store.path if self._store is not None else None

    def _store_ok(self) -> bool:
        """Distributed: whether this rank's store writes went well. A rank other than 0 waits
        for its writes first (done long ago, in the background of the epoch that followed) so
        that rank 0, which waits for its files, learns of a failure at once (``header``)."""
        if self._store is not None and self.rank != 0:
            self._store.flush()
        if self._store is not None and self._store.error is not None:
            self._store_failed()
        return self.store_error is None

    def _peer_store_failed(self) -> None:
        """Another rank's store writes failed: this rank stops writing the store too (rank 0
        would otherwise wait for files that never come), and says so."""
        if self._store is not None:
            self._store.peer_failed()
            self._store_failed()

    def _store_failed(self) -> None:
        assert self._store is not None and self._store.error is not None
        self.store_error = self._store.error
        warnings.warn(
            f"{self.store_error} Recording goes on in memory only (within the budget); the epochs "
            "written so far stay readable. The error is in rec.store_error.",
            RecorderWarning,
            stacklevel=3,
        )
        self._store._pool.shutdown(wait=False)
        self._store.release()
        self._store = None

    def _sync(self) -> None:
        self._log.flush()

    @staticmethod
    def open(
        path: str | os.PathLike[str],
        follow: bool = False,
        *,
        interval: float = DEFAULT_INTERVAL,
        storage_options: dict[str, Any] | None = None,
    ) -> RecordedRun:
        """Reopen a run written with ``store=path`` (a directory or an fsspec URL): read-only, no
        model needed, same accessors. ``follow=True``: a background poller loads the epochs that
        the writing process adds (every ``interval`` s; see ``layerscope.record.follow``) and calls
        ``run.on_epoch`` listeners; ``run.close()`` stops it.

        >>> run = ls.Recorder.open("runs/exp1")              # doctest: +SKIP
        >>> run.snapshot("fc.weight", run.epochs[-1]).array  # doctest: +SKIP
        >>> live = ls.Recorder.open("s3://bucket/runs/exp1", follow=True)   # doctest: +SKIP
        """
        return RecordedRun(path, follow=follow, interval=interval, storage_options=storage_options)

    def __repr__(self) -> str:
        where = ""
        if self._store is not None:
            where = f", store {self._store.path}"
            if self._store.path != self._store.requested:
                where += f" (a new run: {self._store.requested} holds an earlier one)"
        return (
            f"<Recorder {type(self.model).__name__}: {len(self._records)} epochs, {self.num_steps} steps, "
            f"{format_bytes(self.nbytes)} of {format_bytes(self.budget)}{where}>"
        )


class RecordedRun(History):
    """A run reopened from its store (``Recorder.open``): the read accessors of ``Recorder``.

    ``refresh()`` picks up epochs written since (a training process may still be writing);
    ``follow=True`` does that on a background thread (see ``Recorder.open``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        follow: bool = False,
        interval: float = DEFAULT_INTERVAL,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.loc = open_location(path, storage_options)
        self.path: Path | str = self.loc.local if self.loc.local is not None else self.loc.url
        self._refresh_lock = threading.Lock()
        self.meta = load_history(self.loc, self)
        self._axis = str(self.meta.get("axis", "epoch"))
        self._sampling = dict(self.meta.get("sampling", {}))
        self._listeners: list[Callable[[int], None]] = []
        self._poller = (
            Poller(self.refresh, self._notify, interval, name=str(self.path)) if follow else None
        )

    @property
    def axis(self) -> str:
        return self._axis

    @property
    def following(self) -> bool:
        """Whether a background poller is loading new epochs (``follow=True``, not closed)."""
        return self._poller is not None and self._poller.running

    def refresh(self) -> list[int]:
        """Load the epochs completed since the last look; return their numbers."""
        with self._refresh_lock:
            before = set(self._records)
            self.loc.refresh()
            load_history(self.loc, self)
            return sorted(set(self._records) - before)

    def on_epoch(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(epoch)`` (on the poller's thread) for each epoch loaded while following;
        returns a function that unsubscribes."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _notify(self, epoch: int) -> None:
        for callback in list(self._listeners):
            try:
                callback(epoch)
            except Exception as exc:  # a view's bug must not stop following
                warnings.warn(
                    f"layerscope: an on_epoch callback failed ({exc!r}); following goes on.",
                    RecorderWarning,
                    stacklevel=2,
                )

    def close(self) -> None:
        """Stop following (the epochs loaded so far stay readable)."""
        if self._poller is not None:
            self._poller.stop()

    def __enter__(self) -> RecordedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        live = ", following" if self.following else ""
        return f"<RecordedRun {self.meta.get('model', '')} at {self.path}: {len(self._records)} epochs{live}>"


def dtype_name_of(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _change(prev: tuple[np.ndarray, bool], array: np.ndarray, exact: bool, limit: int) -> float:
    """Change since the previous snapshot; on reduced images when either side is reduced."""
    before, before_exact = prev
    if exact:
        return _relative_change(before, before_exact, array)
    if before_exact:  # on torch: numpy's float64 block means of a big tensor take seconds
        before = reduce_tensor(torch.from_numpy(np.ascontiguousarray(before)), limit)
    return _relative_change(before, False, array)


def _measured_to_host(rows: list[tuple[Any, Any, Any, list[torch.Tensor | None]]]) -> np.ndarray:
    """Every value of ``rows`` as float64 on the host, 0 where another rank measured it (None)."""
    values = [t for r in rows for t in r[3]]
    here = [i for i, t in enumerate(values) if t is not None]
    out = np.zeros(len(values))
    if here:
        got = torch.stack([values[i] for i in here]).double().cpu().numpy()  # type: ignore[misc]
        if len(here) == len(values):
            return got
        out[here] = got
    return out


def _is_ddp(model: Any) -> bool:
    from torch.nn.parallel import DistributedDataParallel

    return isinstance(model, DistributedDataParallel)


def _unwrap_ddp(model: Any) -> Any:
    return model.module if _is_ddp(model) else model


def _relative_change(before: np.ndarray, exact: bool, after: np.ndarray) -> float:
    """‖after − before‖ / ‖before‖; if ``before`` was kept reduced, on reduced images (approximate)."""
    if not exact:
        after = reduce_array(after, before.size)
    if after.shape != before.shape:
        return math.nan  # the parameter was replaced by one of another shape
    # torch, not numpy: np.linalg.norm goes through BLAS threads, slow on a busy machine.
    a = torch.from_numpy(np.ascontiguousarray(before)).reshape(-1)
    b = torch.from_numpy(np.ascontiguousarray(after)).reshape(-1)
    if not a.is_floating_point():
        a, b = a.double(), b.double()
    den = float(torch.linalg.vector_norm(a))
    num = _distance(a, b)
    if den == 0:
        return 0.0 if num == 0 else math.inf
    return num / den


def _distance(a: torch.Tensor, b: torch.Tensor, chunk: int = 1 << 18) -> float:
    """‖b − a‖ of two flat tensors, through a cache-sized buffer: ``b - a`` whole would allocate
    (and page in) a tensor as big as the parameter, which costs 5x the norm itself."""
    if a.numel() <= chunk:
        return float(torch.linalg.vector_norm(b - a))
    buf = torch.empty(chunk, dtype=a.dtype)
    total = 0.0
    for start in range(0, a.numel(), chunk):
        d = buf[: min(chunk, a.numel() - start)]
        torch.sub(b[start : start + chunk], a[start : start + chunk], out=d)
        total += float(torch.linalg.vector_norm(d)) ** 2
    return math.sqrt(total)


def _metric(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().reshape(()))
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(
        f"epoch({name}=...) must be a number or a scalar tensor, got {type(value).__name__}"
    )


def _probe_inputs(probe: Any) -> tuple[tuple[Any, ...] | None, dict[str, Any]]:
    """``(args, kwargs)`` for the probe forward pass; a detached copy, so training cannot change it."""

    def keep(v: Any) -> Any:
        return v.detach().clone() if isinstance(v, torch.Tensor) else v

    if probe is None:
        return None, {}
    if isinstance(probe, torch.Tensor):
        return (keep(probe),), {}
    if isinstance(probe, (tuple, list)):
        return tuple(keep(v) for v in probe), {}
    if isinstance(probe, dict):
        return (), {k: keep(v) for k, v in probe.items()}
    raise TypeError(
        f"probe must be a tensor, a tuple of model inputs or a dict of keyword inputs, got "
        f"{type(probe).__name__}"
    )


def _check_layers(model: nn.Module, layers: str | Sequence[str] | None) -> list[str] | None:
    if layers is None:
        return None
    paths = [layers] if isinstance(layers, str) else list(layers)
    for path in paths:
        find_module(model, path)  # a clear error, with close matches, now rather than at epoch()
    return paths


def _check_params(model: nn.Module, params: str | Sequence[str] | None) -> list[str] | None:
    if params is None:
        return None
    wanted = [params] if isinstance(params, str) else list(params)
    names = [n for n, _ in model.named_parameters()]
    for w in wanted:
        if not any(n == w or n.startswith(w + ".") or w == "" for n in names):
            raise KeyError(
                f"params: {w!r} is neither a parameter name nor a module path with parameters; "
                f"e.g. {names[:5]}"
            )
    return wanted


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype | None]:
    for p in model.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), None


def _to_model(value: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
    # The probe follows the model when it moves (device) or changes precision (float dtype).
    if not isinstance(value, torch.Tensor):
        return value
    if value.device != device:
        value = value.to(device)
    if (
        dtype is not None
        and dtype.is_floating_point
        and value.is_floating_point()
        and value.dtype != dtype
    ):
        value = value.to(dtype)
    return value
