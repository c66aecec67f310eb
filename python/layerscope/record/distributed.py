"""The Recorder under ``torch.distributed`` (DDP, FSDP2 ``fully_shard``): statistics from shards.

No rank ever gathers a full parameter. Each parameter is either *sharded* (an FSDP2 DTensor with a
``Shard(dim)`` placement: every rank holds a slice) or *replicated* (DDP, or a ``Replicate``
DTensor: every rank holds the same tensor, so one rank summarises it: ``owners`` shares them out,
ranks other than 0 first, since rank 0 also runs the probe's statistics and the store's writer).
Per tensor, each contributing rank computes on what it holds: finite count, NaN/±Inf counts,
zeros, sum and sum of squares (float64), min and max; then histogram counts on bins shared by all
ranks. These are all-reduced, so the communication per epoch is O(tensors x bins), independent of
the parameters' sizes:

- a fixed 10-value header (MIN of values and their negations): which call this is (``epoch`` or
  ``close``), the epoch number, a hash of the parameter names and global shapes, a hash of what
  is about to be reduced, and whether this rank's store writes failed. Ranks that called
  ``epoch()`` a different number of times, or hold different models, see different headers and
  all raise the same clear error, instead of a collective of mismatched sizes (which gloo
  answers by aborting a process, or a hang); a failed store stops every rank's (rank 0 would
  otherwise wait for files that never come);
- sharded models only: MIN of [min, -max] per sharded tensor;
- one SUM carrying, per tensor, [finite, nan, posinf, neginf, zeros, sum, sumsq, min, max] (a
  replicated tensor's min and max from its owner, zeros from the others; a shard's come from the
  MIN) and [counts..., underflow, overflow] on the shared edges (a replicated tensor's owner
  chooses its edges at its first epoch from what it holds, the same values every rank then has);
  per replicated tensor the ``fingerprint`` f of each rank's copy and f² (``differ`` tells from
  their sums whether all ranks hold the same bits: a replicated parameter that differs between
  ranks is flagged, and rank 0's copy summarised in one more SUM); and the squared per-step
  gradient/weight/update norms of the epoch's steps (O(steps x tensors): a shard's add up; under
  DDP one rank measures each step, see ``Recorder._measures``, the others add zeros). A sharded
  model's first epoch adds a SUM of the histograms (their edges come from the reduced min/max).

So a DDP epoch costs the header and one SUM: each collective costs a few tenths of a millisecond
of CPU in gloo's threads whatever its size (measured here), so they are few and carry everything.

The collectives run on a gloo side group of their own (CPU tensors: a few KB), created with a
``timeout``: a rank that stops calling ``epoch()`` makes the others raise after that many seconds
rather than hang. The bytes each rank sends are counted in ``bytes_sent``.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..numpy_view import numpy_view
from .histograms import count

HEADER = 10
EPOCH, CLOSE = 0.0, 1.0
# Fingerprints are taken modulo this prime, so that world x f² stays an exact float64 (< 2**53)
# for up to 8192 ranks: the SUM of f and f² then tells exactly whether all ranks agree.
FINGERPRINT_MOD = 1_000_003
# Replicated tensors are summarised by ranks other than 0 first (rank 0 writes the store: its
# writer thread takes a core at each epoch): rank 0 starts with this many values' worth of work
# (a few milliseconds) when the tensors are shared out.
RANK0_HEAD_START = 1 << 20


class DistributedRecorderError(RuntimeError):
    """The ranks of a distributed run disagree (calls, models) or one stopped answering."""


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def local_part(t: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    """``(what this rank holds, shard dim)``: a sharded DTensor's local shard and its dim, or the
    tensor itself and None (replicated)."""
    try:
        from torch.distributed.tensor import DTensor, Shard
    except ImportError:  # pragma: no cover - torch without DTensor
        return t, None
    if isinstance(t, DTensor):
        shards = [p for p in t.placements if isinstance(p, Shard)]
        local = t.to_local()
        if not shards:
            return local, None
        if len(shards) > 1 or t.device_mesh.ndim > 1:
            raise NotImplementedError(
                "layerscope.Recorder: parameters sharded over a multi-dimensional device mesh "
                f"(placements {t.placements}) are not supported yet; 1-D FSDP2 meshes are"
            )
        return local, int(shards[0].dim)
    return t, None


def signature(items: Sequence[tuple[str, Sequence[int]]]) -> float:
    """A hash (exact in float64) of names and global shapes."""
    text = ";".join(f"{n}:{list(s)}" for n, s in items)
    return float(zlib.crc32(text.encode()))


class Collectives:
    """The Recorder's collectives: a gloo group with a timeout, and a count of the bytes sent."""

    def __init__(self, timeout_s: float) -> None:
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.timeout_s = float(timeout_s)
        self.group = dist.new_group(backend="gloo", timeout=timedelta(seconds=self.timeout_s))
        self.bytes_sent = 0
        self.calls = 0

    def all_reduce(self, t: torch.Tensor, op: Any, what: str) -> torch.Tensor:
        t = t.detach().to("cpu", torch.float64).contiguous()
        self.bytes_sent += t.numel() * t.element_size()
        self.calls += 1
        try:
            dist.all_reduce(t, op=op, group=self.group)
        except Exception as e:  # gloo raises RuntimeError/DistBackendError on timeout or peer loss
            raise DistributedRecorderError(
                f"layerscope.Recorder (rank {self.rank} of {self.world}): the other ranks did not "
                f"join the {what} within {self.timeout_s:g} s ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}). Every rank must call rec.epoch() "
                "and rec.close() the same number of times; a rank may also have died."
            ) from e
        return t

    def header(
        self, kind: float, epoch: int, model_sig: float, payload_sig: float, ok: bool = True
    ) -> bool:
        """Check that every rank is at the same call with the same model; raise on all if not.
        ``ok``: this rank's store writes have not failed; returns whether every rank's have not
        (so that a rank waiting for another's files learns that they will never come)."""
        v = torch.tensor(
            [kind, float(epoch), model_sig, payload_sig, 1.0 if ok else 0.0], dtype=torch.float64
        )
        got = self.all_reduce(torch.cat([v, -v]), dist.ReduceOp.MIN, "recorder's check")
        lo, hi = got[:4], -got[5:9]
        if bool((lo != hi).any()):
            names = ("call", "epoch", "model", "step values")
            differ = [n for n, a, b in zip(names, lo.tolist(), hi.tolist(), strict=True) if a != b]
            mine = "close()" if kind == CLOSE else f"epoch() #{epoch}"
            if "call" in differ or "epoch" in differ:
                cause = (
                    "ranks called rec.epoch() a different number of times (or one called "
                    "rec.close() early); call them on every rank, in the same order"
                )
            elif "model" in differ:
                cause = (
                    "ranks hold models with different parameter names or shapes; record the "
                    "same model on every rank"
                )
            else:
                cause = (
                    "ranks recorded different step values (reduce='mean' needs the same "
                    "rec.step() scalars on every rank)"
                )
            raise DistributedRecorderError(
                f"layerscope.Recorder (rank {self.rank}, at {mine}): {cause}. Differing: {differ}."
            )
        return bool(got[4] >= 1)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            dist.destroy_process_group(self.group)


