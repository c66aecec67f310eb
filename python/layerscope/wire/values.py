"""Exact text of single tensor values (the value under the pointer)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..numpy_view import numpy_view


def exact_text(value: torch.Tensor | np.generic | float | int) -> str:
    """The shortest text that names ``value`` exactly in its own dtype.

    >>> exact_text(torch.tensor(0.1, dtype=torch.float32))
    '0.1'
    >>> exact_text(torch.tensor(2**60 + 1))
    '1152921504606846977'
    """
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)
        value = numpy_view(t)[()]  # type: ignore[assignment]  # a numpy scalar
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    f = float(value)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if isinstance(value, (np.float16, np.float32)):
        return (
            np.format_float_positional(value, unique=True, trim="-")
            if 1e-5 <= abs(f) < 1e16 or f == 0
            else np.format_float_scientific(value, unique=True, trim="-")
        )
    return repr(f)
