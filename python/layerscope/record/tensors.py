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
