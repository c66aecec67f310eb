"""The read side of a recorded run, shared by a live ``Recorder`` and ``Recorder.open(path)``.

A view (``ls.timeline``) reads only through these accessors, so it works the same on a run being
recorded in this kernel and on a store reopened in a fresh one.

>>> rec.epochs                                  # doctest: +SKIP
[0, 1, 2]
>>> rec.snapshot("fc.weight", 1).exact          # doctest: +SKIP
True
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .histograms import HistogramCounts, count
from .location import load_array
from .steplog import StepLog
from .summary import array_stats


class ThinnedError(KeyError):
    """The tensor asked for was let go to stay within the budget (and no store holds it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class Held:
    """One recorded tensor: in memory (``array``) and/or in the store (``path``: a local ``Path``
    or a lazy reader of a remote or sharded file, see ``location.load_array``). The stored file is
    full resolution unless ``path_exact`` is False (the snapshot policy stored the reduced image)."""

    shape: tuple[int, ...]
    dtype: str
    exact: bool
    array: np.ndarray | None = None
    path: Any = None
    path_exact: bool = True

    @property
    def nbytes(self) -> int:
        if self.array is None or isinstance(self.array, np.memmap):
            return 0
        return int(self.array.nbytes)


@dataclass
class Snapshot:
    """A tensor at one epoch. ``exact``: ``array`` is the tensor bit for bit, in ``shape``; otherwise
    ``array`` is a 2-D float32 block-mean image of the view ``[shape[0], prod(shape[1:])]``.

    numpy has no bfloat16: such tensors come back as float32 holding the same values.
    """

    name: str
    epoch: int
    array: np.ndarray
    shape: tuple[int, ...]
    dtype: str
    exact: bool
    source: str  # "memory" or "disk"


@dataclass
class Histograms:
    """Histograms of one parameter over epochs, on bins fixed across them.

    ``counts[i]`` belongs to ``epochs[i]``; values below ``edges[0]`` are in ``underflow``, above
    ``edges[-1]`` in ``overflow`` (Inf included), NaN in ``nan``.
    """

    name: str
    edges: np.ndarray
    epochs: np.ndarray
    counts: np.ndarray
    underflow: np.ndarray
    overflow: np.ndarray
    nan: np.ndarray


@dataclass
class EpochRecord:
    """All that one ``Recorder.epoch()`` call recorded."""

    epoch: int
    step: int  # steps recorded when the epoch ended: its steps are [previous step, step)
    time: float
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Held] = field(default_factory=dict)
    acts: dict[str, Held] = field(default_factory=dict)
    param_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    act_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    change: dict[str, float] = field(default_factory=dict)
    hist: dict[str, HistogramCounts] = field(default_factory=dict)
    pinned: bool = False

    def tensors(self) -> list[Held]:
        return [*self.params.values(), *self.acts.values()]

    @property
    def nbytes(self) -> int:
        small = sum(h.counts.nbytes + 24 for h in self.hist.values())
        return small + sum(h.nbytes for h in self.tensors())


def _module_of(param: str) -> str:
    return param.rpartition(".")[0]


def _unknown(kind: str, name: str, known: list[str]) -> KeyError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    sample = ", ".join(map(repr, known[:6])) or "none"
    return KeyError(f"no {kind} {name!r} was recorded.{hint} Recorded: {sample}.")


