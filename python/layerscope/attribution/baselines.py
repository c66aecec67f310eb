"""Baselines for integrated gradients: the "absence of signal" the path starts from.

A spec is ``"zero"`` (or None), a number (constant), ``"uniform"`` (noise drawn uniformly
between the input's min and max, seeded), ``"blur"`` (the input under a Gaussian blur), or a tensor
(broadcast to the input; one row per sample or one for all).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

BaselineSpec = str | float | int | torch.Tensor | None
BASELINE_NAMES = ("zero", "uniform", "blur")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur the trailing spatial dims of ``x`` ((N, C, H, W) or (N, C, L)); reflect padding.

    >>> gaussian_blur(torch.rand(1, 3, 8, 8), sigma=1.0).shape
    torch.Size([1, 3, 8, 8])
    """
    if x.dim() not in (3, 4):
        raise ValueError(
            f'baseline "blur" needs an (N, C, H, W) image or an (N, C, L) signal; got shape '
            f"{tuple(x.shape)}. Pass baselines='zero' or a tensor instead."
        )
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    out = x
    # separable blur: one 1-D depthwise pass per spatial dim
    for dim in range(2, x.dim()):
        size = x.shape[dim]
        pad = min(radius, size - 1)
        k = kernel[radius - pad : radius + pad + 1]
        moved = out.movedim(dim, -1)
        flat = moved.reshape(-1, channels, size)
        flat = F.pad(flat, (pad, pad), mode="reflect") if pad > 0 else flat
        w = k.view(1, 1, -1).expand(channels, 1, -1)
        flat = F.conv1d(flat, w, groups=channels)
        out = flat.reshape(moved.shape).movedim(-1, dim)
    return out


def make_baseline(
    x: torch.Tensor, spec: BaselineSpec, *, seed: int | None = None, blur_sigma: float = 5.0
) -> torch.Tensor:
    """One baseline with the shape of ``x`` (N, ...).

    >>> make_baseline(torch.ones(2, 3), 0.5)
    tensor([[0.5000, 0.5000, 0.5000],
            [0.5000, 0.5000, 0.5000]])
    """
    if spec is None or (isinstance(spec, str) and spec == "zero"):
        return torch.zeros_like(x)
    if isinstance(spec, bool):
        raise TypeError(
            "a baseline is 'zero', 'uniform', 'blur', a number or a tensor; got a bool."
        )
    if isinstance(spec, (int, float)):
        return torch.full_like(x, float(spec))
    if isinstance(spec, str):
        if spec == "uniform":
            g = torch.Generator(device=x.device)
            g.manual_seed(0 if seed is None else seed)
            lo, hi = x.min(), x.max()
            noise = torch.rand(x.shape, generator=g, dtype=x.dtype, device=x.device)
            return lo + (hi - lo) * noise
        if spec == "blur":
            return gaussian_blur(x, blur_sigma)
        raise ValueError(
            f"unknown baseline {spec!r}; use one of {list(BASELINE_NAMES)}, a number or a tensor."
        )
    if isinstance(spec, torch.Tensor):
        b = spec.to(device=x.device, dtype=x.dtype)
        try:
            return b.expand_as(x) if b.dim() == x.dim() else b.unsqueeze(0).expand_as(x)
        except RuntimeError:
            raise ValueError(
                f"a baseline tensor of shape {tuple(spec.shape)} cannot broadcast to the input's "
                f"shape {tuple(x.shape)}; pass one of shape {tuple(x.shape)} or {tuple(x.shape[1:])}."
            ) from None
    raise TypeError(
        f"a baseline is 'zero', 'uniform', 'blur', a number or a tensor; got {type(spec).__name__}."
    )


def as_specs(spec: Any, count: int) -> list[Any]:
    """One spec per attributed tensor: a tuple/list gives one each, anything else is shared."""
    if isinstance(spec, (tuple, list)):
        if len(spec) != count:
            raise ValueError(
                f"baselines has {len(spec)} entries for {count} inputs; give one each."
            )
        return list(spec)
    return [spec] * count
