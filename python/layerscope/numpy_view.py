"""A CPU tensor read as numpy for the length of a computation, without changing the tensor.

``Tensor.numpy()`` marks the tensor's storage as never resizable again: the array could outlive a
resize, so torch forbids it for good. When layerscope reads a user's tensor (a layer's output that
is a view of the input, a parameter, a batch of labels) only for the length of one pass, that
mark is a lasting side effect on the user's data: ``x.resize_(...)`` or
``x.untyped_storage().resize_(0)`` (what FSDP does to free a parameter's storage) would raise
later, long after the view was shown. ``numpy_view`` gives the same zero-copy array without the
mark. The array keeps the tensor alive, but not its size: use it for reads that end before the
caller returns, and copy what must be kept.

>>> x = torch.arange(6.0).reshape(2, 3)
>>> numpy_view(x.t()).tolist()
[[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
>>> _ = x.resize_(12)  # still resizable
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import torch


@cache
def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype of a torch dtype; TypeError for those numpy lacks (bfloat16, float8),
    as ``Tensor.numpy()`` raises."""
    return torch.empty(0, dtype=dtype).numpy().dtype


class _Holder:
    """The tensor behind an array: numpy keeps this object (and so the tensor) as the array's
    base, and reads the memory through ``__array_interface__``."""

    def __init__(self, t: torch.Tensor, dtype: np.dtype) -> None:
        self.tensor = t
        size = dtype.itemsize
        self.__array_interface__: dict[str, Any] = {
            "shape": tuple(t.shape),
            "typestr": dtype.str,
            "data": (t.data_ptr(), False),
            "strides": tuple(s * size for s in t.stride()),
            "version": 3,
        }


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """``t`` (a CPU tensor) as a numpy array on the same memory, with its shape and strides, and
    the tensor's storage left resizable (see the module docstring). Writable, as
    ``Tensor.numpy()`` is. A tensor with its negative or conjugate bit set (which
    ``Tensor.numpy()`` refuses) is read through a resolved copy: writes to that array do not
    reach the tensor."""
    if t.device.type != "cpu":
        raise ValueError(f"numpy_view needs a CPU tensor, got one on {t.device}")
    dtype = _numpy_dtype(t.dtype)
    t = t.detach()
    if t.is_neg() or t.is_conj():
        t = t.resolve_neg().resolve_conj()
    if t.numel() == 0:
        return np.empty(tuple(t.shape), dtype)
    return np.asarray(_Holder(t, dtype))