def local_moments(x: torch.Tensor) -> tuple[list[float], float, float]:
    """``([finite, nan, posinf, neginf, zeros, sum, sumsq], min, max)`` of a shard (min/max over
    finite values; +inf/-inf when there is none)."""
    flat = x.detach().reshape(-1)
    if flat.device.type == "cpu" and flat.dtype == torch.float32 and flat.numel():
        fast = _local_moments_numpy(numpy_view(flat))
        if fast is not None:
            return fast
    if not flat.is_floating_point():
        flat = flat.double()
    n = flat.numel()
    zeros = n - int(torch.count_nonzero(flat)) if n else 0
    nan = posinf = neginf = 0
    if n:
        lo, hi = (float(v) for v in torch.aminmax(flat))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            nan = int(torch.isnan(flat).sum())
            posinf = int((flat == math.inf).sum())
            neginf = int((flat == -math.inf).sum())
            flat = flat[torch.isfinite(flat)]
            lo, hi = (
                (float(v) for v in torch.aminmax(flat)) if flat.numel() else (math.inf, -math.inf)
            )
    else:
        lo, hi = math.inf, -math.inf
    d = flat.double()
    s = float(d.sum()) if d.numel() else 0.0
    ss = float(torch.dot(d, d)) if d.numel() else 0.0
    return [float(flat.numel()), nan, posinf, neginf, zeros, s, ss], lo, hi


def _local_moments_numpy(a: np.ndarray) -> tuple[list[float], float, float] | None:
    """``local_moments`` of a CPU float32 shard with no NaN/Inf (None otherwise): a few numpy
    passes where torch's per-call cost dominates a small tensor's (a model's biases), the sums
    in float64 as there."""
    lo, hi = float(a.min()), float(a.max())  # NaN propagates
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    zeros = int(np.count_nonzero(a == 0))  # (count_nonzero on floats is a slower loop)
    d = torch.from_numpy(a.astype(np.float64))
    s, ss = float(d.sum()), float(torch.dot(d, d))
    return [float(a.size), 0, 0, 0, zeros, s, ss], lo, hi


