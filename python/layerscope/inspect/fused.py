"""One pass over a batch of a layer's outputs for every per-unit statistic ``collect`` keeps:
a numba kernel for CPU tensors.

The torch path in ``unitstats.py`` reads each value about 17 times (sums, maxima, minima,
deviations, squares, histogram slots, groups, the index, the bincount); on a small model those
passes cost 30-60 % of the forward pass (BENCHMARKS.md, issue 13). These kernels read each value
once and update, per unit: the count of finite values, the sums of their deviations from a shift
and of the squared deviations, min and max, the histogram slot counts (under, the bins, over),
the zeros, the saturated values, NaN and Inf; per (sample, unit) the sum over positions (the
mean-pooled representation) and the max (the max-pooled one, and the top-k key), whose position
goes with the sample into the unit's top-k when it beats the k-th.

- ``_pass_fast``: one sample at a time is laid out units last in a small buffer (a conv's
  (C, H*W) is transposed; a token layer's (T, D) and a vector layer are read as they are),
  checked for NaN/Inf and values past ``FAST_LIMIT`` (one vectorised compare a value), and the
  work per value runs across units, where the compiler vectorises it: no reduction along a
  short axis, no branch. Sums over a sample's positions are float32 partials of at most 256
  values, added into float64. It stops at the first sample that fails the check.
- ``_pass``, the rest of a batch from that sample: the same statistics over the finite values,
  one value at a time in memory order, in float64.

Arithmetic is that of the torch path where results must agree exactly: a value's histogram slot
is ``v * scale`` then ``+ offset`` in float32 (two roundings), clamped and floored; a value up to
the top edge belongs to the last bin; comparisons for saturation are in float32. The variance
comes from shifted sums, ``m2 = s2 - s1**2 / n``, with each unit's shift a float32 near its mean
(the first batch's mean, or the first finite value when a unit starts in a batch with NaN/Inf):
exact to rounding unless the mean lies ~1e4 standard deviations from it.

numba is optional (``layerscope[dataset]``; umap-learn brings it too): without it, or for
tensors not on the CPU, the torch path runs, and ``collect`` takes the kernel only for datasets
of at least ``MIN_VALUES`` values until it is loaded. Compiled code is cached on disk (numba's
``cache=True``); the first call of a fresh install compiles for a few seconds.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import numpy as np
import torch

from ..numpy_view import numpy_view

# Force the torch path (tests compare the two; LAYERSCOPE_FUSED=0 turns the kernel off).
ENABLED = os.environ.get("LAYERSCOPE_FUSED", "1") != "0"
# Values (samples x per-sample values of the collected layers) from which the kernel repays
# loading numba and the compiled kernel, ~0.3-0.5 s the first time in a process, when the torch
# path costs ~5 ns a value more (BENCHMARKS.md): a smaller dataset takes the torch path until
# the kernel is loaded.
MIN_VALUES = 2**25
# The fast kernels take values of magnitude below this: their float32 partial sums of 256
# squared deviations from a shift below it too stay finite (256 * (2 * 2**56)**2 = 2**122).
# A sample with a value past it, NaN or Inf goes to the careful kernel, in float64.
FAST_LIMIT = 2.0**56

_has_numba: bool | None = None
_compiled: tuple[Any, Any, Any] | None = None


def available() -> bool:
    """Whether the kernel can run: numba installed (not imported here) and not turned off."""
    global _has_numba
    if _has_numba is None:
        _has_numba = importlib.util.find_spec("numba") is not None
    return ENABLED and _has_numba


def worth_it(samples: int | None, per_sample: int) -> bool:
    """Whether ``collect`` should take the kernel for ``samples`` (None: unknown, an iterable)
    of ``per_sample`` values each; always once it is loaded."""
    if not available():
        return False
    return _compiled is not None or samples is None or samples * per_sample >= MIN_VALUES


def _kernels() -> tuple[Any, Any, Any]:
    """(careful, fast, fast for vectors): the kernels below, compiled (or loaded from numba's
    cache) once."""
    global _compiled
    if _compiled is None:
        import numba

        global _keep
        jit = numba.njit(cache=True, nogil=True, boundscheck=False)
        _keep = jit(_keep_py)  # compiled first: the kernels resolve it when they compile
        _compiled = (jit(_pass), jit(_pass_fast), jit(_pass_vec))
    return _compiled


def usable(v: torch.Tensor) -> bool:
    """Whether ``v`` (B, U, P) can take the kernel: a CPU float tensor with values in it."""
    return (
        available()
        and v.device.type == "cpu"
        and v.is_floating_point()
        and v.dim() == 3
        and v.numel() > 0
    )


# The kernels: plain Python functions until _kernels() compiles them.


def _keep_py(top_value: Any, top_index: Any, top_pos: Any, u: int, v: Any, i: int, p: int) -> None:
    """Unit ``u``'s top-k (values descending): insert sample ``i`` with max ``v`` at position
    ``p`` if it beats the k-th; a value already kept that equals it stays first (stable)."""
    j = top_value.shape[1] - 1
    if not v > top_value[u, j]:
        return
    while j > 0 and top_value[u, j - 1] < v:
        top_value[u, j] = top_value[u, j - 1]
        top_index[u, j] = top_index[u, j - 1]
        top_pos[u, j] = top_pos[u, j - 1]
        j -= 1
    top_value[u, j] = v
    top_index[u, j] = i
    top_pos[u, j] = p


_keep = _keep_py  # the kernels call this name; _kernels() makes it the compiled helper


def _pass(
    w: Any,
    units_last: bool,
    first: int,
    scale: Any,
    offset: Any,
    bins: int,
    zslot: int,
    top: Any,
    bounded: bool,
    lo_sat: Any,
    hi_sat: Any,
    shift: Any,
    count: Any,
    s1: Any,
    s2: Any,
    mn: Any,
    mx: Any,
    slots: Any,
    zeros: Any,
    sat: Any,
    nonfinite: Any,
    nan: Any,
    top_value: Any,
    top_index: Any,
    top_pos: Any,
    rowsum: Any,
    rowmax: Any,
) -> int:  # pragma: no cover - compiled
    over = bins + 1
    fover = np.float32(over)
    fzero = np.float32(0.0)
    k_last = top_value.shape[1] - 1
    bad_total = 0
    n_b, n_u, n_p = (w.shape[0], w.shape[2], w.shape[1]) if units_last else w.shape
    for b in range(n_b):
        for u in range(n_u):
            c = shift[u]
            n = count[u]
            lo = mn[u]
            hi = mx[u]
            a2 = 0.0
            rs = 0.0
            rm = np.float32(-np.inf)
            rp = -1
            k0 = 0
            z = 0
            st = 0
            bad = 0
            nn = 0
            for p in range(n_p):
                v = w[b, p, u] if units_last else w[b, u, p]
                if not np.isfinite(v):
                    bad += 1
                    if v != v:
                        nn += 1
                    continue
                if n + k0 == 0:
                    c = np.float64(v)
                    shift[u] = c
                k0 += 1
                rs += v
                if v > rm:
                    rm = v
                    rp = p
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
                d = np.float64(v) - c
                a2 += d * d
                if bounded and (v <= lo_sat or v >= hi_sat):
                    st += 1
                if v == 0:
                    z += 1  # its slot is added once below: no chain of increments
                    continue
                f = v * scale
                f = f + offset
                if f < fzero:
                    f = fzero
                elif f > fover:
                    f = fover
                k = int(f)
                if k == over and v <= top:
                    k = bins  # a value up to the top edge belongs to the last bin
                slots[u, k] += 1
            count[u] = n + k0
            s1[u] += rs - k0 * c
            s2[u] += a2
            mn[u] = lo
            mx[u] = hi
            slots[u, zslot] += z
            zeros[u] += z
            sat[u] += st
            nonfinite[u] += bad
            nan[u] += nn
            rowsum[b, u] = rs
            rowmax[b, u] = rm
            bad_total += bad
            if rm > top_value[u, k_last]:  # rarely, once the top-k has filled
                _keep(top_value, top_index, top_pos, u, rm, first + b, rp)
    return bad_total


def _pass_fast(
    w: Any,
    units_last: bool,
    first: int,
    scale: Any,
    offset: Any,
    bins: int,
    top: Any,
    bounded: bool,
    lo_sat: Any,
    hi_sat: Any,
    limit: Any,
    shift: Any,
    count: Any,
    s1: Any,
    s2: Any,
    mn: Any,
    mx: Any,
    slots: Any,
    zeros: Any,
    sat: Any,
    top_value: Any,
    top_index: Any,
    top_pos: Any,
    rowsum: Any,
    rowmax: Any,
) -> int:  # pragma: no cover - compiled
    """The kernel for a batch with no NaN/Inf: each sample's values are laid out units
    last in a small buffer, and the work per value runs across units, where the compiler
    vectorises it (no reduction along a short axis, no branch); only the histogram's
    increments are scalar."""
    b_n, n_u, p_n = (w.shape[0], w.shape[2], w.shape[1]) if units_last else w.shape
    fover = np.float32(bins + 1)
    fzero = np.float32(0.0)
    fbins = np.float32(bins)
    k_last = top_value.shape[1] - 1
    tmp = np.empty((p_n, n_u), np.float32)
    # per sample: float32 partial sums across units (vector lanes), added into float64 every
    # 256 positions and at the sample's end (so a float32 partial sums at most 256 values)
    rs32 = np.zeros(n_u, np.float32)
    q32 = np.zeros(n_u, np.float32)
    rs = np.empty(n_u, np.float64)
    a2 = np.zeros(n_u, np.float64)
    ssum = np.zeros(n_u, np.float64)
    rmx = np.empty(n_u, np.float32)
    rpos = np.empty(n_u, np.int32)
    lo, hi, c = mn, mx, shift  # updated in place
    c32 = c.astype(np.float32)
    z = np.zeros(n_u, np.int32)  # per batch: at most b_n * p_n < 2**31 values
    st = np.zeros(n_u, np.int32)
    idx = np.empty(n_u, np.int32)
    kth = np.empty(n_u, np.float32)  # each unit's k-th value, contiguous
    for j in range(n_u):
        kth[j] = top_value[j, k_last]
    done = b_n
    for b in range(b_n):
        if units_last:
            tmp[:, :] = w[b]
        else:
            for j in range(n_u):
                for p in range(p_n):
                    tmp[p, j] = w[b, j, p]
        # a sample with NaN/Inf or a value past FAST_LIMIT stops this kernel before it counts
        # (the careful one takes the batch from there): one compare a value, vectorised
        out = 0
        for p in range(p_n):
            for j in range(n_u):
                out += not abs(tmp[p, j]) < limit
        if out:
            done = b
            break
        for j in range(n_u):
            rs[j] = 0.0
            rmx[j] = -np.inf
            rpos[j] = -1
        for p in range(p_n):
            pp = np.int32(p)
            for j in range(n_u):
                v = tmp[p, j]
                rs32[j] += v
                m = rmx[j]
                gt = v > m
                rmx[j] = v if gt else m
                rpos[j] = pp if gt else rpos[j]
                q = lo[j]
                lo[j] = v if v < q else q
                q = hi[j]
                hi[j] = v if v > q else q
                d = v - c32[j]
                q32[j] += d * d
                z[j] += v == 0
                f = v * scale
                f = f + offset
                f = f if f > fzero else fzero
                f = f if f < fover else fover
                # a value up to the top edge belongs to the last bin
                f = fbins if (f == fover) & (v <= top) else f
                idx[j] = np.int32(f)
            if (p & 255) == 255 or p == p_n - 1:
                for j in range(n_u):
                    rs[j] += rs32[j]
                    a2[j] += q32[j]
                    rs32[j] = 0.0
                    q32[j] = 0.0
            if bounded:
                for j in range(n_u):
                    v = tmp[p, j]
                    st[j] += (v <= lo_sat) | (v >= hi_sat)
            for j in range(n_u):
                slots[j, idx[j]] += 1
        for j in range(n_u):
            ssum[j] += rs[j]
            rowsum[b, j] = rs[j]
            rm = rmx[j]
            rowmax[b, j] = rm
            if rm > kth[j]:  # rarely, once the top-k has filled
                _keep(top_value, top_index, top_pos, j, rm, first + b, rpos[j])
                kth[j] = top_value[j, k_last]
    nv = done * p_n
    for j in range(n_u):
        count[j] += nv
        s1[j] += ssum[j] - nv * c[j]
        s2[j] += a2[j]
        zeros[j] += z[j]
        sat[j] += st[j]
    return done


def _pass_vec(
    w: Any,
    first: int,
    scale: Any,
    offset: Any,
    bins: int,
    top: Any,
    bounded: bool,
    lo_sat: Any,
    hi_sat: Any,
    limit: Any,
    shift: Any,
    count: Any,
    s1: Any,
    s2: Any,
    mn: Any,
    mx: Any,
    slots: Any,
    zeros: Any,
    sat: Any,
    top_value: Any,
    top_index: Any,
    top_pos: Any,
    rowsum: Any,
    rowmax: Any,
) -> int:  # pragma: no cover - compiled
    """``_pass_fast`` for a vector layer's batch (B, U), one value per (sample, unit): the
    samples play the positions (float32 partial sums of at most 256 samples' deviations from
    the shift, added into float64), a sample's sum and max are its value, and the top-k test reads each unit's k-th
    value from a contiguous copy. Per sample, ``_pass_fast`` would pay its per-sample passes
    over the units for one value each."""
    b_n, n_u = w.shape
    fover = np.float32(bins + 1)
    fzero = np.float32(0.0)
    fbins = np.float32(bins)
    k_last = top_value.shape[1] - 1
    s32 = np.zeros(n_u, np.float32)
    q32 = np.zeros(n_u, np.float32)
    ssum = np.zeros(n_u, np.float64)
    a2 = np.zeros(n_u, np.float64)
    lo, hi, c = mn, mx, shift  # updated in place
    c32 = c.astype(np.float32)
    z = np.zeros(n_u, np.int32)
    st = np.zeros(n_u, np.int32)
    idx = np.empty(n_u, np.int32)
    kth = np.empty(n_u, np.float32)
    for j in range(n_u):
        kth[j] = top_value[j, k_last]
    done = b_n
    for b in range(b_n):
        out = 0
        for j in range(n_u):
            out += not abs(w[b, j]) < limit
        if out:  # as in _pass_fast: the careful kernel takes the batch from this sample
            done = b
            break
        for j in range(n_u):
            v = w[b, j]
            q = lo[j]
            lo[j] = v if v < q else q
            q = hi[j]
            hi[j] = v if v > q else q
            d = v - c32[j]  # the shift is a float32: exact for values near it
            s32[j] += d
            q32[j] += d * d
            z[j] += v == 0
            f = v * scale
            f = f + offset
            f = f if f > fzero else fzero
            f = f if f < fover else fover
            # a value up to the top edge belongs to the last bin
            f = fbins if (f == fover) & (v <= top) else f
            idx[j] = np.int32(f)
        if (b & 255) == 255:
            for j in range(n_u):
                ssum[j] += s32[j]
                a2[j] += q32[j]
                s32[j] = 0.0
                q32[j] = 0.0
        if bounded:
            for j in range(n_u):
                v = w[b, j]
                st[j] += (v <= lo_sat) | (v >= hi_sat)
        for j in range(n_u):
            slots[j, idx[j]] += 1
        for j in range(n_u):
            v = w[b, j]
            rowsum[b, j] = v
            rowmax[b, j] = v
            if v > kth[j]:  # rarely, once the top-k has filled
                _keep(top_value, top_index, top_pos, j, v, first + b, 0)
                kth[j] = top_value[j, k_last]
    for j in range(n_u):  # the partial sums of the samples since the last flush
        ssum[j] += s32[j]
        a2[j] += q32[j]
        count[j] += done
        s1[j] += ssum[j]
        s2[j] += a2[j]
        zeros[j] += z[j]
        sat[j] += st[j]
    return done


class Accumulators:
    """A layer's running sums of the kernel, numpy arrays (see the module docstring), and the
    kernels' arguments that do not change from batch to batch, made once: a small model's batch
    reduces in ~0.3 ms, and building ~20 arguments per call cost a third of that again."""

    def __init__(
        self,
        units: int,
        bins: int,
        *,
        scale: float,
        offset: float,
        zero_slot: int,
        top_edge: float,
        bounds: tuple[float, float] | None,
        margin: float,
    ) -> None:
        self.shift = np.zeros(units, np.float64)
        self.count = np.zeros(units, np.int64)
        self.s1 = np.zeros(units, np.float64)
        self.s2 = np.zeros(units, np.float64)
        self.min = np.full(units, np.inf, np.float32)
        self.max = np.full(units, -np.inf, np.float32)
        self.slots = np.zeros((units, bins + 2), np.int64)  # under, the bins, over
        self.zeros = np.zeros(units, np.int64)
        self.saturated = np.zeros(units, np.int64)
        self.nonfinite = np.zeros(units, np.int64)
        self.nan = np.zeros(units, np.int64)
        self._started = False  # every unit has a shift (a finite value seen)
        self._rows: tuple[np.ndarray, np.ndarray] | None = None
        lo, hi = bounds if bounds is not None else (0.0, 0.0)
        f32 = np.float32
        edges = (f32(scale), f32(offset), bins)
        where = (f32(top_edge), bounds is not None, f32(lo + margin), f32(hi - margin))
        sums = (self.shift, self.count, self.s1, self.s2, self.min, self.max, self.slots)
        self._fast_args = (*edges, *where, f32(FAST_LIMIT), *sums, self.zeros, self.saturated)
        flags = (self.saturated, self.nonfinite, self.nan)
        self._careful_args = (*edges, zero_slot, *where, *sums, self.zeros, *flags)

    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count, mean, M2) of the finite values per unit, float64 (mean 0 where none)."""
        n = np.maximum(self.count, 1).astype(np.float64)
        m2 = np.maximum(self.s2 - self.s1 * self.s1 / n, 0.0)
        return self.count, self.shift + self.s1 / n, m2

    def add(
        self, v: torch.Tensor, first: int, top: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Fold a batch ``v`` (B, U, P), whose first sample is dataset index ``first``, into the
        sums and into the top-k ``top`` (value, index, position: (U, k) CPU tensors, updated in
        place). Returns the per-(sample, unit) sums and maxima over positions (-inf where a
        sample has no finite value), in buffers the next batch reuses, and the number of
        NaN/Inf values in the batch. One thread: splitting a batch's units over two threads
        measured no faster here (BENCHMARKS.md)."""
        w = v.detach()
        if w.dtype != torch.float32:
            w = w.float()
        # (B, U, P) with positions contiguous (a conv), or units contiguous (a token layer's
        # (B, T, D) seen through as_units): the kernels read either without a copy
        units_last = (w.shape[2] == 1 or w.stride(2) != 1) and w.transpose(1, 2).is_contiguous()
        if units_last:
            a = numpy_view(w.transpose(1, 2))
        else:
            a = numpy_view(w if w.stride(2) == 1 else w.contiguous())
        b = w.shape[0]
        if self._rows is None or self._rows[0].shape[0] != b:
            self._rows = (
                np.empty((b, w.shape[1]), np.float32),
                np.empty((b, w.shape[1]), np.float32),
            )
        rowsum, rowmax = self._rows
        tops = (top[0].numpy(), top[1].numpy(), top[2].numpy())
        done = 0
        # the shift of a unit with no value yet: this batch's mean, when it has no NaN/Inf (one
        # vectorised sum tells; an overflowing one takes the careful kernel too)
        if not self._started and math.isfinite(float(w.sum())):
            fresh = self.count == 0
            # float32 values: the kernel takes deviations in float32 from the same shift
            mean = w.mean(dim=(0, 2), dtype=torch.float64).float().double()
            self.shift[fresh] = mean.numpy()[fresh]
            # the fast kernels' float32 deviations need shifts within their limit too
            self._started = bool(np.all(np.abs(self.shift) < FAST_LIMIT))
        if self._started:  # up to the first sample with NaN/Inf or a value past the limit
            if units_last and w.shape[2] == 1:
                vec = a.reshape(b, w.shape[1])
                done = _kernels()[2](vec, first, *self._fast_args, *tops, rowsum, rowmax)
            else:
                done = _kernels()[1](a, units_last, first, *self._fast_args, *tops, rowsum, rowmax)
            if done == b:
                return rowsum, rowmax, 0
        bad = _kernels()[0](
            a[done:],
            units_last,
            first + done,
            *self._careful_args,
            *tops,
            rowsum[done:],
            rowmax[done:],
        )
        # the careful kernel shifts a unit by its first finite value: within the limit?
        self._started = bool(self.count.all()) and bool(np.all(np.abs(self.shift) < FAST_LIMIT))
        return rowsum, rowmax, int(bad)
