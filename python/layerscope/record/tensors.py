"""How a live tensor becomes a held snapshot: a host copy as numpy, and activation summaries."""

from __future__ import annotations

import numpy as np
import torch


def host_copy(t: torch.Tensor) -> torch.Tensor:
    """A CPU copy of ``t`` that later training cannot change (a clone when ``t`` is on the CPU)."""
    t = t.detach()
    return t.clone() if t.device.type == "cpu" else t.to("cpu")


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """``t`` (on the CPU) as numpy, bit-exact; dtypes numpy lacks (bfloat16, float8) as float32
    holding the same values.

    >>> to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype
    dtype('float32')
    """
    try:
        return t.numpy()
    except TypeError:
        return t.float().numpy()


def dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def dead_share(t: torch.Tensor) -> float | None:
    """Share of units that are exactly zero on every probe sample (dead ReLUs).

    A unit is a channel (dim 1) of a ``[N, C, ...]`` output, or the last dim of a ``[N, T, H]``
    sequence output. None for outputs with fewer than 2 dims.

    >>> dead_share(torch.tensor([[0.0, 1.0], [0.0, 2.0]]))
    0.5
    """
    if t.dim() < 2 or t.numel() == 0:
        return None
    dim = t.dim() - 1 if t.dim() == 3 else 1
    alive = (t != 0).movedim(dim, 0).reshape(t.shape[dim], -1).any(dim=1)
    return float(1.0 - alive.float().mean())