def stats_from(
    shape: Sequence[int], dtype: str, sums: np.ndarray, lo: float, hi: float
) -> dict[str, Any]:
    """``summarize``'s keys from the all-reduced moments of one tensor."""
    finite, nan, posinf, neginf, zeros, s, ss = (float(v) for v in sums)
    numel = int(math.prod(shape))
    out: dict[str, Any] = {
        "shape": list(shape),
        "dtype": dtype,
        "numel": numel,
        "zeros": zeros / numel if numel else None,
        "nan": int(nan),
        "posinf": int(posinf),
        "neginf": int(neginf),
        "finite": int(finite),
    }
    if finite > 0:
        mean = s / finite
        var = max(ss / finite - mean * mean, 0.0)
        out.update(min=lo, max=hi, mean=mean, std=math.sqrt(var), norm=math.sqrt(max(ss, 0.0)))
    else:
        out.update(min=None, max=None, mean=None, std=None, norm=None)
    return out


def local_histogram(
    x: torch.Tensor, edges: np.ndarray, moments: tuple[list[float], float, float] | None = None
) -> np.ndarray:
    """``[counts..., underflow, overflow]`` of a shard on ``edges`` (NaN counted elsewhere):
    ``histograms.count``, told by the shard's ``local_moments`` whether it holds NaN/Inf or
    values outside the edges (one ``histc`` pass when not: every epoch but a few)."""
    stats = None
    if moments is not None:
        m, lo, hi = moments
        finite = m[0] > 0
        stats = {
            "nan": m[1],
            "posinf": m[2],
            "neginf": m[3],
            "min": lo if finite else None,
            "max": hi if finite else None,
        }
    h = count(x, edges, stats)
    return np.concatenate([h.counts.astype(np.float64), [float(h.underflow), float(h.overflow)]])


# Small CPU float32 tensors (biases, small kernels: most of a model's tensors, few of its values)
# are summarised together: one concatenation, segment reductions and one bincount for all of
# them, where a dozen numpy or torch calls each would cost more than their values do.
BATCH_MAX = 1 << 16


def local_summaries(
    xs: Sequence[torch.Tensor],
    edges_for: Callable[[int, float, float], np.ndarray] | None = None,
) -> list[tuple[tuple[list[float], float, float], np.ndarray | None]]:
    """``(local_moments(x), local_histogram(x, edges, moments))`` of each shard, the same values;
    ``edges_for(i, lo, hi)`` gives tensor ``i``'s edges from its min/max here (None: no
    histograms). Small CPU float32 tensors are done in one batch (see ``BATCH_MAX``); the
    rest, and any with NaN/Inf, one by one.

    >>> [m for m, _ in local_summaries([torch.tensor([0.0, 2.0]), torch.tensor([1.0])])]
    [([2.0, 0, 0, 0, 1, 2.0, 4.0], 0.0, 2.0), ([1.0, 0, 0, 0, 0, 1.0, 1.0], 1.0, 1.0)]
    """
    out: list[Any] = [None] * len(xs)
    batch = [
        i
        for i, x in enumerate(xs)
        if x.device.type == "cpu" and x.dtype == torch.float32 and 0 < x.numel() <= BATCH_MAX
    ]
    if len(batch) > 1:
        for i, got in zip(batch, _batched(xs, batch, edges_for), strict=True):
            out[i] = got
    for i, x in enumerate(xs):
        mom = out[i][0] if out[i] is not None else local_moments(x)
        if out[i] is None or (edges_for is not None and out[i][1] is None):
            hist = (
                None if edges_for is None else local_histogram(x, edges_for(i, mom[1], mom[2]), mom)
            )
            out[i] = (mom, hist)
    return out