class History:
    """Read accessors over a recorded run (see module docstring)."""

    def __init__(self) -> None:
        self._records: dict[int, EpochRecord] = {}
        self._log = StepLog()
        self._edges: dict[str, np.ndarray] = {}
        self._thinned: list[dict[str, Any]] = []
        self._flags: list[dict[str, Any]] = []
        self._sampling: dict[str, int] = {}
        # Epochs whose snapshots the policy kept reduced or skipped (not the budget's thinning).
        self._policy_reduced: set[int] = set()
        # The bytes each record holds, as last counted, and their sum (see ``_recount``): a
        # recount of every record at each epoch() made a run of thousands of epochs quadratic.
        self._held: dict[int, int] = {}
        self._held_total = 0
        self._held_of: dict[int, EpochRecord] | None = None  # the records dict they were counted in
        # Per parameter, what ``histograms`` made: (records dict, records, last epoch, arrays).
        self._hists: dict[str, tuple[dict[int, EpochRecord], int, int, list[np.ndarray]]] = {}
        # The records in epoch order, and their steps once asked (see ``_sorted``).
        self._sorted_of: list[Any] | None = None
        # What ``_names_in`` has walked: (records dict, how many, the last epoch, the names).
        self._seen: dict[str, tuple[dict[int, EpochRecord], int, int, dict[str, None]]] = {}

    # -- what there is ----------------------------------------------------------------------

    @property
    def epochs(self) -> list[int]:
        """Every recorded epoch, in order (scalars, histograms and stats are kept for all)."""
        return sorted(self._records)

    @property
    def parameters(self) -> list[str]:
        """Names of the parameters snapshotted in any epoch, in order of first appearance."""
        return list(self._names_in("params"))

    @property
    def layers(self) -> list[str]:
        """Module paths whose probe activations were recorded."""
        return list(self._names_in("acts"))

    def _names_in(self, kind: str) -> dict[str, None]:
        """The names in every record's ``params`` or ``acts``, in order of first appearance.

        Kept, and extended by the epochs recorded since the last call: a live view asks after
        every ``epoch()``, and walking every record each time made a long run quadratic. Walked
        afresh when the records were swapped (a store loaded) or an epoch came before the last
        one seen. The kept dict is replaced, never changed, so a reader on another thread (a
        follower's poller) never sees it change under it.
        """
        records = self._records
        seen = self._seen.get(kind)
        if seen is None or seen[0] is not records or seen[1] > len(records):
            seen = (records, 0, -1, {})
        _, n, last, names = seen
        if n == len(records):
            return names
        keys = list(records)
        new = sorted(e for e in keys if e > last)
        if n + len(new) != len(keys):
            n, names, new = 0, {}, sorted(keys)
        names = {**names}
        for e in new:
            names.update(dict.fromkeys(getattr(records[e], kind)))
        self._seen[kind] = (records, n + len(new), new[-1], names)
        return names

    @property
    def pinned(self) -> list[int]:
        return [r.epoch for r in self._sorted() if r.pinned]

    @property
    def thinned(self) -> list[dict[str, Any]]:
        """What was thinned to stay within the budget, oldest first: ``{"epoch", "action",
        "tensors", "on_disk"}`` with action "reduced" (kept at reduced resolution), "dropped" (let
        go) or "steps_decimated" (per-parameter step series before ``"before_step"`` halved) by the
        memory budget; and, by ``Recorder(snapshot=...)``, "policy_reduced" (only the reduced
        image was kept, in memory and in the store) or "policy_stats" (only stats and histograms;
        also a sharded parameter when there is no store to write its shards, or when its reduced
        image is asked for and it is sharded on a dim other than 0)."""
        return list(self._thinned)

    @property
    def sampling(self) -> dict[str, int]:
        """Per-step series measured on some steps only (``Recorder(every=, ratio_every=)``):
        ``{"grad_norms_every": k, "update_ratios_every": r}`` (1: every step, 0: never)."""
        return dict(self._sampling)

    @property
    def flags(self) -> list[dict[str, Any]]:
        """Flagged events: NaN losses, non-scalar losses, parameters added/removed, device moves."""
        self._sync()
        return sorted([*self._log.flags, *self._flags], key=lambda f: f.get("step", 0))

    @property
    def num_steps(self) -> int:
        return self._log.count

    @property
    def nbytes(self) -> int:
        """Bytes of history held in memory (tensors, histograms, per-step series)."""
        records = self._records
        if records is not self._held_of or len(records) != len(self._held):
            # records swapped in (a store loaded) or added without a count: count them all
            self._held, self._held_total, self._held_of = {}, 0, records
            for r in list(records.values()):
                self._recount(r)
        return self._log.nbytes + self._held_total

    def _fill(self, r: EpochRecord, names: Iterable[str] | None = None) -> None:
        """``fill_derived``, and a recount of ``r`` when it added histograms."""
        before = len(r.hist)
        fill_derived(r, self._edges, names=names)
        if len(r.hist) != before:
            self._recount(r)

    def _recount(self, r: EpochRecord) -> None:
        """Count the bytes record ``r`` holds: when it is added, and again whenever its tensors or
        histograms change (thinning, histograms filled in later)."""
        new = r.nbytes
        self._held_total += new - self._held.get(r.epoch, 0)
        self._held[r.epoch] = new

    def snapshot_epochs(self, name: str) -> list[int]:
        """Epochs at which parameter ``name`` can be read (exactly or reduced)."""
        return [r.epoch for r in self._sorted() if name in r.params and _readable(r.params[name])]

    def activation_epochs(self, layer: str) -> list[int]:
        return [r.epoch for r in self._sorted() if layer in r.acts and _readable(r.acts[layer])]

    # -- per step ---------------------------------------------------------------------------

    def scalars(self) -> dict[str, np.ndarray]:
        """Per-step series, index = step: ``"loss"`` and every scalar passed to ``step()`` (NaN where absent).

        >>> rec.scalars()["loss"][-5:]      # doctest: +SKIP
        """
        self._sync()
        out = {"loss": self._log.dense("loss")}
        for name in self._log.keys("scalar:"):
            out[name] = self._log.dense("scalar:" + name)
        return out

    def grad_norms(self, name: str) -> np.ndarray:
        """L2 norm of ``name``'s gradient at each step (NaN where not measured, see ``every``)."""
        return self._param_series("grad", name)

    def update_ratios(self, name: str) -> np.ndarray:
        """‖Δw‖ / ‖w‖ of the optimizer update that followed each step (NaN where none was measured
        or the weights did not change: an optimizer that did not step).

        >>> r = rec.update_ratios("features.0.weight")     # doctest: +SKIP
        """
        delta = self._param_series("delta", name)
        before = self._param_series("wnorm", name)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = delta / before
        ratio[delta == 0] = np.nan
        return ratio

    def _param_series(self, kind: str, name: str) -> np.ndarray:
        self._sync()
        if f"{kind}:{name}" not in self._log.series:
            if name in self.parameters or f"grad:{name}" in self._log.series:
                return np.full(self._log.count, np.nan)
            raise _unknown("parameter", name, self._log.keys("grad:"))
        return self._log.dense(f"{kind}:{name}")

    # -- per epoch --------------------------------------------------------------------------

    def epoch_steps(self) -> np.ndarray:
        """For each epoch in ``epochs``: the number of steps recorded when it ended (an x position)."""
        self._sorted()  # (brings ``_sorted_of`` up to date)
        kept = self._sorted_of
        assert kept is not None
        if kept[2] is None:  # once per set of records: a live view asks several times an epoch
            kept[2] = np.asarray([r.step for r in kept[1]], dtype=np.int64)
        return kept[2].copy()

    def metrics(self) -> dict[str, np.ndarray]:
        """Per-epoch metrics passed to ``epoch(**metrics)``, aligned with ``epochs`` (NaN where absent)."""
        records = self._sorted()
        names = list(dict.fromkeys(k for r in records for k in r.metrics))
        return {k: np.asarray([r.metrics.get(k, np.nan) for r in records]) for k in names}

    def stats(self, epoch: int | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """``{"params": {name: stats}, "activations": {layer: stats}}`` at ``epoch`` (default: last).

        Stats have ``inspect.tensor_stats``' keys (min, max, mean, std, norm, zeros, nan, posinf, neginf, ...);
        activations add ``dead``: the share of units (channels; last dim for 3-D outputs) that are
        zero on every probe sample.
        """
        r = self._record(epoch)
        self._fill(r)
        return {"params": dict(r.param_stats), "activations": dict(r.act_stats)}

    def change(self, epoch: int | None = None) -> dict[str, float]:
        """Per parameter: ‖w_epoch − w_previous‖ / ‖w_previous‖ against the epoch recorded before it."""
        return dict(self._record(epoch).change)

    def snapshot(self, name: str, epoch: int | None = None, *, exact: bool = False) -> Snapshot:
        """Parameter ``name`` at ``epoch`` (default: last). ``exact=True`` raises unless the full
        tensor is available (in memory or in the store).

        >>> s = rec.snapshot("classifier.3.weight", 2)     # doctest: +SKIP
        >>> s.exact, s.array.shape                          # doctest: +SKIP
        """
        r = self._record(epoch)
        if name not in r.params:
            raise _unknown(f"parameter at epoch {r.epoch}:", name, list(r.params))
        return self._read(r, r.params[name], name, exact, "parameter")

    def activation(self, layer: str, epoch: int | None = None, *, exact: bool = False) -> Snapshot:
        """Output of module ``layer`` on the probe batch at ``epoch`` (default: last)."""
        r = self._record(epoch)
        if layer not in r.acts:
            raise _unknown(f"layer activation at epoch {r.epoch}:", layer, list(r.acts))
        return self._read(r, r.acts[layer], layer, exact, "activation")

    def exact_shapes(self, epoch: int | None = None) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape, for the snapshots of ``epoch`` (default: last) held bit for
        bit in memory: what ``snapshot(name, epoch, exact=True).array.shape`` gives for them,
        without reading anything.

        >>> rec.exact_shapes()["fc.weight"]          # doctest: +SKIP
        (10, 64)
        """
        r = self._record(epoch)
        return {
            n: tuple(h.array.shape)
            for n, h in r.params.items()
            if h.array is not None and h.exact and not isinstance(h.array, np.memmap)
        }

    def histograms(self, name: str) -> Histograms:
        """Histograms of parameter ``name`` for every epoch it exists in, on fixed bins.

        >>> h = rec.histograms("features.0.weight")        # doctest: +SKIP
        >>> h.counts.shape == (len(h.epochs), len(h.edges) - 1)     # doctest: +SKIP
        """
        if name not in self._edges:
            raise _unknown("parameter histogram", name, list(self._edges))
        of, records = self._records, self._sorted()
        # The rows made by the last call, extended by the records added since (a live view asks
        # after every epoch). A record's histogram, once filled or found unfillable (no exact
        # tensor), does not change, so the earlier rows stand while the records are the same.
        kept = self._hists.get(name)
        if kept is not None:
            n, last = kept[1], kept[2]
            if kept[0] is not of or n > len(records) or (n and records[n - 1].epoch != last):
                kept = None
        new = records[kept[1] :] if kept is not None else records
        for r in new:
            if name not in r.hist:  # (the common case, filled already: no call)
                self._fill(r, (name,))
        rows = [r.hist[name] for r in new if name in r.hist]
        bins = len(self._edges[name]) - 1
        parts = [
            np.asarray([r.epoch for r in new if name in r.hist], dtype=np.int64),
            np.stack([h.counts for h in rows]) if rows else np.zeros((0, bins), np.int64),
            np.asarray([h.underflow for h in rows], dtype=np.int64),
            np.asarray([h.overflow for h in rows], dtype=np.int64),
            np.asarray([h.nan for h in rows], dtype=np.int64),
        ]
        if kept is not None:
            parts = [np.concatenate([a, b]) for a, b in zip(kept[3], parts, strict=True)]
        self._hists[name] = (of, len(records), records[-1].epoch if records else -1, parts)
        epochs, counts, under, over, nan = (a.copy() for a in parts)
        return Histograms(name, self._edges[name].copy(), epochs, counts, under, over, nan)

    def layer_change(self, a: int | None = None, b: int | None = None) -> dict[str, float]:
        """Per module path: ‖W_b − W_a‖ / ‖W_a‖ over the parameters the module owns directly
        (weight and bias together), for a graph overlay. Defaults: ``b`` the last epoch, ``a`` the
        one before it. Uses exact snapshots where available (memory or store), else the reduced
        images (then it is approximate); parameters missing at either epoch are left out.

        >>> rec.layer_change(0, 9)["features.0"]          # doctest: +SKIP
        """
        epochs = self.epochs
        if not epochs:
            return {}
        rb = self._record(b)
        if a is None:
            before = [e for e in epochs if e < rb.epoch]
            if not before:
                return {}
            a = before[-1]
        ra = self._record(a)
        num: dict[str, float] = {}
        den: dict[str, float] = {}
        for name in rb.params:
            if name not in ra.params:
                continue
            try:
                xa = self._read(ra, ra.params[name], name, False, "parameter")
                xb = self._read(rb, rb.params[name], name, False, "parameter")
            except ThinnedError:
                continue
            if xa.exact != xb.exact or xa.array.shape != xb.array.shape:
                continue
            va = np.asarray(xa.array, dtype=np.float64)
            vb = np.asarray(xb.array, dtype=np.float64)
            module = _module_of(name)
            num[module] = num.get(module, 0.0) + float(np.sum((vb - va) ** 2))
            den[module] = den.get(module, 0.0) + float(np.sum(va**2))
        return {
            m: (
                math.sqrt(num[m]) / math.sqrt(den[m]) if den[m] > 0 else math.inf if num[m] else 0.0
            )
            for m in num
        }

    # -- internals --------------------------------------------------------------------------

    def _sync(self) -> None:
        """Bring pending device-side values to the host (a Recorder flushes its step log)."""

    def _sorted(self) -> list[EpochRecord]:
        """The records in epoch order: kept while the records dict is the same one with as many
        records (records are only added, and a store load swaps in a new dict)."""
        records = self._records
        kept = self._sorted_of
        if kept is None or kept[0] is not records or len(kept[1]) != len(records):
            kept = self._sorted_of = [records, [records[e] for e in sorted(records)], None]
        return list(kept[1])

    def _record(self, epoch: int | None) -> EpochRecord:
        if not self._records:
            raise LookupError("no epoch recorded yet: call rec.epoch() at the end of each epoch")
        if epoch is None:
            return self._records[max(self._records)]
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)):
            raise TypeError(f"epoch must be an int from rec.epochs, got {type(epoch).__name__}")
        if int(epoch) not in self._records:
            raise KeyError(f"epoch {epoch} was not recorded; recorded epochs: {self.epochs}")
        return self._records[int(epoch)]

    def _read(self, r: EpochRecord, held: Held, name: str, exact: bool, kind: str) -> Snapshot:
        if held.array is not None and (held.exact or not exact):
            source = "disk" if isinstance(held.array, np.memmap) else "memory"
            return Snapshot(name, r.epoch, held.array, held.shape, held.dtype, held.exact, source)
        if held.path is not None and (held.path_exact or not exact):
            try:
                array = load_array(held.path, mmap=True)
            except Exception as e:
                raise OSError(
                    f"could not read the {kind} {name!r} of epoch {r.epoch} from {held.path}: {e}"
                ) from e
            return Snapshot(name, r.epoch, array, held.shape, held.dtype, held.path_exact, "disk")
        if held.path is not None or (held.array is not None and r.epoch in self._policy_reduced):
            raise ThinnedError(
                f"the {kind} {name!r} of epoch {r.epoch} was stored at reduced resolution only, "
                "as the snapshot policy says (see rec.thinned); pass snapshot='full' to Recorder "
                "to keep every epoch at full resolution."
            )
        kept = self.snapshot_epochs(name) if kind == "parameter" else self.activation_epochs(name)
        what = "only at reduced resolution" if held.array is not None else "not at all"
        raise ThinnedError(
            f"the {kind} {name!r} of epoch {r.epoch} is held {what}: it was thinned to stay within "
            f"the budget (see rec.thinned). Epochs that have it: {kept}. Pass store='runs/NAME' "
            "to keep every epoch at full resolution on disk."
        )


def fill_derived(
    r: EpochRecord, edges: dict[str, np.ndarray], names: Iterable[str] | None = None
) -> None:
    """Compute what ``epoch()`` left out of the training loop, from ``r``'s exact snapshots:
    parameter histograms (on the fixed ``edges``) and activation stats. With ``names``, only the
    histograms of those parameters (a view that shows one layer need not pay for all of them).

    They are filled on first read, before a snapshot is thinned, or by the store's writer thread,
    so always from the full tensor. Concurrent fills compute the same values.
    """
    # With names, only those are looked at (a walk over every parameter for each layer a view
    # shows made a workspace's bake quadratic in the parameters: seconds at 3,500).
    if names is None:
        items = list(r.params.items())
    else:
        items = [(n, r.params[n]) for n in dict.fromkeys(names) if n in r.params]
    for name, held in items:
        if name in r.hist or name not in edges:
            continue
        array = held.array if held.array is not None and held.exact else None
        if array is None and held.path is not None and held.path_exact:
            array = load_array(held.path)
        if array is not None:
            t = torch.from_numpy(array if array.flags.writeable else np.array(array))
            r.hist[name] = count(t, edges[name], r.param_stats.get(name))
    if names is None:
        fill_act_stats(r)


def fill_act_stats(r: EpochRecord) -> None:
    """The activation stats of ``r`` not computed yet (see ``fill_derived``)."""
    for layer, held in list(r.acts.items()):
        if layer in r.act_stats:
            continue
        if held.array is not None and held.exact:
            r.act_stats[layer] = array_stats(held.array, units=True)
        elif held.path is not None and held.path_exact:
            r.act_stats[layer] = array_stats(load_array(held.path), units=True)


def _readable(held: Held) -> bool:
    return held.array is not None or held.path is not None
