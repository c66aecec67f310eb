"""Quantized tiles for transport: one byte a cell where the colour map needs no more.

``quantize_u8(values, lo, hi, log=False)`` maps each finite value to a code 0..250 spread evenly
over ``[lo, hi]`` (over ``[log10 lo, log10 hi]`` of ``|value|`` with ``log=True``), clipping values
outside the range to the end codes, and gives NaN, +Inf and -Inf their own codes (sentinels):

==========  =========================================================
code        meaning
==========  =========================================================
0 .. 250    ``lo + code * step`` (log: ``10 ** (log10(lo) + code * step)``)
251         exact zero in log mode (below every magnitude)
252         NaN
253         +Inf
254         -Inf
==========  =========================================================

Error bound (stated and tested): for a finite value ``v`` inside ``[lo, hi]``, the decoded value
``d`` satisfies ``|d - v| <= (hi - lo) / 500`` (half a step of ``(hi - lo) / 250``; plus float32 rounding of ``d``), within
0.2 % of the range; the colour map has 255 entries, so one step is less than one colour. In log
mode the bound holds for ``log10|v|``: ``|log10|d| - log10|v|| <= (log10 hi - log10 lo) / 500``,
and the decoded magnitude has no sign (log mode shows magnitude). Values outside ``[lo, hi]``
decode to the nearer end of the range: the colour they are painted with.

``to_float16(values)`` is the other form: float16 of ``values / scale`` with ``scale`` the
largest finite magnitude over 60000 (so nothing overflows); relative error <= 2**-11 for
magnitudes above ``scale * 2**-14``, and NaN/Inf kept as float16 NaN/Inf.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

LEVELS = 250  # codes 0..250 inclusive
ZERO, NAN, POSINF, NEGINF = 251, 252, 253, 254
FLOAT16_MAX_SCALED = 60000.0
_BLOCK = 1 << 16  # cells quantized at a time


def _check_range(lo: float, hi: float, log: bool) -> tuple[float, float]:
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"quantization range must be finite, got [{lo}, {hi}]")
    if log and lo <= 0:
        raise ValueError(f"log quantization needs a positive lower bound, got {lo}")
    if not hi > lo:
        # All-equal data: a range of width 1 around the value (no division by zero).
        half = abs(lo) * 0.5 if lo != 0 else 0.5
        lo, hi = (lo * 0.5, lo * 2.0) if log else (lo - half, lo + half)
    return lo, hi


# Round mantissas of ``nice_range``: of the span (consecutive ones at most a third apart), and
# of the step its bounds are multiples of.
_SPANS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def _round_number(x: float, mantissas: tuple[float, ...], up: bool) -> tuple[float, int]:
    """``x`` > 0 rounded up (or down) to ``c * 10**e``, ``c`` one of ``mantissas``: ``(c, e)``."""
    e = math.floor(math.log10(x))
    if _scaled(1.0, e) > x:  # log10 rounded up across a power of ten
        e -= 1
    elif _scaled(10.0, e) <= x:
        e += 1
    m = x / _scaled(1.0, e)
    if up:
        return next(c for c in mantissas if c >= m * (1 - 1e-12)), e
    return next(c for c in reversed(mantissas) if c <= m * (1 + 1e-12)), e


def _scaled(c: float, e: int) -> float:
    """``c * 10**e``, rounded once (0.3, not 0.30000000000000004)."""
    return c * 10.0**e if e >= 0 else c / 10.0 ** (-e)


def nice_range(lo: float, hi: float) -> tuple[float, float]:
    """``[lo, hi]`` widened to round bounds: multiples of a round step of about a tenth of the
    span (the span rounded up to a round number, over 8, rounded down to 1, 2, 2.5 or 5 times
    a power of ten), so at most a third wider than ``[lo, hi]``; a range symmetric around 0
    stays symmetric, and a bound at 0 stays there. Non-finite or empty ranges as they are.

    A colour range that changes only when the data passes a round bound: a live view's codes
    stay valid while new frames fall inside it (see ``ls.timeline``). Rounding the bounds
    themselves would not do: a narrow range far from 0 (a norm layer's scales, 0.98 to 1.03)
    would fill a sliver of the colours.

    >>> nice_range(-0.37, 0.37), nice_range(0.0, 9.2), nice_range(0.981, 1.029)
    ((-0.4, 0.4), (0.0, 10.0), (0.98, 1.03))
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo and 1e-290 < hi - lo < 1e290):
        return lo, hi
    c, e = _round_number(hi - lo, _SPANS, up=True)
    c, e = _round_number(_scaled(c, e) / 8, _STEPS, up=False)
    k_lo, k_hi = math.floor(lo / _scaled(c, e)), math.ceil(hi / _scaled(c, e))
    out_lo, out_hi = _scaled(k_lo * c, e), _scaled(k_hi * c, e)
    # (a quotient rounded across a whole number: one step more)
    if out_lo > lo:
        out_lo = _scaled((k_lo - 1) * c, e)
    if out_hi < hi:
        out_hi = _scaled((k_hi + 1) * c, e)
    return out_lo, out_hi