def _batched(
    xs: Sequence[torch.Tensor],
    idx: list[int],
    edges_for: Callable[[int, float, float], np.ndarray] | None,
) -> list[Any]:
    """``local_summaries`` of the small tensors ``xs[idx]`` in one pass; None for those with
    NaN/Inf (done one by one)."""
    arrays = [numpy_view(xs[i].reshape(-1)) for i in idx]
    sizes = np.fromiter((a.size for a in arrays), np.int64, len(arrays))
    starts = np.zeros(len(arrays), np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    x = np.concatenate(arrays)
    lo = np.minimum.reduceat(x, starts).astype(np.float64)  # NaN propagates
    hi = np.maximum.reduceat(x, starts).astype(np.float64)
    zeros = np.add.reduceat(x == 0, starts, dtype=np.int64)
    d = x.astype(np.float64)
    sums = np.add.reduceat(d, starts)
    sumsq = np.add.reduceat(d * d, starts)
    finite = np.isfinite(lo) & np.isfinite(hi)
    out: list[Any] = [
        (([float(n), 0, 0, 0, int(z), float(s), float(ss)], float(a), float(b)), None)
        if ok
        else None
        for n, z, s, ss, a, b, ok in zip(
            sizes.tolist(),
            zeros.tolist(),
            sums,
            sumsq,
            lo.tolist(),
            hi.tolist(),
            finite.tolist(),
            strict=True,
        )
    ]
    if edges_for is None:
        return out
    # Histograms: histograms.histc's arithmetic (torch.histc's), per value with its tensor's
    # edges, for the tensors whose values all lie inside their edges; one bincount.
    edges = [edges_for(i, lo[k], hi[k]) if finite[k] else None for k, i in enumerate(idx)]
    bins = len(next(e for e in edges if e is not None)) - 1 if any(finite) else 0
    keep = [k for k, e in enumerate(edges) if e is not None and len(e) == bins + 1]
    if not keep:
        return out
    left = np.asarray([edges[k][0] for k in keep]).astype(np.float32)  # type: ignore[index]
    right = np.asarray([edges[k][-1] for k in keep]).astype(np.float32)  # type: ignore[index]
    width = right - left
    good = (width > 0) & np.isfinite(width)
    keep = [k for k, g in zip(keep, good.tolist(), strict=True) if g]
    if not keep:
        return out
    left, right, width = left[good], right[good], width[good]
    n = sizes[keep]
    part = x if len(keep) == len(idx) else np.concatenate([arrays[k] for k in keep])
    offset = np.repeat(np.arange(len(keep)) * (bins + 1), n)
    lefts, widths = np.repeat(left, n), np.repeat(width, n)
    under = over = np.zeros(len(keep), np.int64)
    # (edges[k] as float64 against the float32 min/max, as histograms.count decides)
    if not all(edges[k][0] <= lo[k] and hi[k] <= edges[k][-1] for k in keep):  # type: ignore[index]
        # Values outside the edges: counted apart (float32 comparisons, as count's), the rest
        # binned.
        rights = np.repeat(right, n)
        starts_kept = np.zeros(len(keep), np.int64)
        np.cumsum(n[:-1], out=starts_kept[1:])
        below, above = part < lefts, part > rights
        under = np.add.reduceat(below, starts_kept, dtype=np.int64)
        over = np.add.reduceat(above, starts_kept, dtype=np.int64)
        within = ~(below | above)
        part, lefts, widths, offset = part[within], lefts[within], widths[within], offset[within]
    q = part - lefts
    q *= np.float32(bins)
    q /= widths
    pos = q.astype(np.intp)
    pos += offset
    counts = np.bincount(pos, minlength=len(keep) * (bins + 1)).reshape(len(keep), bins + 1)
    counts[:, bins - 1] += counts[:, bins]  # values equal to the last edge
    for j, k in enumerate(keep):
        row = np.zeros(bins + 2)
        row[:bins] = counts[j, :bins]
        row[bins], row[bins + 1] = under[j], over[j]
        out[k] = (out[k][0], row)
    return out


def owners(
    sizes: Sequence[int | None], world: int, head_start: int = RANK0_HEAD_START
) -> list[int | None]:
    """The rank that summarises each tensor: None for a shard (each rank its own), for a
    replicated tensor (``sizes[i]``: its number of values) one rank, the biggest tensors first to
    the rank with the least work so far (rank 0 starting at ``head_start``, and losing ties).
    Every rank computes the same list from the same sizes.

    >>> owners([131072, 128, None, 18432], world=2)
    [1, 1, None, 1]
    """
    load = [head_start] + [0] * (world - 1)
    out: list[int | None] = [None] * len(sizes)
    order = sorted((i for i, s in enumerate(sizes) if s is not None), key=lambda i: (-sizes[i], i))  # type: ignore[operator]
    for i in order:
        r = min(range(world), key=lambda r: (load[r], r == 0, r))
        out[i] = r
        load[r] += int(sizes[i])  # type: ignore[arg-type]
    return out


def fingerprint(x: torch.Tensor) -> int:
    """An integer in ``[0, FINGERPRINT_MOD)`` that bit-identical tensors share: the wrapping int32
    sum of the tensor's words (one fast pass; exact, so the same on every rank and thread count).

    >>> fingerprint(torch.ones(3)) == fingerprint(torch.ones(3)), fingerprint(torch.zeros(3))
    (True, 0)
    """
    flat = x.detach().contiguous().reshape(-1)
    if flat.numel() == 0:
        return 0
    size = flat.element_size()
    word = torch.int32 if size in (4, 8) else torch.int16 if size == 2 else torch.uint8
    return int(flat.view(word).sum(dtype=torch.int32)) % FINGERPRINT_MOD


def differ(sum_f: float, sum_f2: float, world: int) -> bool:
    """Whether the ranks' fingerprints ``f_r`` differ, from their all-reduced sums of f and f²
    (equal iff world x Σf² = (Σf)², exact in integers)."""
    return world * int(sum_f2) != int(sum_f) ** 2
