"""On-disk history of a run: one directory per epoch of ``.npy`` files, made visible by a rename.

Layout::

    runs/exp1/
      run.json                    format, version, run id, model class (written once)
      pins.json                   epochs pinned with rec.pin() (replaced atomically)
      epochs/000000/epoch.json    manifest: metrics, stats, change, tensor shapes/dtypes, file names
      epochs/000000/params/p0.npy one file per parameter, full resolution, bit-exact
      epochs/000000/acts/a0.npy   one file per probe activation
      epochs/000000/hist.npz      histogram counts and fixed edges
      epochs/000000/steps.npz     the per-step series recorded since the previous epoch
      epochs/.tmp-000005-PID/     an epoch being written (ignored by readers)

Why this and not zarr: what we write is append-only, whole tensors once per epoch, read back whole
or memory-mapped; we never update a slice. Plain ``.npy`` files need no dependency, any numpy can
read them, ``np.load(mmap_mode="r")`` gives lazy reads of big tensors, and every file is written
once, so the layout suits a network or remote filesystem (one object per tensor). Crash safety
comes from the protocol, not the format: an epoch is written, fsynced, its manifest written last,
and only then the directory is renamed from ``.tmp-*`` to its number (atomic on POSIX). A reader
lists numbered directories that hold an ``epoch.json``, so a ``kill -9`` mid-write leaves every
completed epoch readable and the half-written one invisible. (On an object store without rename,
the manifest-last rule alone gives the same guarantee.)

Writes run on one background thread so ``Recorder.epoch()`` does not wait for the disk. If a
write fails (read-only or full disk), the error is kept and the Recorder warns once, stops
writing, and keeps recording in memory (see ``Recorder``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .histograms import HistogramCounts, count
from .history import EpochRecord, Held, History
from .summary import array_stats

FORMAT = "layerscope-run"
VERSION = 1
# None is "new": a store path that already holds a run (a re-run notebook cell) gets the new run
# in a numbered sibling ("runs/exp1" -> "runs/exp1-2"), losing nothing; "refuse" raises instead.
MODES = (None, "new", "refuse", "append", "overwrite")


class StoreConflictError(FileExistsError):
    """The store path holds another run (or other files): pass ``mode=`` or another path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StoreError(OSError):
    """The store could not be created, written or read; the message names the path and the cause."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _explain(e: OSError, path: Path, doing: str) -> StoreError:
    cause = e.strerror or str(e)
    hint = {
        28: " The disk is full.",
        30: " The filesystem is read-only.",
        13: " Permission denied.",
    }.get(e.errno or 0, "")
    return StoreError(f"layerscope: could not {doing} {path}: {cause}.{hint}")


def write_array(path: Path, array: np.ndarray) -> None:
    """Write one ``.npy`` file and fsync it (the durable unit of the store)."""
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
        f.flush()
        os.fsync(f.fileno())


def _write_json(path: Path, obj: Any) -> None:
    """Write JSON durably: to a temporary name, fsync, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def epoch_dirs(path: Path) -> list[Path]:
    """Completed epoch directories: numbered, holding a manifest. Half-written ones are skipped."""
    root = path / "epochs"
    if not root.is_dir():
        return []
    dirs = [d for d in root.iterdir() if d.name.isdigit() and (d / "epoch.json").is_file()]
    return sorted(dirs, key=lambda d: int(d.name))


def free_sibling(path: Path) -> Path:
    """The first of ``path-2``, ``path-3``, ... that does not exist or is an empty directory."""
    k = 2
    while True:
        candidate = path.with_name(f"{path.name}-{k}")
        if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
            return candidate
        k += 1


