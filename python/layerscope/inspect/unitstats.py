"""Per-unit statistics of one layer over a stream of batches, and its per-unit top-k samples.

A *unit* is a channel of a conv output ``(N, C, *space)`` or a feature of ``(N, D)`` / a hidden
dimension of a token output ``(N, T, D)``; a unit's *values* are all its positions in all samples.

- mean and std: Chan's parallel combination of per-batch means and squared deviations in
  float64, over finite values only (NaN/Inf are counted per unit, never folded into a statistic);
- fraction of zeros, and fraction saturated for bounded activations (within 1 % of the range
  from a bound of Sigmoid, Tanh, Hardtanh, ReLU6, Softmax, Hardsigmoid outputs; NaN otherwise);
- a histogram per unit on edges fixed from the first update (the first batch, or the first
  chunk of batches that ``collect`` reduces together: its finite range widened by half on each
  side, as for weights in ``record/histograms.py``), with under/overflow counts, so
  ``hist.sum(1) + under + over == count`` (the finite values; ``nonfinite`` apart);
- top-k samples per unit by their largest value over positions: value, sample index, and the
  position of that value (flat over the spatial/time positions).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import fused

# Output ranges of bounded activation modules: saturation is measured for these only.
BOUNDS: dict[type, tuple[float, float]] = {
    nn.Sigmoid: (0.0, 1.0),
    nn.Tanh: (-1.0, 1.0),
    nn.ReLU6: (0.0, 6.0),
    nn.Softmax: (0.0, 1.0),
    nn.Hardsigmoid: (0.0, 1.0),
}
SATURATION_MARGIN = 0.01
HEADROOM = 0.5

CHANNEL_FIRST = (
    nn.Conv1d,
    nn.ConvTranspose1d,
    nn.BatchNorm1d,
    nn.MaxPool1d,
    nn.AvgPool1d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveMaxPool1d,
    nn.InstanceNorm1d,
)


def bounds_of(module: nn.Module) -> tuple[float, float] | None:
    """The output range of a bounded activation module, else None."""
    if isinstance(module, nn.Hardtanh):  # ReLU6 is a Hardtanh too
        return (float(module.min_val), float(module.max_val))
    for kind, b in BOUNDS.items():
        if isinstance(module, kind):
            return b
    return None


def unit_layout(module: nn.Module, shape: tuple[int, ...]) -> str:
    """How a layer's output ``(N, ...)`` holds its units: "vec" (N, D), "seq" (N, T, D) units
    last, "conv" (N, C, *space) units first."""
    if len(shape) < 2:
        raise ValueError(
            f"a layer output of shape {shape} has no unit axis: collect needs (N, D), (N, T, D) "
            "or (N, C, ...) outputs"
        )
    if len(shape) == 2:
        return "vec"
    if len(shape) == 3 and not isinstance(module, CHANNEL_FIRST):
        return "seq"
    return "conv"


def as_units(out: torch.Tensor, layout: str) -> torch.Tensor:
    """``(N, U, P)``: samples x units x positions."""
    if layout == "vec":
        return out.unsqueeze(-1)
    if layout == "seq":
        return out.transpose(1, 2)
    return out.flatten(2)


class UnitStats:
    """Running per-unit statistics (see the module docstring); ``finish()`` gives numpy arrays.

    Cost: a batch whose values are all finite (the common case, told by the sum of the batch)
    takes a fixed handful of passes over its values whatever the number of units: the sums per
    sample (which are also the mean-pooled representation), the per-sample max (also the
    max-pooled one, and the top-k key), the min, one pass for the deviations from the batch mean,
    and the histogram, whose ONE ``bincount`` also counts zeros and (for bounded activations)
    saturated values: each value's index is ``unit, group, bin`` with the group told by
    arithmetic (``heaviside``), not by boolean masks. Top-k merges only the samples that beat a
    unit's current k-th value. No Python loop runs over units, and a batch syncs with the device
    twice (its flags, and the number of top-k candidates). NaN/Inf take masked reductions.

    Precision: a batch reduces in float32 (torch's pairwise sums) around its own mean, and
    batches combine in float64 (Chan et al.), so the variance never comes from a difference of
    large sums; counts are int64.
    """

    def __init__(self, units: int, bins: int, bounds: tuple[float, float] | None, top_k: int):
        self.units, self.bins, self.bounds, self.top_k = units, bins, bounds, top_k
        self.edges: np.ndarray | None = None
        self.stride = bins + 3  # slots: under, the bins, over, not finite
        self.groups = 6 if bounds is not None else 2  # (zero or not) x (low-sat, mid, high-sat)
        self.samples = 0
        self.extent = 0.0  # the largest finite |value| so far
        self.last_all_finite = True
        # Pooled forms of the last batch, (B, U), when it was all finite (None otherwise).
        self.last_rowsum: torch.Tensor | None = None
        self.last_rowmax: torch.Tensor | None = None
        self._ready = False
        self._offsets_t: torch.Tensor | None = None
        self._fused: fused.Accumulators | None = None  # the one-pass kernel's sums, if it ran

    def _start(self, device: torch.device) -> None:
        u, k = self.units, self.top_k
        # float64 accumulators live beside the activations unless the device has no float64
        acc = device if device.type in ("cpu", "cuda") else torch.device("cpu")
        self._acc = acc
        self.count = torch.zeros(u, dtype=torch.int64, device=acc)  # finite values per unit
        self.nonfinite = torch.zeros(u, dtype=torch.int64, device=acc)
        self.nan = torch.zeros(u, dtype=torch.int64, device=acc)
        self.mean = torch.zeros(u, dtype=torch.float64, device=acc)
        self.m2 = torch.zeros(u, dtype=torch.float64, device=acc)
        self.zeros = torch.zeros(u, dtype=torch.int64, device=acc)
        self.saturated = torch.zeros(u, dtype=torch.int64, device=acc)
        self.min = torch.full((u,), math.inf, dtype=torch.float32, device=acc)
        self.max = torch.full((u,), -math.inf, dtype=torch.float32, device=acc)
        self.slots = torch.zeros((u, self.stride), dtype=torch.int64, device=acc)
        # the fast histogram's bincounts, (unit, group, slot), resolved in finish()
        self.raw = torch.zeros((u, self.groups, self.stride), dtype=torch.int64, device=acc)
        self.uniform: int | None = 0  # every unit's count while every batch was all finite
        self.top_value = torch.full((u, k), -math.inf, dtype=torch.float32, device=device)
        self.top_index = torch.full((u, k), -1, dtype=torch.int64, device=device)
        self.top_pos = torch.full((u, k), -1, dtype=torch.int64, device=device)
        self._ready = True

    def update(self, v: torch.Tensor, start: int) -> None:
        """Add a batch ``v`` of shape (B, U, P) whose first sample is dataset index ``start``."""
        # (B, P, U) with units innermost: reductions over positions then run across units in
        # vector lanes (10x faster than over a short innermost axis); a token output (B, T, D)
        # and a vector (B, D) are already laid out so: no copy.
        self.update_units_last(v.detach().transpose(1, 2).contiguous(), start)

    def update_native(self, v: torch.Tensor, start: int) -> None:
        """Add a batch ``v`` of shape (B, U, P) as the layer gave it (``as_units``): one pass of
        the fused kernel (``fused.py``) on the CPU, else the torch path of ``update``."""
        if not fused.usable(v):
            self.update(v, start)
            return
        b = v.shape[0]
        if not self._ready:
            self._start(torch.device("cpu"))
        if self.edges is None:
            w = v.detach().float()
            ok = w[torch.isfinite(w)]
            if ok.numel():
                lo, hi = torch.aminmax(ok)
                self._set_edges(float(lo), float(hi))
            else:
                self._set_edges(math.nan, math.nan)
        assert self.edges is not None
        if self._fused is None:
            lo_b, hi_b = self.bounds if self.bounds is not None else (0.0, 0.0)
            self._fused = fused.Accumulators(
                self.units,
                self.bins,
                scale=self._scale,
                offset=self._shift,
                zero_slot=self._zero_slot,
                top_edge=float(self.edges[-1]),
                bounds=self.bounds,
                margin=SATURATION_MARGIN * (hi_b - lo_b),
            )
        acc = self._fused
        rowsum, rowmax, bad = acc.add(v, start, (self.top_value, self.top_index, self.top_pos))
        # inf: no finite value yet
        big = max(-float(acc.min.min()), float(acc.max.max()))
        if math.isfinite(big) and big > self.extent:
            self.extent = big
        self.uniform = None
        self.last_all_finite = bad == 0
        if bad == 0:
            self.last_rowsum, self.last_rowmax = torch.from_numpy(rowsum), torch.from_numpy(rowmax)
        else:
            self.last_rowsum = self.last_rowmax = None
        self.samples += b

    def _fold_fused(self) -> None:
        """Add the kernel's sums into the torch accumulators (``finish``)."""
        acc, self._fused = self._fused, None
        if acc is None:
            return
        n, mean, m2 = (torch.from_numpy(a) for a in acc.moments())
        self.uniform = None
        self._combine(n, mean, m2)
        self.min = torch.minimum(self.min, torch.from_numpy(acc.min))
        self.max = torch.maximum(self.max, torch.from_numpy(acc.max))
        self.slots[:, : self.bins + 2] += torch.from_numpy(acc.slots)
        for name in ("zeros", "saturated", "nonfinite", "nan"):
            getattr(self, name).add_(torch.from_numpy(getattr(acc, name)))

    def update_units_last(
        self, w: torch.Tensor, start: int, scratch: Scratch | None = None
    ) -> None:
        """Add a batch ``w`` of shape (B, P, U), contiguous, first sample ``start``; ``scratch``
        lends the batch-sized temporaries (else they are allocated)."""
        sc = scratch if scratch is not None else Scratch(keep=False)
        if w.dtype != torch.float32:
            w = w.float()
        b, p, _ = w.shape
        if not self._ready:
            self._start(w.device)
        # Assume all finite: the sums per sample are then the pooled mean too.
        rowsum = w.sum(1)
        rowmax = w.amax(1) if p > 1 else w[:, 0]
        mn = (w.amin(1) if p > 1 else rowmax).amin(0)
        mx = rowmax.amax(0)
        s1 = rowsum.sum(0)
        total, vmax, vmin = torch.stack([s1.sum(), mx.max(), mn.min()]).tolist()
        all_finite = math.isfinite(total)  # NaN/Inf anywhere make the sum non-finite
        self.last_all_finite = all_finite
        finite: torch.Tensor | None = None
        keyed = w  # the values whose max over positions is each sample's top-k key
        if all_finite:
            self.last_rowsum, self.last_rowmax = rowsum, rowmax
            cnt: torch.Tensor | int = b * p
            guess = s1 / (b * p)
            d = torch.sub(w, guess, out=sc.take("a", w.shape, torch.float32, w.device))
            bm, m2b = _corrected(guess, d, d.sum(dim=(0, 1)), b * p, max(-vmin, vmax))
        else:
            self.last_rowsum = self.last_rowmax = None
            finite = torch.isfinite(w)
            cnt_t = finite.sum(dim=(0, 1))
            cnt = cnt_t
            zero = torch.zeros((), dtype=w.dtype, device=w.device)
            guess = torch.where(finite, w, zero).sum(dim=(0, 1)) / cnt_t.clamp(min=1)
            d = torch.where(finite, w - guess, zero)
            keyed = torch.where(finite, w, -math.inf)
            rowmax = keyed.amax(1)
            mx = rowmax.amax(0)
            mn = torch.where(finite, w, math.inf).amin(1).amin(0)
            self.nonfinite += self._a((~finite).sum(dim=(0, 1)))
            self.nan += self._a(torch.isnan(w).sum(dim=(0, 1)))
            ok_max, ok_min = mx[torch.isfinite(mx)], mn[torch.isfinite(mn)]
            vmax = float(ok_max.max()) if ok_max.numel() else -math.inf
            vmin = float(ok_min.min()) if ok_min.numel() else math.inf
            big = max(-vmin, vmax, 0.0)
            bm, m2b = _corrected(guess, d, d.sum(dim=(0, 1)), cnt_t.clamp(min=1), big)
        if math.isfinite(vmax):
            self.extent = max(self.extent, abs(vmax))
        if math.isfinite(vmin):
            self.extent = max(self.extent, abs(vmin))
        self._combine(cnt, self._a(bm), self._a(m2b))
        self.max = torch.maximum(self.max, self._a(mx))
        self.min = torch.minimum(self.min, self._a(mn))
        if self.edges is None:
            self._set_edges(vmin, vmax)
        assert self.edges is not None
        top = float(self.edges[-1])
        if finite is None and (vmax < top or (self.bounds is not None and vmax <= top)):
            self._histogram_fast(w, sc)
        else:
            self._histogram_masked(w, finite)
        self._top(rowmax, keyed, start)
        self.samples += b

    def _a(self, t: torch.Tensor) -> torch.Tensor:
        return t if t.device == self._acc else t.to(self._acc)

    def _combine(self, n_b: torch.Tensor | int, mean_b: torch.Tensor, m2_b: torch.Tensor) -> None:
        """Chan et al.'s parallel combination of (count, mean, M2), in float64. ``n_b``: an int
        when every unit of the batch has that many finite values."""
        if isinstance(n_b, int) and self.uniform is not None:
            # every unit has the same count: the weights are Python floats (6 ops, not 14)
            n_a, w = self.uniform, n_b / (self.uniform + n_b)
            delta = mean_b.sub_(self.mean)
            self.mean.add_(delta, alpha=w)
            self.m2.add_(m2_b).add_(delta.square_(), alpha=n_a * w)
            self.uniform += n_b
            self.count += n_b
            return
        self.uniform = None
        nb_t = (
            torch.full_like(self.count, n_b)
            if isinstance(n_b, int)
            else self._a(n_b).to(torch.int64)
        )
        n_a_t = self.count.double()
        nb = nb_t.double()
        w_t = nb / (n_a_t + nb).clamp_(min=1)  # 0 for a unit with no finite value in either
        delta = mean_b.sub_(self.mean).mul_(nb > 0)
        self.mean.addcmul_(delta, w_t)
        self.m2.add_(m2_b).addcmul_(delta.square_(), n_a_t.mul_(w_t))
        self.count += nb_t

    def _set_edges(self, vmin: float, vmax: float) -> None:
        ok = math.isfinite(vmin) and math.isfinite(vmax)
        self.edges = fixed_edges(vmin if ok else None, vmax if ok else None, self.bins, self.bounds)
        lo, hi = float(self.edges[0]), float(self.edges[-1])
        self._scale = self.bins / (hi - lo)
        self._shift = 1 - lo * self._scale
        # slot of the value 0 by the same float32 arithmetic as every other value
        self._zero_slot = int(self._slot_float(torch.zeros(1)))

    def _slot_float(self, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Each value's slot (0: under, 1..bins, bins + 1: over) as an exact float integer.
        ``v * scale`` then ``+ shift``, two roundings, as the brute-force ``numpy.histogram``
        agrees with (a fused multiply-add, or a larger shift, rounds values at an edge to the
        other side)."""
        f = torch.mul(v, self._scale, out=out) if out is not None else v.mul(self._scale)
        return f.add_(self._shift).clamp_(0, self.bins + 1).floor_()

    def _histogram_fast(self, w: torch.Tensor, sc: Scratch) -> None:
        """``w``: (B, P, U), all finite, below the top edge unless the layer is bounded."""
        u, g, s = self.units, self.groups, self.stride
        f = self._slot_float(w, sc.take("a", w.shape, torch.float32, w.device))
        # group = zero + 2 * (v > lo + m) + 2 * (v >= hi - m), each term from sign() (boolean
        # masks and heaviside are 5-25x slower here); every addend is an integer, so f stays
        # exact while below 2**24. zero: 1 - sign(v)**2 (the 1 goes with the unit offsets).
        sg = torch.sign(w, out=sc.take("b", w.shape, torch.float32, w.device))
        f.addcmul_(sg, sg, value=-s)
        if self.bounds is not None:
            lo, hi = self.bounds
            m = SATURATION_MARGIN * (hi - lo)
            # (v > lo + m) = relu(sign(v - lo - m)); (v >= hi - m) = 1 - relu(sign(hi - m - v))
            f.add_(torch.sub(w, lo + m, out=sg).sign_().relu_(), alpha=2 * s)
            f.add_(torch.sub(w, hi - m, out=sg).sign_().neg_().relu_(), alpha=-2 * s)
        offsets = self._offsets(w.device)
        idx = sc.take("i", w.shape, torch.int32, w.device)
        if u * g * s < 2**24:
            idx.copy_(f.add_(self._offsets_f))  # float -> int truncates: floor, as f >= 0
        else:
            idx.copy_(f).add_(offsets.to(torch.int32))
        counts = torch.bincount(idx.reshape(-1), minlength=u * g * s).view(u, g, s)
        self.raw += self._a(counts)

    def _resolve_raw(self) -> None:
        """Fold the fast histogram's (unit, group, slot) counts into zeros, saturated and slots."""
        raw = self.raw
        zeros = raw[:, 1::2].sum(dim=(1, 2))
        self.zeros += zeros
        if self.bounds is not None:
            # groups 0, 1: low-saturated; 4, 5: high-saturated
            self.saturated += raw[:, [0, 1, 4, 5]].sum(dim=(1, 2))
        slots = raw[:, 0::2].sum(dim=1)
        slots[:, self._zero_slot] += zeros
        if self.bounds is not None:
            # no value of a fast batch exceeds the top edge (the bound): the "over" slot holds
            # values equal to it (or within rounding of it), in the last bin as numpy.histogram
            slots[:, self.bins] += slots[:, self.bins + 1]
            slots[:, self.bins + 1] = 0
        self.slots += slots
        raw.zero_()

    def _offsets(self, device: torch.device) -> torch.Tensor:
        """Each unit's first index in the bincount, plus the constants of the group terms."""
        if self._offsets_t is None or self._offsets_t.device != device:
            g, s = self.groups, self.stride
            const = s + (2 * s if self.bounds is not None else 0)
            self._offsets_t = torch.arange(self.units, device=device) * (g * s) + const
            self._offsets_f = self._offsets_t.float()
        return self._offsets_t

    def _histogram_masked(self, w: torch.Tensor, finite: torch.Tensor | None) -> None:
        """The histogram with masks: NaN/Inf present, or a value at or above the top edge."""
        u, s = self.units, self.stride
        assert self.edges is not None
        hi = float(self.edges[-1])
        idx = self._slot_float(w).to(torch.int64)
        idx = torch.where(w == hi, self.bins, idx)  # the top edge belongs to the last bin
        if finite is not None:
            idx = torch.where(finite, idx, self.bins + 2)
        idx += torch.arange(u, device=w.device) * s
        counts = self._a(torch.bincount(idx.reshape(-1), minlength=u * s).view(u, s))
        self.slots += counts
        self.slots[:, self.bins + 2] = 0
        self.zeros += self._a((w == 0).sum(dim=(0, 1)))
        if self.bounds is not None:
            lo, hi_b = self.bounds
            m = SATURATION_MARGIN * (hi_b - lo)
            sat = (w <= lo + m) | (w >= hi_b - m)  # NaN compares False
            self.saturated += self._a(sat.sum(dim=(0, 1)))

    def _top(self, rowmax: torch.Tensor, w: torch.Tensor, start: int) -> None:
        """Merge the samples of this batch that beat a unit's current k-th value (ties keep the
        earlier sample, as a stable argsort does). ``w``: (B, P, U), NaN/Inf as -inf."""
        k = self.top_k
        _, p, u = w.shape
        cand = rowmax > self.top_value[:, k - 1][None, :]  # (B, U); -inf (all NaN) never
        m = int(cand.sum(0).max())
        if m == 0:
            return
        masked = torch.where(cand, rowmax, -math.inf)
        rows = masked.topk(m, dim=0).indices  # (m, U): every candidate of every unit
        rows = rows.sort(dim=0).values.t()  # (U, m) in sample order: ties stay stable
        vals = masked.t().gather(1, rows)
        if p > 1:
            per = w.permute(2, 0, 1).gather(1, rows[:, :, None].expand(u, m, p))
            pos = per.max(dim=2).indices
        else:
            pos = torch.zeros_like(rows)
        values = torch.cat([self.top_value, vals], dim=1)
        order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
        self.top_value = values.gather(1, order)
        self.top_index = torch.cat([self.top_index, rows + start], dim=1).gather(1, order)
        self.top_pos = torch.cat([self.top_pos, pos], dim=1).gather(1, order)

    def finish(self) -> dict[str, np.ndarray]:
        if not self._ready:
            self._start(torch.device("cpu"))
        if self.edges is None:
            self.edges = fixed_edges(None, None, self.bins, self.bounds)
        else:
            self._resolve_raw()
        self._fold_fused()
        np_ = {
            k: getattr(self, k).cpu().numpy()
            for k in ("count", "nonfinite", "nan", "mean", "m2", "zeros", "saturated", "min", "max")
        }
        count, nonfinite = np_["count"], np_["nonfinite"]
        slots = self.slots.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            total = count + nonfinite
            has = count > 0
            std = np.sqrt(np_["m2"] / np.where(has, count, 1))
            out = {
                "count": count,
                "nonfinite": nonfinite,
                "nan": np_["nan"],
                "mean": np.where(has, np_["mean"], np.nan),
                "std": np.where(has, std, np.nan),
                "min": np.where(has, np_["min"].astype(np.float64), np.nan),
                "max": np.where(has, np_["max"].astype(np.float64), np.nan),
                "frac_zero": np_["zeros"] / np.where(total > 0, total, 1),
                "frac_saturated": (
                    np_["saturated"] / np.where(total > 0, total, 1)
                    if self.bounds is not None
                    else np.full(self.units, np.nan)
                ),
                "hist": slots[:, 1 : self.bins + 1],
                "under": slots[:, 0],
                "over": slots[:, self.bins + 1],
                "edges": self.edges,
            }
        # a sample whose values are all NaN has -inf as its max: not a top example
        k = min(self.top_k, self.samples)
        tv, ti, tp = (t[:, :k].cpu() for t in (self.top_value, self.top_index, self.top_pos))
        keep = torch.isfinite(tv)
        out["top_value"] = torch.where(keep, tv, torch.nan).numpy()
        out["top_index"] = torch.where(keep, ti, -1).numpy()
        out["top_pos"] = torch.where(keep, tp, -1).numpy()
        return out


class Scratch:
    """Work buffers reused from one reduction to the next, so that a chunk's batch-sized
    temporaries do not allocate (and fault in) fresh memory every time. ``keep=False``: plain
    allocations (a batch reduced on its own, whose size is not bounded by a chunk)."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.bufs: dict[str, torch.Tensor] = {}

    def take(
        self,
        name: str,
        shape: torch.Size | tuple[int, ...],
        dtype: torch.dtype,
        device: torch.device,
    ) -> torch.Tensor:
        n = math.prod(shape)
        if not self.keep:
            return torch.empty(shape, dtype=dtype, device=device)
        buf = self.bufs.get(name)
        if buf is None or buf.numel() < n or buf.dtype != dtype or buf.device != device:
            buf = self.bufs[name] = torch.empty(n, dtype=dtype, device=device)
        return buf[:n].view(shape)


def _corrected(
    guess: torch.Tensor, d: torch.Tensor, sum_d: torch.Tensor, n: torch.Tensor | int, big: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's mean and M2 in float64 from its deviations ``d`` from a float32 ``guess`` of
    the mean (the corrected two-pass algorithm: the guess's rounding, up to an ulp of the mean,
    drops out). ``d`` is consumed. ``big``: the largest finite |value| of the batch; deviations
    up to twice that whose squares could overflow a float32 sum are squared in float64."""
    nd = n.double() if isinstance(n, torch.Tensor) else float(n)
    sd = sum_d.double()
    if 4.0 * big * big * d.shape[0] * d.shape[1] >= 2.0**127:
        d = d.double()
    m2 = d.square_().sum(dim=(0, 1)).double() - sd * sd / nd
    return guess.double() + sd / nd, m2.clamp_(min=0)


def fixed_edges(
    lo: float | None, hi: float | None, bins: int, bounds: tuple[float, float] | None = None
) -> np.ndarray:
    """Edges for a stream whose first batch spans ``[lo, hi]``: the bounds of a bounded activation,
    else that span widened by half on each side (not below 0 for a non-negative first batch: ReLU
    outputs stay non-negative)."""
    if bounds is not None:
        return np.linspace(bounds[0], bounds[1], bins + 1)
    if lo is None or hi is None:
        lo, hi = -1.0, 1.0
    span = hi - lo
    if span <= 0:
        span = max(abs(lo), 1e-3)
        lo, hi = lo - span / 2, hi + span / 2
    a = lo - HEADROOM * span
    if lo >= 0:
        a = max(0.0, a)
    return np.linspace(a, hi + HEADROOM * span, bins + 1)