def quantize_u8(
    values: np.ndarray, lo: float, hi: float, *, log: bool = False
) -> tuple[np.ndarray, dict[str, Any]]:
    """Codes (uint8, same shape) and ``{"lo", "hi", "log", "levels"}`` to decode them.

    >>> codes, q = quantize_u8(np.array([0.0, 0.5, 1.0, np.nan]), 0.0, 1.0)
    >>> codes.tolist(), q["levels"]
    ([0, 125, 250, 252], 250)
    """
    lo, hi = _check_range(lo, hi, log)
    v = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).reshape(-1)
    codes = torch.empty(v.shape, dtype=torch.uint8)
    a, b = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
    # float64 (a narrow range far from 0 keeps its resolution), worked on in place a block of
    # cells at a time: one 512 KB buffer whatever the tile's size.
    buf = torch.empty(min(v.numel(), _BLOCK), dtype=torch.float64)
    for i in range(0, v.numel(), _BLOCK):
        part = v[i : i + _BLOCK]
        t = buf[: part.numel()].copy_(part)
        if log:
            t.abs_().log10_()
        t.sub_(a).mul_(LEVELS / (b - a)).round_()
        t.nan_to_num_(nan=0.0, posinf=LEVELS, neginf=0.0).clamp_(0, LEVELS)
        codes[i : i + _BLOCK] = t
    if log:
        codes[v == 0] = ZERO
    codes[torch.isnan(v)] = NAN
    codes[v == math.inf] = POSINF
    codes[v == -math.inf] = NEGINF
    return codes.numpy().reshape(np.shape(values)), {
        "lo": lo,
        "hi": hi,
        "log": bool(log),
        "levels": LEVELS,
    }


def dequantize_u8(codes: np.ndarray, q: dict[str, Any]) -> np.ndarray:
    """Values (float32) of codes made by ``quantize_u8`` (what the front end computes too)."""
    c = np.asarray(codes)
    lo, hi, log = float(q["lo"]), float(q["hi"]), bool(q["log"])
    if log:
        a, b = math.log10(lo), math.log10(hi)
        out = 10.0 ** (a + c.astype(np.float64) * (b - a) / LEVELS)
    else:
        out = lo + c.astype(np.float64) * (hi - lo) / LEVELS
    out = out.astype(np.float32)
    out[c == ZERO] = 0.0
    out[c == NAN] = np.nan
    out[c == POSINF] = np.inf
    out[c == NEGINF] = -np.inf
    return out


def error_bound(q: dict[str, Any]) -> float:
    """The largest ``|decoded - value|`` for in-range values (log mode: in log10 magnitude)."""
    lo, hi = float(q["lo"]), float(q["hi"])
    if q["log"]:
        return (math.log10(hi) - math.log10(lo)) / (2 * LEVELS)
    return (hi - lo) / (2 * LEVELS)


def to_float16(values: np.ndarray) -> tuple[np.ndarray, float]:
    """float16 of ``values / scale`` and ``scale`` (see the module docstring for the bound)."""
    v = np.asarray(values, dtype=np.float32)
    finite = v[np.isfinite(v)]
    m = float(np.abs(finite).max()) if finite.size else 0.0
    scale = m / FLOAT16_MAX_SCALED if m > 0 else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        return (v / np.float32(scale)).astype(np.float16), scale