class RunStore:
    """The writer of one run directory (see module docstring).

    >>> store = RunStore("runs/exp1", mode=None, model="DigitsCNN")   # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], mode: str | None, model: str = "") -> None:
        if mode not in MODES:
            raise ValueError(
                f"mode must be None, 'new', 'refuse', 'append' or 'overwrite', got {mode!r}"
            )
        # ``requested`` is the path given; ``path`` is where this run goes (a sibling in "new"
        # mode when the requested one already holds a run).
        self.requested = Path(path).expanduser()
        self.path = self.requested
        if mode in (None, "new") and (self.path / "run.json").is_file():
            self.path = free_sibling(self.path)
        self.error: StoreError | None = None
        self.appending = False
        try:
            self._prepare(mode, model)
        except (StoreError, StoreConflictError):
            raise
        except OSError as e:
            raise _explain(e, self.path, "create the layerscope store at") from e
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerscope-store")
        self._futures: list[Future[None]] = []

    def _prepare(self, mode: str | None, model: str) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise StoreConflictError(
                f"layerscope: the store path {p} is a file; pass a directory path"
            )
        if p.is_dir() and any(p.iterdir()):
            if not (p / "run.json").is_file():
                raise StoreConflictError(
                    f"layerscope: {p} is not empty and holds no layerscope run; refusing to write "
                    "into it. Pass a new or empty directory."
                )
            if mode == "refuse":
                n = len(epoch_dirs(p))
                raise StoreConflictError(
                    f"layerscope: {p} already holds a recorded run ({n} epochs). Pass "
                    "mode='append' to continue it, mode='overwrite' to replace it, or a new path."
                )
            if mode == "append":
                self.appending = True
                # Half-written epochs of a crashed writer: never readable, so never needed.
                for stale in (p / "epochs").glob(".tmp-*"):
                    shutil.rmtree(stale, ignore_errors=True)
                return
            for name in ("run.json", "pins.json"):
                (p / name).unlink(missing_ok=True)
            if (p / "epochs").exists():
                shutil.rmtree(p / "epochs")
        (p / "epochs").mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "run_id": uuid.uuid4().hex,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": model,
        }
        _write_json(p / "run.json", meta)

    # -- writing ----------------------------------------------------------------------------

    def submit(
        self,
        record: EpochRecord,
        segments: list[tuple[str, np.ndarray, np.ndarray]],
        edges: dict[str, np.ndarray],
        flags: list[dict[str, Any]],
    ) -> None:
        """Queue ``record`` (its tensors as they are now: full resolution) for writing."""
        if self.error is not None:
            return
        files: list[tuple[str, np.ndarray, Held]] = []
        manifest: dict[str, Any] = {
            "epoch": record.epoch,
            "step": record.step,
            "time": record.time,
            "metrics": record.metrics,
            "pinned": record.pinned,
            "param_stats": record.param_stats,
            "act_stats": dict(record.act_stats),
            "change": record.change,
            "flags": flags,
            "params": {},
            "acts": {},
        }
        for kind, prefix, held_map in (("params", "p", record.params), ("acts", "a", record.acts)):
            for i, (name, held) in enumerate(held_map.items()):
                if held.array is None:
                    continue
                rel = f"{kind}/{prefix}{i}.npy"
                files.append((rel, held.array, held))
                manifest[kind][name] = {"file": rel, "shape": list(held.shape), "dtype": held.dtype}
        steps: dict[str, np.ndarray] = {}
        for i, (_, s, v) in enumerate(segments):
            steps[f"s{i}"] = s
            steps[f"v{i}"] = v
        manifest["steps"] = [key for key, _, _ in segments]
        self._futures.append(
            self._pool.submit(self._write_epoch, record, files, manifest, dict(edges), steps)
        )
        self._futures = [f for f in self._futures if not f.done()]

    def _write_epoch(
        self,
        record: EpochRecord,
        files: list[tuple[str, np.ndarray, Held]],
        manifest: dict[str, Any],
        edges: dict[str, np.ndarray],
        steps: dict[str, np.ndarray],
    ) -> None:
        if self.error is not None:
            return
        epoch = record.epoch
        # Histograms and activation stats left out of the training loop are computed here, off
        # its thread, from the exact arrays this job holds (the record's may be thinned by now).
        act_stats = manifest["act_stats"]
        hist: dict[str, np.ndarray] = {}
        hist_names: list[str] = []
        for rel, array, _ in files:
            kind = "acts" if rel.startswith("acts/") else "params"
            name = next(n for n, i in manifest[kind].items() if i["file"] == rel)
            if kind == "acts" and name not in act_stats:
                act_stats[name] = record.act_stats.get(name) or array_stats(array, units=True)
                record.act_stats.setdefault(name, act_stats[name])
            elif kind == "params" and name in edges:
                h = record.hist.get(name)
                if h is None:
                    h = count(torch.from_numpy(array), edges[name], record.param_stats.get(name))
                    record.hist.setdefault(name, h)
                i = len(hist_names)
                hist_names.append(name)
                hist[f"c{i}"] = h.counts
                hist[f"x{i}"] = np.asarray([h.underflow, h.overflow, h.nan], dtype=np.int64)
                hist[f"e{i}"] = edges[name]
        manifest["hist"] = hist_names
        root = self.path / "epochs"
        tmp = root / f".tmp-{epoch:06d}-{os.getpid()}"
        final = root / f"{epoch:06d}"
        try:
            if tmp.exists():
                shutil.rmtree(tmp)
            (tmp / "params").mkdir(parents=True)
            (tmp / "acts").mkdir()
            for rel, array, _ in files:
                write_array(tmp / rel, array)
            _write_npz(tmp / "hist.npz", hist)
            _write_npz(tmp / "steps.npz", steps)
            _write_json(tmp / "epoch.json", manifest)  # last: marks the epoch complete
            if final.exists():  # an epoch number re-recorded in append mode
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(root)
        except OSError as e:
            self.error = _explain(e, self.path, f"write epoch {epoch} to the store at")
            shutil.rmtree(tmp, ignore_errors=True)
            return
        for rel, _, held in files:
            held.path = final / rel  # from now on a thinned tensor can be read back exactly

    def write_pins(self, pinned: list[int]) -> None:
        if self.error is not None:
            return

        def job() -> None:
            try:
                _write_json(self.path / "pins.json", {"pinned": pinned})
            except OSError as e:
                self.error = _explain(e, self.path, "write pins to the store at")

        self._futures.append(self._pool.submit(job))

    def flush(self) -> None:
        """Wait until every queued epoch is on disk (or failed: see ``error``)."""
        for f in list(self._futures):
            f.result()
        self._futures = []

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)


def load_history(path: str | os.PathLike[str], history: History) -> dict[str, Any]:
    """Fill ``history`` with the completed epochs of the run at ``path``; return its ``run.json``.

    Tensors are not read here: each is a ``Held`` with a ``path``, memory-mapped on first access.
    """
    p = Path(path).expanduser()
    try:
        meta = json.loads((p / "run.json").read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"layerscope: {p} holds no recorded run (no run.json); pass the directory given as "
            "Recorder(store=...)"
        ) from None
    except (OSError, ValueError) as e:
        raise StoreError(f"layerscope: could not read {p / 'run.json'}: {e}") from e
    if meta.get("format") != FORMAT:
        raise StoreError(f"layerscope: {p} is not a layerscope run (format {meta.get('format')!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise StoreError(
            f"layerscope: {p} was written by a newer layerscope (store version {meta['version']}); "
            "upgrade layerscope to read it"
        )
    pins: set[int] | None = None
    if (p / "pins.json").is_file():
        pins = set(json.loads((p / "pins.json").read_text()).get("pinned", []))
    log = history._log
    last_step = 0
    for d in epoch_dirs(p):
        m = json.loads((d / "epoch.json").read_text())
        record = EpochRecord(
            epoch=int(m["epoch"]),
            step=int(m["step"]),
            time=float(m["time"]),
            metrics=m["metrics"],
            param_stats=m["param_stats"],
            act_stats=m["act_stats"],
            change=m["change"],
            pinned=bool(m["pinned"]) if pins is None else int(m["epoch"]) in pins,
        )
        for kind, target in (("params", record.params), ("acts", record.acts)):
            for name, info in m[kind].items():
                target[name] = Held(
                    shape=tuple(info["shape"]),
                    dtype=info["dtype"],
                    exact=True,
                    path=d / info["file"],
                )
        with np.load(d / "hist.npz") as z:
            for i, name in enumerate(m["hist"]):
                under, over, nan = (int(v) for v in z[f"x{i}"])
                record.hist[name] = HistogramCounts(z[f"c{i}"], under, over, nan)
                history._edges.setdefault(name, z[f"e{i}"])
        with np.load(d / "steps.npz") as z:
            for i, key in enumerate(m["steps"]):
                steps = z[f"s{i}"]
                log.load(key, steps, z[f"v{i}"])
                if len(steps):
                    last_step = max(last_step, int(steps.max()) + 1)
        history._flags.extend(m.get("flags", []))
        history._records[record.epoch] = record
        last_step = max(last_step, record.step)
    log.count = last_step
    return meta
