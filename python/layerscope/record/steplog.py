"""Per-step series (loss, scalars, gradient norms, update ratios), held on the device until a flush.

``step()`` must stay cheap, so nothing here reads a value back to the host while training: losses
and norms are kept as device tensors and moved in one ``torch.stack(...).cpu()`` per series at the
next flush (``Recorder.epoch()``, a read accessor, or every ``FLUSH_EVERY`` steps so a loop that
never calls ``epoch()`` stays bounded). On the host, each series is a list of segments
``(steps, values)``; a dense view (NaN where a step has no value) is built on read.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

# Pending steps held on the device before a forced flush (one host sync per this many steps).
FLUSH_EVERY = 4096


class RecorderWarning(UserWarning):
    """Something was recorded but flagged (NaN loss, thinning, a store error): nothing crashed."""


@dataclass
class Series:
    """One per-step series: segments of ``(step indices, values)`` in step order."""

    segments: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    # What ``dense`` made last: (the segments list it read, how many of them, the values at
    # steps 0..max step). Not counted in ``nbytes``: it exists only for a series that is read
    # (the loss, the shown layer's norms), and holds 8 bytes a step.
    _read: tuple[list[Any], int, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def dense(self, n: int) -> np.ndarray:
        """The series at steps ``0..n-1``, NaN where it has no value; a step given twice keeps
        the later value. What the last call made is kept and extended by the segments added
        since: a run whose ``epoch()`` is called every step adds a segment a step, and a live
        view reads the series after every epoch (walking every segment made that quadratic).
        """
        segments = self.segments
        k = len(segments)
        kept = self._read
        if kept is None or kept[0] is not segments or kept[1] > k:
            kept = (segments, 0, np.zeros(0))
        done, base = kept[1], kept[2]
        if done < k:
            base = _apply(base, segments[done:k])
            self._read = (segments, k, base)
        out = np.full(n, np.nan)
        m = min(n, len(base))
        out[:m] = base[:m]
        return out

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes + v.nbytes for s, v in self.segments)


def _apply(base: np.ndarray, segments: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``base`` (values by step, NaN where none) with ``segments`` written over it, in order: a
    step given twice keeps the later value. Grown to the highest step given."""
    steps = np.concatenate([s for s, _ in segments])
    values = np.concatenate([v for _, v in segments])
    size = max(len(base), int(steps.max()) + 1 if len(steps) else 0)
    out = np.full(size, np.nan)
    out[: len(base)] = base
    if len(steps) > 1 and not bool(np.all(steps[1:] > steps[:-1])):
        # Repeated steps: numpy does not promise which of them an assignment keeps, so keep
        # the last explicitly (the first occurrence in the reversed order).
        steps, first = np.unique(steps[::-1], return_index=True)
        values = values[::-1][first]
    out[steps] = values
    return out


def _to_host(values: Sequence[torch.Tensor | float]) -> np.ndarray:
    """float64 array of scalar values; the tensors cross to the host in one copy per device."""
    out = np.empty(len(values))
    by_device: dict[torch.device, list[int]] = {}
    for i, v in enumerate(values):
        if isinstance(v, torch.Tensor):
            by_device.setdefault(v.device, []).append(i)
        else:
            out[i] = float(v)
    for idx in by_device.values():
        group = [values[i] for i in idx]
        try:  # the usual case: 0-d tensors of one dtype, one stack
            stacked = torch.stack(group).float()  # type: ignore[arg-type]
        except RuntimeError:
            stacked = torch.stack([v.reshape(()).float() for v in group])  # type: ignore[union-attr]
        out[idx] = stacked.cpu().numpy()
    return out


def _rows_to_host(rows: list[tuple[Any, Any, Any, Sequence[torch.Tensor]]]) -> np.ndarray:
    """Every value of ``rows`` (each a list of 0-d tensors: the norms of one step), float32 on
    the host in row order, in one stack and one copy."""
    flat = [t for r in rows for t in r[3]]
    try:
        out = torch.stack(flat).float().cpu()
    except RuntimeError:  # on several devices
        out = torch.stack([t.reshape(()).float().cpu() for t in flat])
    return out.numpy()


