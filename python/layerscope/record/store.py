"""The stored history of a run: one directory per epoch, its manifest written last.

Layout (a local directory, or any fsspec URL: ``s3://bucket/runs/exp1``, ``memory://...``)::

    runs/exp1/
      run.json                    format, version, run id, model class, axis (written once)
      writer.json                 the lock: writer id, host, pid, heartbeat (while a writer runs)
      pins.json                   epochs pinned with rec.pin() (replaced whole)
      epochs/000000/epoch.json    manifest: metrics, stats, change, tensor shapes/dtypes, where
                                  each tensor is (a file, or a byte range of the pack)
      epochs/000000/pack.npy      one uint8 .npy: the histogram counts and fixed edges and the
                                  per-step series since the previous epoch (one range, first),
                                  then every tensor up to 1 MiB, each at a 64-byte boundary
      epochs/000000/params/p0.npy a file per bigger parameter (full resolution, or the reduced
                                  image when the snapshot policy says so: ``"exact": false``)
      epochs/000000/acts/a0.npy   a file per bigger probe activation
      epochs/.tmp-000005-PID/     (local only) an epoch being written, ignored by readers
      shards/000000/r1/s0.npy     (torch.distributed) rank 1's shard of a sharded parameter
      shards/000000/r1-pack.npy   (DDP) the probe's activations, from the rank that ran it
      shards/000000/r1.json       rank 1's list of its files (and the activations' stats),
                                  written after them

Version 2 stores (``hist.npz``, ``steps.npz`` and a file per tensor) are still read; appending
to one marks its ``run.json`` with this version (``VERSION``).

Why this and not zarr: what we write is append-only, whole tensors once per epoch, read back whole
or memory-mapped; we never update a slice. Plain ``.npy`` files need no dependency, any numpy can
read them, ``np.load(mmap_mode="r")`` gives lazy reads of big tensors (``np.memmap`` at an offset
for a packed one), and every file is written once, so the layout suits a remote filesystem or
object store. Why a pack: a small model's epoch is dozens of tiny tensors, and a file each (an
open, a write and an fsync each, or a PUT each on an object store) cost more than the recording.

Crash safety comes from the protocol, not the format: an epoch's files are written (fsynced
locally: the pack, each big file, then the manifest), its manifest ``epoch.json`` last, and a
reader lists only epochs whose manifest exists. Locally the epoch is also written under
``.tmp-*`` and renamed to its number (atomic on POSIX); an object store has no rename, but a PUT
is atomic, so the manifest-last rule alone gives the same guarantee. Sharded parameters: every rank writes its shard files and then its ``r{rank}.json``;
rank 0 waits for all of them before it writes the manifest (and under DDP for the index of the
rank that ran the probe, whose activations the manifest lists as one-shard tensors). A ``kill -9`` mid-write leaves every
completed epoch readable and the half-written one invisible.

One writer at a time: ``writer.json`` names the writer; a second ``Recorder`` on the same store
is refused with ``StoreLockedError`` while the first is alive (same host: its pid exists;
another host: its heartbeat, refreshed every 30 s, is younger than 2 minutes).

Writes run on one background thread so ``Recorder.epoch()`` does not wait for the disk. If a
write fails (read-only or full disk), the error is kept and the Recorder warns once, stops
writing, and keeps recording in memory (see ``Recorder``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .histograms import HistogramCounts, count
from .history import EpochRecord, Held, History
from .location import (
    LocalLocation,
    Location,
    PackedArray,
    ShardedArray,
    StoreError,
    open_location,
)
from .steplog import Series
from .summary import array_stats

FORMAT = "layerscope-run"
# 2: sharded parameters, reduced snapshots, writer lock, run axis. 3: an epoch's histograms, step
# series and small tensors in one pack file (version 2 stores are still read). 4: activations in
# another rank's pack (a DDP run's, "packed" entries).
VERSION = 4
# None is "new": a local store path that already holds a run (a re-run notebook cell) gets the new
# run in a numbered sibling ("runs/exp1" -> "runs/exp1-2"), losing nothing; "refuse" raises
# instead (as None does for remote stores and distributed jobs, where a sibling cannot be agreed).
MODES = (None, "new", "refuse", "append", "overwrite")
LOCK = "writer.json"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 120.0
# Tensors up to this many bytes go into the epoch's pack file; bigger ones get their own .npy.
PACK = "pack.npy"
PACK_LIMIT = 1 << 20
ALIGN = 64
# Parts of a pack under this many bytes are copied together into one piece of the write.
SMALL_PART = 1 << 16
# How long rank 0 waits for the other ranks' shard files of an epoch before giving up on them.
SHARD_WAIT_S = 600.0

__all__ = [
    "FORMAT",
    "VERSION",
    "RunStore",
    "StoreConflictError",
    "StoreError",
    "StoreLockedError",
    "complete_epochs",
    "load_history",
    "read_meta",
]


class StoreConflictError(FileExistsError):
    """The store path holds another run (or other files): pass ``mode=`` or another path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StoreLockedError(StoreConflictError):
    """Another writer is recording into this store right now."""


