"""Per-unit statistics of one layer over a stream of batches, and its per-unit top-k samples.

A *unit* is a channel of a conv output ``(N, C, *space)`` or a feature of ``(N, D)`` / a hidden
dimension of a token output ``(N, T, D)``; a unit's *values* are all its positions in all samples.

- mean and std: Chan's parallel combination of per-batch means and squared deviations in
  float64, over finite values only (NaN/Inf are counted per unit, never folded into a statistic);
- fraction of zeros, and fraction saturated for bounded activations (within 1 % of the range
  from a bound of Sigmoid, Tanh, Hardtanh, ReLU6, Softmax, Hardsigmoid outputs; NaN otherwise);
- a histogram per unit on edges fixed from the first batch (its finite range widened by half on
  each side, as for weights in ``record/histograms.py``), with under/overflow counts, so
  ``hist.sum(1) + under + over + nonfinite == count``;
- top-k samples per unit by their largest value over positions: value, sample index, and the
  position of that value (flat over the spatial/time positions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

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


@dataclass
class UnitStats:
    """Running per-unit statistics (see the module docstring); ``finish()`` gives numpy arrays."""

    units: int
    bins: int
    bounds: tuple[float, float] | None
    top_k: int
    count: np.ndarray = field(init=False)
    edges: np.ndarray | None = None

    def __post_init__(self) -> None:
        u = self.units
        self.count = np.zeros(u, np.int64)  # finite values per unit
        self.nonfinite = np.zeros(u, np.int64)
        self.nan = np.zeros(u, np.int64)
        self.mean = np.zeros(u, np.float64)
        self.m2 = np.zeros(u, np.float64)
        self.zeros = np.zeros(u, np.int64)
        self.saturated = np.zeros(u, np.int64)
        self.min = np.full(u, np.inf)
        self.max = np.full(u, -np.inf)
        self.hist = np.zeros((u, self.bins), np.int64)
        self.under = np.zeros(u, np.int64)
        self.over = np.zeros(u, np.int64)
        self.top_value = torch.full((u, 0), -math.inf, dtype=torch.float32)
        self.top_index = torch.zeros((u, 0), dtype=torch.int64)
        self.top_pos = torch.zeros((u, 0), dtype=torch.int64)
        self.last_all_finite = True

    def update(self, v: torch.Tensor, start: int) -> None:
        """Add a batch ``v`` of shape (B, U, P) whose first sample is dataset index ``start``."""
        v = v.detach().float()
        # The common case, every value finite, takes fused reductions; NaN/Inf take masks.
        all_finite = bool(torch.isfinite(v).all())
        self.last_all_finite = all_finite
        finite: torch.Tensor | None = None
        if all_finite:
            cnt = torch.full((v.shape[1],), v.shape[0] * v.shape[2], dtype=torch.int64)
            var, bm = torch.var_mean(v, dim=(0, 2), correction=0)
            bm2 = var.double() * cnt.double()
            big = v
            mx, mn = v.amax(dim=(0, 2)), v.amin(dim=(0, 2))
        else:
            finite = torch.isfinite(v)
            cnt = finite.sum(dim=(0, 2))
            zero = torch.zeros((), dtype=v.dtype, device=v.device)
            bm = torch.where(finite, v, zero).sum(dim=(0, 2)) / cnt.clamp(min=1)
            dev = torch.where(finite, v - bm[None, :, None], zero)
            bm2 = (dev.double() ** 2).sum(dim=(0, 2))
            big = torch.where(finite, v, torch.full((), -math.inf, device=v.device))
            mx = big.amax(dim=(0, 2))
            mn = torch.where(finite, v, torch.full((), math.inf, device=v.device)).amin(dim=(0, 2))
            self.nonfinite += (~finite).sum(dim=(0, 2)).cpu().numpy()
            self.nan += torch.isnan(v).sum(dim=(0, 2)).cpu().numpy()
        n_a = self.count.astype(np.float64)
        n_b = cnt.cpu().numpy().astype(np.float64)
        bm_np, bm2_np = bm.double().cpu().numpy(), bm2.cpu().numpy()
        n = n_a + n_b
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = bm_np - self.mean
            w = np.where(n > 0, n_b / np.where(n > 0, n, 1), 0.0)
            self.mean = self.mean + delta * w
            self.m2 = self.m2 + bm2_np + delta * delta * n_a * w
        self.count += n_b.astype(np.int64)
        self.zeros += (v == 0).sum(dim=(0, 2)).cpu().numpy()
        self.max = np.maximum(self.max, mx.cpu().numpy())
        self.min = np.minimum(self.min, mn.cpu().numpy())
        if self.bounds is not None:
            lo, hi = self.bounds
            m = SATURATION_MARGIN * (hi - lo)
            sat = (v <= lo + m) | (v >= hi - m)  # NaN compares False
            self.saturated += sat.sum(dim=(0, 2)).cpu().numpy()
        self._histogram(v, finite, float(mx.max()) if mx.numel() else math.inf)
        self._top(big, start)

    def _histogram(self, v: torch.Tensor, finite: torch.Tensor | None, vmax: float) -> None:
        if self.edges is None:
            lo = (
                float(self.min[np.isfinite(self.min)].min())
                if np.isfinite(self.min).any()
                else None
            )
            hi = (
                float(self.max[np.isfinite(self.max)].max())
                if np.isfinite(self.max).any()
                else None
            )
            self.edges = fixed_edges(lo, hi, self.bins, self.bounds)
        lo, hi = float(self.edges[0]), float(self.edges[-1])
        u = v.shape[1]
        stride = self.bins + 3
        scale = self.bins / (hi - lo)
        # slot 0: under, 1..bins: the bins, bins + 1: over, bins + 2: not finite; shifted by one
        # so that truncation is floor, clamped, then one bincount for all units.
        idx = torch.add(v * scale, 1 - lo * scale).clamp_(0, self.bins + 1).to(torch.int64)
        if vmax >= hi:  # the top edge belongs to the last bin, as in numpy.histogram
            idx[v == hi] = self.bins
        if finite is not None:
            idx = torch.where(finite, idx, self.bins + 2)
        idx += (torch.arange(u, device=v.device) * stride)[None, :, None]
        counts = torch.bincount(idx.reshape(-1), minlength=u * stride).view(u, stride)
        c = counts.cpu().numpy()
        self.under += c[:, 0]
        self.hist += c[:, 1 : self.bins + 1]
        self.over += c[:, self.bins + 1]

    def _top(self, big: torch.Tensor, start: int) -> None:
        per_sample, pos = big.max(dim=2)  # (B, U): each sample's largest finite value per unit
        b = per_sample.shape[0]
        idx = torch.arange(start, start + b, dtype=torch.int64).expand(self.units, b)
        values = torch.cat([self.top_value, per_sample.t().float().cpu()], dim=1)
        index = torch.cat([self.top_index, idx], dim=1)
        posn = torch.cat([self.top_pos, pos.t().cpu()], dim=1)
        k = min(self.top_k, values.shape[1])
        # stable sort: ties keep the earlier sample (the same order as a stable argsort)
        order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
        self.top_value = values.gather(1, order)
        self.top_index = index.gather(1, order)
        self.top_pos = posn.gather(1, order)

    def finish(self) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            total = self.count + self.nonfinite
            std = np.sqrt(self.m2 / np.where(self.count > 0, self.count, 1))
            out = {
                "count": self.count,
                "nonfinite": self.nonfinite,
                "nan": self.nan,
                "mean": np.where(self.count > 0, self.mean, np.nan),
                "std": np.where(self.count > 0, std, np.nan),
                "min": np.where(self.count > 0, self.min, np.nan),
                "max": np.where(self.count > 0, self.max, np.nan),
                "frac_zero": self.zeros / np.where(total > 0, total, 1),
                "frac_saturated": (
                    self.saturated / np.where(total > 0, total, 1)
                    if self.bounds is not None
                    else np.full(self.units, np.nan)
                ),
                "hist": self.hist,
                "under": self.under,
                "over": self.over,
                "edges": self.edges
                if self.edges is not None
                else fixed_edges(None, None, self.bins),
            }
        # a sample whose values are all NaN has -inf as its max: not a top example
        keep = torch.isfinite(self.top_value)
        out["top_value"] = torch.where(keep, self.top_value, torch.nan).numpy()
        out["top_index"] = torch.where(keep, self.top_index, -1).numpy()
        out["top_pos"] = torch.where(keep, self.top_pos, -1).numpy()
        return out


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