class StepLog:
    """The per-step record of a run: ``series["loss"]``, ``"scalar:NAME"``, and per parameter
    ``"grad:PARAM"`` (gradient norm at a step), ``"wnorm:PARAM"`` (weight norm at a step) and
    ``"delta:PARAM"`` (norm of the optimizer update that followed a step)."""

    def __init__(self, start: int = 0) -> None:
        self.count = start  # steps recorded so far: the next step's index
        self.series: dict[str, Series] = {}
        # nbytes, kept up to date as segments are appended (recounted when ``series`` is
        # replaced or decimated): the budget is checked at every epoch, and a full count walks
        # every segment of the run.
        self._counted_for: dict[str, Series] | None = None
        self._counted: dict[int, np.ndarray] = {}
        self._bytes = 0
        self.flags: list[dict] = []
        self._unsaved: list[tuple[str, np.ndarray, np.ndarray]] = []  # for the store
        self._values: dict[str, tuple[list[int], list[torch.Tensor | float]]] = {}
        # One device tensor a step: the norms of several kinds of per-parameter tensors, each
        # kind with its own step (a "delta" belongs to the step before the one measuring it).
        self._rows: list[
            tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], Sequence[torch.Tensor]]
        ] = []
        self._pending = 0
        self._warned_nonscalar: set[str] = set()

    # -- recording (cheap: no host sync) ---------------------------------------------------

    def add_value(self, key: str, step: int, value: object) -> None:
        """A scalar for ``step``: a number or a tensor (a non-scalar tensor is recorded as its mean, flagged)."""
        if isinstance(value, torch.Tensor):
            v = value.detach()
            if v.numel() != 1:
                self._flag_nonscalar(key, step, tuple(v.shape))
                v = v.float().mean() if v.numel() else torch.tensor(float("nan"))
            elif not v.is_floating_point():
                v = v.float()
            stored: torch.Tensor | float = v
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            stored = float(value)
        elif isinstance(value, np.ndarray) and value.size == 1:
            stored = float(value.reshape(()))
        else:
            raise TypeError(
                f"{key.removeprefix('scalar:')}= must be a number or a scalar tensor, got "
                f"{type(value).__name__}; pass e.g. loss=loss (a tensor) or acc=0.93"
            )
        steps, values = self._values.setdefault(key, ([], []))
        steps.append(step)
        values.append(stored)
        self._pending += 1

    def add_row(
        self,
        names: tuple[str, ...],
        kinds: tuple[str, ...],
        steps: tuple[int, ...],
        row: Sequence[torch.Tensor],
    ) -> None:
        """Per-parameter norms, ``len(kinds) * len(names)`` 0-d device tensors (stacked at the
        flush, not at each step): for each kind
        (``"grad"``, ``"wnorm"``, ``"delta"``) in turn, one value per name, at ``steps[k]``."""
        self._rows.append((names, kinds, steps, row))
        self._pending += 1

    @property
    def pending(self) -> int:
        return self._pending

    def _flag_nonscalar(self, key: str, step: int, shape: tuple[int, ...]) -> None:
        name = key.removeprefix("scalar:")
        self.flags.append({"step": step, "flag": "non_scalar", "name": name, "shape": list(shape)})
        if key not in self._warned_nonscalar:
            self._warned_nonscalar.add(key)
            warnings.warn(
                f"layerscope.Recorder.step: {name} has shape {list(shape)}, not a scalar; "
                f"recording its mean (flagged in rec.flags). Pass {name}=value.mean() to silence this.",
                RecorderWarning,
                stacklevel=4,
            )

    # -- flushing (one host sync per series) ------------------------------------------------

    def flush(self) -> None:
        """Move everything pending to the host; flag NaN/Inf losses (one warning per flush)."""
        if not self._pending:
            return
        for key, (steps, values) in self._values.items():
            if steps:
                self._append(key, np.asarray(steps, dtype=np.int64), _to_host(values))
        self._values = {}
        if self._rows:
            # Every norm of the flush crosses to the host in one stack.
            self.add_rows(self._rows, _rows_to_host(self._rows))
        self._rows = []
        self._pending = 0

    def add_rows(
        self, rows: Sequence[tuple[Any, Any, Any, Sequence[Any]]], flat: np.ndarray
    ) -> None:
        """Rows of norms (``add_row``'s) whose values are on the host already, all of them in
        ``flat`` in row order: one segment per (parameters, kind), not one per run of equal rows
        (a reference step every 10 would split an epoch's series into a dozen short segments,
        each a manifest entry)."""
        groups: dict[tuple[tuple[str, ...], str], tuple[list[int], list[int]]] = {}
        offset = 0
        for names, kinds, row_steps, row in rows:
            n = len(names)
            for k, kind in enumerate(kinds):
                g = groups.setdefault((names, kind), ([], []))
                g[0].append(row_steps[k])
                g[1].append(offset + k * n)
            offset += len(row)
        for (names, kind), (steps, starts) in groups.items():
            matrix = flat[np.asarray(starts)[:, None] + np.arange(len(names))]
            steps_arr = np.asarray(steps, dtype=np.int64)
            for j, name in enumerate(names):
                self._append(f"{kind}:{name}", steps_arr, matrix[:, j])

    def _append(self, key: str, steps: np.ndarray, values: np.ndarray) -> None:
        self.series.setdefault(key, Series()).segments.append((steps, values))
        if self._counted_for is self.series:
            self._count((steps, values))
        self._unsaved.append((key, steps, values))
        if key == "loss":
            bad = steps[~np.isfinite(values)]
            if len(bad):
                for s in bad.tolist():
                    self.flags.append({"step": s, "flag": "nan_loss"})
                warnings.warn(
                    f"layerscope.Recorder: the loss was NaN or Inf at {len(bad)} step(s), first "
                    f"{bad[:5].tolist()}; recorded as such (see rec.flags).",
                    RecorderWarning,
                    stacklevel=4,
                )

    def take_unsaved(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """The segments added since the last call (what the store has not written yet)."""
        out, self._unsaved = self._unsaved, []
        return out

    # -- reading ----------------------------------------------------------------------------

    def dense(self, key: str) -> np.ndarray:
        series = self.series.get(key)
        if series is None:
            return np.full(self.count, np.nan)
        return series.dense(self.count)

    def keys(self, prefix: str) -> list[str]:
        return [k.removeprefix(prefix) for k in self.series if k.startswith(prefix)]

    def _count(self, arrays: tuple[np.ndarray, ...]) -> None:
        # The step-index array of a block is shared by every parameter's series: count it once
        # (the arrays are held here, so an id is never reused while counted).
        for a in arrays:
            if id(a) not in self._counted:
                self._counted[id(a)] = a
                self._bytes += a.nbytes

    def _recount(self) -> None:
        self._counted, self._bytes = {}, 0
        for series in self.series.values():
            for seg in series.segments:
                self._count(seg)
        self._counted_for = self.series

    @property
    def nbytes(self) -> int:
        if self._counted_for is not self.series:
            self._recount()
        return self._bytes

    def decimate(self, before: int) -> int:
        """Halve the per-parameter series (grad, wnorm, delta) over steps ``< before``: keep every
        other sample (the loss and scalars stay whole). Return the bytes freed.

        Series measured at the same steps (wnorm and delta) keep the same steps, so update ratios
        stay defined where kept.
        """
        was = self.nbytes
        shared: dict[bytes, np.ndarray] = {}  # equal step arrays stay one array, as in flush()
        for key, series in self.series.items():
            if key == "loss" or key.startswith("scalar:"):
                continue
            steps = np.concatenate([s for s, _ in series.segments]) if series.segments else None
            if steps is None or not len(steps):
                continue
            values = np.concatenate([v for _, v in series.segments])
            old = np.flatnonzero(steps < before)
            drop = old[1::2]
            keep = np.ones(len(steps), dtype=bool)
            keep[drop] = False
            kept = steps[keep]
            kept = shared.setdefault(kept.tobytes(), kept)
            series.segments = [(kept, values[keep])]
        self._recount()
        return was - self.nbytes