# Writers alive in this process, by id: a lock held by this pid is stale once its store is gone.
_live_writers: weakref.WeakValueDictionary[str, RunStore] = weakref.WeakValueDictionary()


def _explain(e: BaseException, where: str, doing: str) -> StoreError:
    if isinstance(e, StoreError):
        return e
    if isinstance(e, OSError) and e.errno:
        cause = e.strerror or str(e)
        hint = {
            28: " The disk is full.",
            30: " The filesystem is read-only.",
            13: " Permission denied.",
        }.get(e.errno or 0, "")
        return StoreError(f"layerscope: could not {doing} {where}: {cause}.{hint}")
    # Remote filesystems raise their own errors (botocore's ClientError, NoCredentialsError...).
    return StoreError(f"layerscope: could not {doing} {where}: {type(e).__name__}: {e}")


def write_file(path: Path, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
    """Write one file from its pieces and fsync it (the durable unit of a local store). The
    pieces go out in few ``writev`` calls (a pack is a hundred small arrays: one buffered
    ``write`` each cost more than the bytes)."""
    parts = [
        c if isinstance(c, memoryview) and c.format == "B" else memoryview(c).cast("B")
        for c in chunks
    ]
    with open(path, "wb", buffering=0) as f:
        fd = f.fileno()
        i = 0
        while i < len(parts):
            batch = parts[i : i + _IOV_MAX]
            done = os.writev(fd, batch)
            for part in batch:  # a short write: go on from where it stopped
                if done >= len(part):
                    done -= len(part)
                    i += 1
                    continue
                parts[i] = part[done:]
                break
        os.fsync(fd)


_IOV_MAX = 512


def write_array(path: Path, array: np.ndarray) -> None:
    """Write one ``.npy`` file (what ``np.save`` writes) and fsync it."""
    # (not np.ascontiguousarray: it turns a 0-d array, CLIP's logit_scale, into shape (1,))
    a = np.require(array, requirements="C")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(a))
    write_file(path, [header.getvalue(), a.reshape(-1).view(np.uint8).data])


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, order="C"), allow_pickle=False)
    return buf.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj).encode()


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
    """Completed epoch directories of a local store: numbered, holding a manifest."""
    return [path / "epochs" / f"{e:06d}" for e in complete_epochs(LocalLocation(path))]


def complete_epochs(loc: Location, known: set[int] | None = None) -> list[int]:
    """Epoch numbers whose manifest exists (half-written epochs are skipped), ascending.

    ``known``: epochs already seen complete (a follower polls): not asked about again.
    """
    out = []
    for name in loc.listdir("epochs"):
        if not name.isdigit():
            continue
        e = int(name)
        if (known is not None and e in known) or loc.exists(f"epochs/{name}/epoch.json"):
            out.append(e)
    return sorted(out)


def _holder_alive(info: dict[str, Any]) -> bool:
    if info.get("host") == socket.gethostname():
        pid = int(info.get("pid", -1))
        if pid == os.getpid():
            return info.get("writer") in _live_writers
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return time.time() - float(info.get("heartbeat", 0)) < STALE_AFTER_S


def read_meta(loc: Location) -> dict[str, Any]:
    """The run's ``run.json``, checked: format and a version this layerscope reads."""
    where = loc.describe()
    try:
        meta = json.loads(loc.read_bytes("run.json"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"layerscope: {where} holds no recorded run (no run.json); pass the directory or URL "
            "given as Recorder(store=...)"
        ) from None
    except Exception as e:
        raise _explain(e, loc.describe("run.json"), "read") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise StoreError(f"layerscope: {where} is not a layerscope run (format {fmt!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise StoreError(
            f"layerscope: {where} was written by a newer layerscope (store version "
            f"{meta['version']}, this one reads up to {VERSION}); upgrade layerscope to read it"
        )
    return meta


def free_sibling(path: Path) -> Path:
    """The first of ``path-2``, ``path-3``, ... that does not exist or is an empty directory."""
    k = 2
    while True:
        candidate = path.with_name(f"{path.name}-{k}")
        if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
            return candidate
        k += 1


class RunStore:
    """The writer of one run (see module docstring). Under ``torch.distributed`` every rank has
    one: rank 0 owns the run (lock, ``run.json``, manifests), the others write only their shards.

    >>> store = RunStore("runs/exp1", mode=None, model="DigitsCNN")   # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: str | None,
        model: str = "",
        *,
        storage_options: dict[str, Any] | None = None,
        rank: int = 0,
        world: int = 1,
        meta: dict[str, Any] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(
                f"mode must be None, 'new', 'refuse', 'append' or 'overwrite', got {mode!r}"
            )
        loc = open_location(path, storage_options)
        # ``requested`` is the path given; ``path`` is where this run goes (a sibling in "new"
        # mode when the requested one already holds a run).
        self.requested: Path | str = loc.local if loc.local is not None else loc.url
        if (
            mode in (None, "new")
            and world == 1
            and loc.local is not None
            and (loc.local / "run.json").is_file()
        ):
            loc = open_location(str(free_sibling(loc.local)), storage_options)
        self.loc = loc
        self.path: Path | str = self.loc.local if self.loc.local is not None else self.loc.url
        self.rank, self.world = rank, world
        self.writer_id = uuid.uuid4().hex
        self.error: StoreError | None = None
        self.appending = False
        self._closed = threading.Event()
        self._peer_failed = threading.Event()  # another rank's store writes failed
        self._heartbeat: threading.Thread | None = None
        if rank == 0:
            try:
                self._prepare(mode, model, meta or {})
            except (StoreError, StoreConflictError, FileNotFoundError):
                raise
            except Exception as e:
                raise _explain(e, self.loc.describe(), "create the layerscope store at") from e
            _live_writers[self.writer_id] = self
            # The thread holds the store weakly: a Recorder dropped without close() lets go of
            # its lock when it is collected.
            self._heartbeat = threading.Thread(
                target=_beat,
                args=(weakref.ref(self), self._closed),
                name="layerscope-store-heartbeat",
                daemon=True,
            )
            self._heartbeat.start()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerscope-store")
        self._futures: list[Future[None]] = []

    # -- the lock -----------------------------------------------------------------------------

    def _lock_info(self) -> dict[str, Any]:
        return {
            "writer": self.writer_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": getattr(self, "_started", time.time()),
            "heartbeat": time.time(),
        }

    def _take_lock(self) -> None:
        loc = self.loc
        try:
            held = json.loads(loc.read_bytes(LOCK))
        except FileNotFoundError:
            held = None
        except ValueError:
            held = None  # a torn lock file of a killed writer
        if isinstance(held, dict) and _holder_alive(held):
            raise StoreLockedError(
                f"layerscope: another writer is recording into {loc.describe()} right now "
                f"(writer {held.get('writer')}, host {held.get('host')}, pid {held.get('pid')}, "
                f"since {time.strftime('%H:%M:%S', time.localtime(float(held.get('started', 0))))}). "
                "Two writers would corrupt the run: pass another store path, or stop that "
                f"writer first (its lock is {loc.describe(LOCK)})."
            )
        self._started = time.time()
        loc.write_bytes(LOCK, _json_bytes(self._lock_info()))
        # No compare-and-swap on every filesystem: read back; if two writers raced, one loses.
        if json.loads(loc.read_bytes(LOCK)).get("writer") != self.writer_id:
            raise StoreLockedError(
                f"layerscope: another writer took {loc.describe()} at the same moment; pass "
                "another store path"
            )

    # -- creating -----------------------------------------------------------------------------

    def _prepare(self, mode: str | None, model: str, extra: dict[str, Any]) -> None:
        loc = self.loc
        where = loc.describe()
        p = loc.local
        if p is not None:
            if p.exists() and not p.is_dir():
                raise StoreConflictError(
                    f"layerscope: the store path {p} is a file; pass a directory path"
                )
            names = [n.name for n in p.iterdir()] if p.is_dir() else []
        else:
            names = loc.listdir("")
        if names and "run.json" not in names and set(names) != {LOCK}:
            raise StoreConflictError(
                f"layerscope: {where} is not empty and holds no layerscope run; refusing to write "
                "into it. Pass a new or empty directory."
            )
        if LOCK in names:
            self._take_lock()
        if "run.json" in names:
            if mode in (None, "new", "refuse"):
                n = len(complete_epochs(loc))
                raise StoreConflictError(
                    f"layerscope: {where} already holds a recorded run ({n} epochs). Pass "
                    "mode='append' to continue it, mode='overwrite' to replace it, or a new path."
                )
            if mode == "append":
                old = read_meta(loc)  # refuses a store of a newer format before writing into it
                self.appending = True
                if LOCK not in names:
                    self._take_lock()
                if int(old.get("version", 0)) < VERSION:
                    # The epochs appended now are in this version's layout: say so, so that an
                    # older layerscope refuses the run instead of misreading them.
                    loc.write_bytes("run.json", _json_bytes({**old, "version": VERSION}))
                # Half-written epochs of a crashed writer: never readable, so never needed.
                done = {f"{e:06d}" for e in complete_epochs(loc)}
                for name in loc.listdir("epochs"):
                    if name.startswith(".tmp-") or (name.isdigit() and name not in done):
                        loc.rmtree(f"epochs/{name}")
                for name in loc.listdir("shards"):
                    if name not in done:
                        loc.rmtree(f"shards/{name}")
                return
            for name in ("run.json", "pins.json"):
                loc.remove(name)
            loc.rmtree("epochs")
            loc.rmtree("shards")
        if LOCK not in names:
            self._take_lock()
        if p is not None:
            (p / "epochs").mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "run_id": uuid.uuid4().hex,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": model,
            **extra,
        }
        loc.write_bytes("run.json", _json_bytes(meta))

    # -- writing ------------------------------------------------------------------------------

    def submit(
        self,
        record: EpochRecord,
        segments: list[tuple[str, np.ndarray, np.ndarray]],
        edges: dict[str, np.ndarray],
        flags: list[dict[str, Any]],
        sharded: dict[str, dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
        acts_from: int | None = None,
    ) -> None:
        """Queue ``record`` (its tensors as they are now) for writing (rank 0).

        ``sharded``: parameters whose shards every rank writes (``submit_shards``); the manifest
        lists their files once every rank has written them. ``acts_from``: the rank that ran the
        probe and writes its activations (``submit_shards(acts=)``; see ``Recorder``): the
        manifest lists them, with their stats, once that rank has written them."""
        if self.error is not None:
            return
        files: list[tuple[str, str, np.ndarray, Held]] = []
        manifest: dict[str, Any] = {
            "epoch": record.epoch,
            "step": record.step,
            "time": record.time,
            "writer": self.writer_id,
            "metrics": record.metrics,
            "pinned": record.pinned,
            "param_stats": record.param_stats,
            "act_stats": dict(record.act_stats),
            "change": record.change,
            "flags": flags,
            "params": {},
            "acts": {},
            **(extra or {}),
        }
        for kind, prefix, held_map in (("params", "p", record.params), ("acts", "a", record.acts)):
            for i, (name, held) in enumerate(held_map.items()):
                if held.array is None:
                    continue
                # Small tensors share the epoch's pack file; big ones get a file each.
                rel = PACK if held.array.nbytes <= PACK_LIMIT else f"{kind}/{prefix}{i}.npy"
                files.append((kind, name, held.array, held))
                manifest[kind][name] = {
                    "file": rel,
                    "shape": list(held.shape),
                    "dtype": held.dtype,
                    "exact": bool(held.exact),
                }
        steps = [(s, v) for _, s, v in segments]
        manifest["steps"] = [key for key, _, _ in segments]
        # Histograms counted in epoch() (distributed, or no full snapshot kept) go as they are.
        hists = dict(record.hist)
        self._futures.append(
            self._pool.submit(
                self._write_epoch,
                record,
                files,
                manifest,
                dict(edges),
                steps,
                hists,
                sharded or {},
                acts_from,
            )
        )
        self._futures = [f for f in self._futures if not f.done()]

    def submit_shards(
        self,
        epoch: int,
        shards: dict[str, tuple[np.ndarray, int, bool]],
        acts: dict[str, np.ndarray] | None = None,
        flags: list[dict[str, Any]] | None = None,
    ) -> None:
        """Queue this rank's shards of ``epoch``: ``{name: (local array, shard dim, exact)}``
        (not exact: the shard's reduced image, see ``Recorder``); and, from the rank that ran the
        probe, its activations ``{layer: array}`` (their stats counted here) and its flags."""
        if self.error is not None:
            return
        self._futures.append(
            self._pool.submit(self._write_shards, epoch, dict(shards), acts, flags or [])
        )
        self._futures = [f for f in self._futures if not f.done()]

    def _write_shards(
        self,
        epoch: int,
        shards: dict[str, tuple[np.ndarray, int, bool]],
        acts: dict[str, np.ndarray] | None,
        flags: list[dict[str, Any]],
    ) -> None:
        loc = self.loc
        base = f"shards/{epoch:06d}"
        index: dict[str, Any] = {"params": {}, "flags": flags}
        try:
            for i, (name, (array, dim, exact)) in enumerate(shards.items()):
                rel = f"{base}/r{self.rank}/s{i}.npy"
                self._put_array(rel, array)
                index["params"][name] = {
                    "file": rel,
                    "shape": list(array.shape),
                    "dim": dim,
                    "exact": exact,
                }
            if acts is not None:
                # One pack file for all of them (one write, one fsync), as rank 0's epoch; beside
                # the index, in the epoch's directory (a directory of its own costs a mkdir)
                index["acts"] = {}
                rel = f"{base}/r{self.rank}-{PACK}"
                pack = _Pack()
                at = {layer: pack.add(array) for layer, array in acts.items()}
                data = pack.header_size()
                if acts:
                    p = loc.local
                    if p is not None:
                        (p / rel).parent.mkdir(parents=True, exist_ok=True)
                        pack.write(p / rel)
                    else:
                        loc.write_bytes(rel, pack.tobytes())
                for layer, array in acts.items():
                    offset, dtype, shape = at[layer]
                    index["acts"][layer] = {
                        "packed": [rel, data + offset, dtype, shape],
                        "shape": list(array.shape),
                        "dtype": str(array.dtype),
                        "stats": array_stats(array, units=True),
                    }
            # Last. Not fsynced: rank 0 copies it into its manifest, which is (the files it
            # lists are, before it).
            loc.write_bytes(f"{base}/r{self.rank}.json", _json_bytes(index), durable=False)
        except Exception as e:
            self.error = _explain(
                e, loc.describe(), f"write rank {self.rank}'s shards of epoch {epoch} to"
            )

    def _put_array(self, rel: str, array: np.ndarray) -> None:
        p = self.loc.local
        if p is not None:
            (p / rel).parent.mkdir(parents=True, exist_ok=True)
            write_array(p / rel, array)
        else:
            self.loc.write_bytes(rel, _npy_bytes(array))

    def _collect_shards(
        self, epoch: int, names: dict[str, dict[str, Any]], acts_from: int | None
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """Wait for the shard indexes of ``epoch`` (every rank's when parameters are sharded, the
        probe rank's when another rank ran the probe); the manifest entries of the parameters and
        of the activations, the activations' stats, and that rank's flags."""
        base = f"shards/{epoch:06d}"
        ranks = set(range(self.world)) if names else set()
        if acts_from is not None:
            ranks.add(acts_from)
        indexes: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + SHARD_WAIT_S
        while len(indexes) < len(ranks):
            for r in sorted(ranks):
                if r not in indexes:
                    with contextlib.suppress(FileNotFoundError):
                        indexes[r] = json.loads(self.loc.read_bytes(f"{base}/r{r}.json"))
            if len(indexes) < len(ranks):
                if self._peer_failed.is_set():
                    missing = sorted(ranks - set(indexes))
                    raise StoreError(
                        f"layerscope: rank(s) {missing} could not write their files of epoch "
                        f"{epoch} to {self.loc.describe(base)} (see that rank's warning)"
                    )
                if time.monotonic() > deadline or (self._closed.is_set() and self.error):
                    missing = sorted(ranks - set(indexes))
                    raise StoreError(
                        f"layerscope: rank(s) {missing} never wrote their shards of epoch {epoch} "
                        f"to {self.loc.describe(base)} (waited {SHARD_WAIT_S:.0f} s)"
                    )
                time.sleep(0.05)
                self.loc.refresh()
        params: dict[str, Any] = {}
        for name, info in names.items():
            parts = [
                indexes[r]["params"][name]
                for r in range(self.world)
                if name in indexes[r]["params"]
            ]
            exact = all(q.get("exact", True) for q in parts)
            params[name] = {
                "shards": [{"file": q["file"], "shape": q["shape"]} for q in parts],
                "dim": int(info["dim"]),
                "shape": list(info["shape"]),
                "dtype": info["dtype"],
                "exact": exact,
            }
            if not exact:  # the reduced images of the shards, stacked along their rows
                rows = sum(int(q["shape"][0]) for q in parts)
                params[name]["image_shape"] = [rows, int(parts[0]["shape"][1])]
        acts: dict[str, Any] = {}
        act_stats: dict[str, Any] = {}
        flags: list[dict[str, Any]] = []
        if acts_from is not None:
            index = indexes[acts_from]
            flags = list(index.get("flags", []))
            for layer, q in index.get("acts", {}).items():
                acts[layer] = {
                    "packed": q["packed"],
                    "shape": q["shape"],
                    "dtype": q["dtype"],
                    "exact": True,
                }
                act_stats[layer] = q["stats"]
        return params, acts, act_stats, flags

    def _write_epoch(
        self,
        record: EpochRecord,
        files: list[tuple[str, str, np.ndarray, Held]],
        manifest: dict[str, Any],
        edges: dict[str, np.ndarray],
        steps: list[tuple[np.ndarray, np.ndarray]],
        hists: dict[str, HistogramCounts],
        sharded: dict[str, dict[str, Any]],
        acts_from: int | None = None,
    ) -> None:
        if self.error is not None:
            return
        epoch = record.epoch
        # Histograms and activation stats left out of the training loop are computed here, off
        # its thread, from the exact arrays this job holds (the record's may be thinned by now).
        act_stats = manifest["act_stats"]
        for kind, name, array, held in files:
            if kind == "acts" and name not in act_stats:
                act_stats[name] = record.act_stats.get(name) or array_stats(array, units=True)
                record.act_stats.setdefault(name, act_stats[name])
            elif kind == "params" and name in edges and name not in hists and held.exact:
                h = record.hist.get(name)
                if h is None:
                    h = count(torch.from_numpy(array), edges[name], record.param_stats.get(name))
                    record.hist.setdefault(name, h)
                hists[name] = h
        # One pack file: histograms and step series first (what a follower reads of every epoch,
        # one range), then the small tensors.
        pack = _Pack()
        hist_names = [name for name in hists if name in edges]
        manifest["hist"] = hist_names
        manifest["hist_at"] = [
            [
                pack.add(hists[name].counts),
                pack.add(
                    np.asarray(
                        [hists[name].underflow, hists[name].overflow, hists[name].nan], np.int64
                    )
                ),
                pack.add(np.asarray(edges[name], np.float64)),
            ]
            for name in hist_names
        ]
        manifest["steps_at"] = [[pack.add(s), pack.add(v)] for s, v in steps]
        meta_end = pack.size
        big: list[tuple[str, np.ndarray]] = []
        for kind, name, array, _ in files:
            entry = manifest[kind][name]
            if entry["file"] == PACK:
                entry["at"] = pack.add(array)
            else:
                big.append((entry["file"], array))
        data = pack.header_size()
        manifest["pack"] = {"file": PACK, "data": data, "meta": [0, meta_end]}
        loc = self.loc
        try:
            from_ranks: tuple[Any, ...] = ({}, {}, {}, [])
            if sharded or acts_from is not None:
                from_ranks = self._collect_shards(epoch, sharded, acts_from)
                manifest["params"].update(from_ranks[0])
                manifest["acts"].update(from_ranks[1])
                manifest["act_stats"].update(from_ranks[2])
                manifest["flags"] = [*manifest["flags"], *from_ranks[3]]
            p = loc.local
            if p is not None:
                root = p / "epochs"
                tmp = root / f".tmp-{epoch:06d}-{os.getpid()}"
                final = root / f"{epoch:06d}"
                try:
                    if tmp.exists():
                        shutil.rmtree(tmp)
                    tmp.mkdir(parents=True)
                    # fsynced: the pack, each big tensor, the manifest (last), the rename. Small
                    # tensors in one file make that a few fsyncs an epoch, not one per tensor.
                    pack.write(tmp / PACK)
                    for rel, array in big:
                        (tmp / rel).parent.mkdir(exist_ok=True)
                        write_array(tmp / rel, array)
                    # last: marks the epoch complete
                    # (straight into the epoch's directory: it is invisible until renamed)
                    write_file(tmp / "epoch.json", [_json_bytes(manifest)])
                    if final.exists():  # an epoch number re-recorded in append mode
                        shutil.rmtree(final)
                    os.rename(tmp, final)
                    _fsync_dir(root)
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
            else:
                base = f"epochs/{epoch:06d}"
                loc.remove(f"{base}/epoch.json")  # an epoch number re-recorded in append mode
                loc.write_bytes(f"{base}/{PACK}", pack.tobytes())
                for rel, array in big:
                    loc.write_bytes(f"{base}/{rel}", _npy_bytes(array))
                loc.write_bytes(f"{base}/epoch.json", _json_bytes(manifest))  # last
        except Exception as e:
            self.error = _explain(e, loc.describe(), f"write epoch {epoch} to the store at")
            return
        base = f"epochs/{epoch:06d}"
        for kind, name, _, held in files:
            if held.exact:  # from now on a thinned tensor can be read back exactly
                held.path = _reference(loc, base, manifest[kind][name], manifest["pack"])
        for name, entry in manifest["params"].items():
            if "shards" in entry and name in record.params:
                record.params[name].path = _sharded_reference(loc, entry)
                record.params[name].path_exact = bool(entry["exact"])
        if from_ranks[1]:
            # Another rank's activations: this record learns of them now (new dicts swapped
            # in whole: the training thread may be reading the old ones).
            arrived = {
                layer: Held(tuple(e["shape"]), e["dtype"], True, path=_reference(loc, "", e, None))
                for layer, e in from_ranks[1].items()
            }
            record.act_stats = {**record.act_stats, **from_ranks[2]}
            record.acts = {**record.acts, **arrived}

    def peer_failed(self) -> None:
        """Another rank's store writes failed (the Recorder's collectives say so): stop waiting
        for its files, and write no more (this store's error says why)."""
        self._peer_failed.set()
        if self.error is None:
            self.error = StoreError(
                f"layerscope: another rank could not write its files to {self.loc.describe()} "
                "(see that rank's warning); this rank stops writing the store too"
            )

    def write_pins(self, pinned: list[int]) -> None:
        if self.error is not None or self.rank != 0:
            return

        def job() -> None:
            try:
                self.loc.write_bytes("pins.json", _json_bytes({"pinned": pinned}))
            except Exception as e:
                self.error = _explain(e, self.loc.describe(), "write pins to the store at")

        self._futures.append(self._pool.submit(job))

    def flush(self) -> None:
        """Wait until every queued epoch is written (or failed: see ``error``)."""
        for f in list(self._futures):
            f.result()
        self._futures = []

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
        self.release()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock (rank 0; once)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self.rank == 0:
            _live_writers.pop(self.writer_id, None)
            try:
                held = json.loads(self.loc.read_bytes(LOCK))
                if held.get("writer") == self.writer_id:
                    self.loc.remove(LOCK)
            except Exception:
                pass  # a lock left behind is stale once this process is gone


def _beat(ref: weakref.ref[RunStore], closed: threading.Event) -> None:
    while not closed.wait(HEARTBEAT_S):
        store = ref()
        if store is None:
            return
        # The store's writes report errors; the heartbeat stays quiet.
        with contextlib.suppress(Exception):
            store.loc.write_bytes(LOCK, _json_bytes(store._lock_info()))
        del store


class _Pack:
    """Arrays laid out one after another in one byte buffer, each at a 64-byte boundary; ``add``
    returns ``[offset, numpy dtype, shape]`` (the manifest's reference to it)."""

    def __init__(self) -> None:
        self.parts: list[tuple[int, np.ndarray]] = []
        self.size = 0
        # An array added twice is stored once: the step indices of a block of per-parameter
        # series are one array shared by all of them (see StepLog.flush).
        self._seen: dict[int, tuple[np.ndarray, list[Any]]] = {}

    def add(self, array: np.ndarray) -> list[Any]:
        seen = self._seen.get(id(array))
        if seen is not None and seen[0] is array:
            return seen[1]
        a = array if array.flags.c_contiguous else np.require(array, requirements="C")
        offset = -(-self.size // ALIGN) * ALIGN
        self.parts.append((offset, a))
        self.size = offset + a.nbytes
        ref = [offset, a.dtype.str, list(a.shape)]
        self._seen[id(array)] = (array, ref)
        return ref

    def _header(self) -> bytes:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {"descr": "|u1", "fortran_order": False, "shape": (self.size,)}
        )
        return buf.getvalue()

    def header_size(self) -> int:
        """Bytes before the data in the ``.npy`` file (where the offsets start)."""
        return len(self._header())

    def _chunks(self) -> list[memoryview | bytes | bytearray]:
        """The ``.npy`` file of one uint8 array holding every part, as the pieces to write: the
        big parts as they are (no copy), the small ones (histograms, step series, biases: most
        of the parts, few of the bytes) copied together, so that the write takes a few pieces
        instead of one per array."""
        out: list[memoryview | bytes | bytearray] = [self._header()]
        small = bytearray()
        at = 0
        for offset, a in self.parts:
            if a.nbytes >= SMALL_PART:
                if offset > at or small:
                    small += bytes(offset - at)
                    out.append(small)
                    small = bytearray()
                out.append(a.reshape(-1).view(np.uint8).data)
            else:
                small += bytes(offset - at)
                small += a.reshape(-1).view(np.uint8).data
            at = offset + a.nbytes
        if small:
            out.append(small)
        return out

    def write(self, path: Path) -> None:
        """Write the pack's ``.npy`` and fsync it."""
        write_file(path, self._chunks())

    def tobytes(self) -> bytes:
        return b"".join(self._chunks())


def _reference(loc: Location, base: str, entry: dict[str, Any], pack: dict[str, Any] | None) -> Any:
    """How a ``Held`` reads back a stored tensor: its own ``.npy``, its range of the pack, or
    (``"packed"``: an activation written by another rank) its range of that rank's pack."""
    if "packed" in entry:
        rel, start, dtype, shape = entry["packed"]
        return PackedArray(loc, rel, int(start), dtype, tuple(shape))
    if "at" in entry and pack is not None:
        offset, dtype, shape = entry["at"]
        rel = f"{base}/{pack['file']}"
        return PackedArray(loc, rel, int(pack["data"]) + int(offset), dtype, tuple(shape))
    return loc.reference(f"{base}/{entry['file']}")


def _unpack(blob: bytes, start: int, at: list[Any]) -> np.ndarray:
    offset, dtype, shape = at
    dt = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(blob, dt, n, int(offset) - start).reshape(shape).copy()


def _sharded_reference(loc: Location, entry: dict[str, Any]) -> ShardedArray:
    parts = [loc.reference(s["file"]) for s in entry["shards"]]
    shape = entry.get("image_shape", entry["shape"])  # a reduced image's, or the parameter's
    return ShardedArray(parts, int(entry["dim"]), tuple(shape))


def load_history(
    path: str | os.PathLike[str] | Location,
    history: History,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fill ``history`` with the completed epochs of the run at ``path`` that it does not hold
    yet (so a follower calls it again for what came since); return its ``run.json``.

    Tensors are not read here: each is a ``Held`` with a ``path``, read on first access
    (memory-mapped locally, fetched whole from a remote store).

    A follower calls this on its poller's thread while the kernel reads: new epochs are built in
    copies of the history's dicts, swapped in at the end (a reader never iterates a dict that
    grows under it).
    """
    loc = path if isinstance(path, Location) else open_location(path, storage_options)
    meta = read_meta(loc)
    known = set(history._records)
    new = [e for e in complete_epochs(loc, known) if e not in known]
    if not new:  # a follower's poll with nothing new: nothing copied
        return meta
    pins: set[int] | None = None
    with contextlib.suppress(FileNotFoundError):
        pins = set(json.loads(loc.read_bytes("pins.json")).get("pinned", []))
    log = history._log
    last_step = log.count
    records = dict(history._records)
    edges = dict(history._edges)
    series = {k: Series(list(v.segments)) for k, v in log.series.items()}
    flags: list[dict[str, Any]] = []
    thinned: list[dict[str, Any]] = []
    for e in new:
        base = f"epochs/{e:06d}"
        m = json.loads(loc.read_bytes(f"{base}/epoch.json"))
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
                if "shards" in info:
                    exact = bool(info.get("exact", True))
                    target[name] = Held(
                        tuple(info["shape"]),
                        info["dtype"],
                        exact,
                        path=_sharded_reference(loc, info),
                        path_exact=exact,
                    )
                    continue
                exact = bool(info.get("exact", True))
                target[name] = Held(
                    shape=tuple(info["shape"]),
                    dtype=info["dtype"],
                    exact=exact,
                    path=_reference(loc, base, info, m.get("pack")),
                    path_exact=exact,
                )
        hist_series: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        step_series: list[tuple[str, np.ndarray, np.ndarray]] = []
        pack = m.get("pack")
        if pack is not None:  # version 3: histograms and steps in one range of the pack
            lo, hi = (int(v) for v in pack["meta"])
            data = int(pack["data"])
            blob = loc.read_range(f"{base}/{pack['file']}", data + lo, data + hi)
            for name, (c, x, ed) in zip(m["hist"], m["hist_at"], strict=True):
                hist_series.append((name, *(_unpack(blob, lo, at) for at in (c, x, ed))))
            for key, (s_at, v_at) in zip(m["steps"], m["steps_at"], strict=True):
                step_series.append((key, _unpack(blob, lo, s_at), _unpack(blob, lo, v_at)))
        else:  # version 2: hist.npz and steps.npz
            with np.load(io.BytesIO(loc.read_bytes(f"{base}/hist.npz"))) as z:
                for i, name in enumerate(m["hist"]):
                    hist_series.append((name, z[f"c{i}"], z[f"x{i}"], z[f"e{i}"]))
            with np.load(io.BytesIO(loc.read_bytes(f"{base}/steps.npz"))) as z:
                for i, key in enumerate(m["steps"]):
                    step_series.append((key, z[f"s{i}"], z[f"v{i}"]))
        for name, c, x, ed in hist_series:
            under, over, nan = (int(v) for v in x)
            record.hist[name] = HistogramCounts(c, under, over, nan)
            edges.setdefault(name, ed)
        for key, steps, values in step_series:
            series.setdefault(key, Series()).segments.append((steps, values))
            if len(steps):
                last_step = max(last_step, int(steps.max()) + 1)
        flags.extend(m.get("flags", []))
        thinned.extend(m.get("skipped", []))
        records[record.epoch] = record
        last_step = max(last_step, record.step)
    log.series = series
    history._edges = edges
    history._flags = [*history._flags, *flags]
    history._thinned = [*history._thinned, *thinned]
    log.count = last_step
    history._records = records
    return meta
