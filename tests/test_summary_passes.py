"""The statistics and histogram passes (``inspect.histogram``) against brute-force references:
the fine bins exactly as the float32 formula defines them, NaN/Inf counted, odd sizes and
chunk boundaries, strided and non-float input; through the torch ops and through the numba
kernels (``summary_kernels.py``, which take contiguous float32 tensors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from layerscope.inspect import fused, summary_kernels
from layerscope.inspect import histogram as H

assert fused.available(), "numba is a test dependency: the summary kernels must run here"


@pytest.fixture(autouse=True, params=["torch", "numba"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here through the torch ops and through the numba kernels (for every size:
    in use they take tensors of ``MIN_VALUES`` values and more)."""
    if request.param == "torch":
        monkeypatch.setattr(summary_kernels, "worth_it", lambda t: False)
    else:
        monkeypatch.setattr(summary_kernels, "MIN_VALUES", 0)
    return str(request.param)


def _reference(x: torch.Tensor) -> tuple[dict, dict]:
    """Every statistic from a float64 numpy copy, every bin from the float32 formula
    ``clamp(trunc((v - min) * float32(FINE_BINS / (max - min))), 0, FINE_BINS - 1)``."""
    v = x.detach().reshape(-1).to(torch.float64).numpy()
    v32 = x.detach().reshape(-1).to(torch.float32).numpy()
    fin = v32[np.isfinite(v32)]
    stats = {
        "nan": int(np.isnan(v32).sum()),
        "posinf": int((v32 == np.inf).sum()),
        "neginf": int((v32 == -np.inf).sum()),
        "finite": int(fin.size),
        "zeros": float((v == 0).sum() / v.size),
    }
    hist: dict = {"counts": [], "abs_lo": None, "abs_hi": None}
    if fin.size == 0:
        return stats, hist
    f64 = fin.astype(np.float64)
    lo, hi = float(fin.min()), float(fin.max())
    stats.update(min=lo, max=hi, mean=float(f64.mean()), std=float(f64.std()))
    with np.errstate(over="ignore", invalid="ignore"):
        if hi > lo:
            k = H.FINE_BINS / (hi - lo)
            if math.isfinite(np.float32(k)):
                off = (fin - np.float32(lo)).astype(np.float32) * np.float32(k)
            else:  # a subnormal-wide range: the scale itself overflows float32
                off = (fin.astype(np.float64) - lo) * k
            idx = np.clip(off, 0, H.FINE_BINS - 1).astype(np.int64)
        else:
            idx = np.zeros(fin.size, dtype=np.int64)
    hist["counts"] = np.bincount(idx, minlength=H.FINE_BINS).tolist()
    nz = np.abs(fin[fin != 0])
    hist["abs_lo"] = float(nz.min()) if nz.size else None
    hist["abs_hi"] = max(abs(lo), abs(hi)) or None
    return stats, hist


def _cases() -> list[tuple[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    bad = torch.randn(1031, 517, generator=g)
    bad[::7, ::3] = math.nan
    bad[5] = math.inf
    bad[9, ::2] = -math.inf
    bad[100:140] = 0.0
    first_bad = torch.randn(70_001, generator=g)
    first_bad[: 1 << 16] = math.nan  # the whole first chunk is NaN
    long_rows = (torch.randn(3, 1 << 18, generator=torch.Generator().manual_seed(9)) * 3 + 100)[
        :, ::2
    ]
    long_rows[1, 5] = 0.0
    long_rows[2, 7] = math.nan
    return [
        ("odd", torch.randn(1, 1, 1001, generator=g)),
        ("strided rows longer than a chunk", long_rows),
        ("offset mean", torch.randn(257, 333, generator=g) * 5 + 1e4),
        ("nan inf zeros", bad),
        ("first chunk all nan", first_bad),
        ("transposed", torch.randn(613, 1409, generator=g).t()),
        ("float16", torch.randn(3001, 101, generator=g).half()),
        ("int", torch.randint(-5, 6, (777, 77), generator=g)),
        ("bool", torch.rand(3, 5, 7, generator=g) > 0.5),
        ("constant", torch.full((100,), 2.5)),
        ("all zero", torch.zeros(17)),
        ("all nan", torch.full((5,), math.nan)),
        ("tiny", torch.randn(5000, generator=g) * 1e-40),
        ("whole float32 range", torch.tensor([-3.4028235e38, 3.4028235e38, 0.0, 1e-45, -2.0])),
    ]


@pytest.mark.parametrize("name,x", _cases(), ids=[c[0] for c in _cases()])
def test_passes_match_brute_force(name: str, x: torch.Tensor) -> None:
    stats, hist = H.summarize(x)
    ref_stats, ref_hist = _reference(x)
    assert hist["counts"] == ref_hist["counts"], name
    assert hist["abs_lo"] == ref_hist["abs_lo"]
    assert hist["abs_hi"] == ref_hist["abs_hi"]
    for key in ("nan", "posinf", "neginf", "finite", "min", "max"):
        assert stats[key] == ref_stats.get(key), key
    assert stats["zeros"] == pytest.approx(ref_stats["zeros"], abs=0)
    # float32 chunk sums cannot hold values near float32's limit: moments there are out of scope.
    if ref_stats["finite"] and max(abs(ref_stats["min"]), abs(ref_stats["max"])) < 1e30:
        assert stats["mean"] == pytest.approx(ref_stats["mean"], rel=1e-6, abs=1e-30)
        assert stats["std"] == pytest.approx(ref_stats["std"], rel=1e-5, abs=1e-30)
    assert sum(hist["counts"]) == stats["finite"]


def test_chunk_boundaries_do_not_change_bins(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300_007, generator=g)
    x[1000::4099] = math.nan
    x[77] = -math.inf
    whole = H.summarize(x)
    monkeypatch.setattr(H, "_buffer_elements", lambda numel: 1237)
    assert H.summarize(x)[1] == whole[1]
    assert H.summarize(x)[1]["counts"] == _reference(x)[1]["counts"]


@pytest.mark.parametrize("name,x", _cases(), ids=[c[0] for c in _cases()])
def test_split_passes_match_brute_force(
    name: str, x: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The passes split over threads (as for tensors of millions of values) give the same bins,
    counts and extremes as one thread and as the reference, whatever piece holds the NaN, Inf
    and zeros."""
    whole = H.summarize(x)
    monkeypatch.setattr(H, "SPLIT_MIN_ELEMENTS", 3)
    monkeypatch.setattr(H, "_buffer_elements", lambda numel: 1237)
    parts = H._parts(x.to(torch.uint8) if x.dtype == torch.bool else x)
    assert len(parts) == min(H.SPLIT_THREADS, max(1, x.numel() // 3)) or x.dim() == 0
    stats, hist = H.summarize(x)
    ref_stats, ref_hist = _reference(x)
    assert hist == whole[1]
    assert hist["counts"] == ref_hist["counts"]
    for key in ("nan", "posinf", "neginf", "finite", "min", "max", "zeros"):
        assert stats[key] == whole[0][key], key
    if ref_stats["finite"] and max(abs(ref_stats["min"]), abs(ref_stats["max"])) < 1e30:
        assert stats["mean"] == pytest.approx(ref_stats["mean"], rel=1e-6, abs=1e-30)
        assert stats["std"] == pytest.approx(ref_stats["std"], rel=1e-5, abs=1e-30)


def test_small_summaries_match_tensor_stats_and_leave_the_rest_to_it() -> None:
    """The weights table summarizes a model's many small tensors together (rows of one matrix
    per size): the same numbers as tensor_stats one by one (which sums in float32: to 1e-4),
    None for what it does not cover (NaN/Inf, integers, empty, big, meta)."""
    from layerscope.inspect.stats import SMALL_ELEMENTS, small_summaries, tensor_stats

    g = torch.Generator().manual_seed(3)
    nan = torch.randn(4, 4, generator=g)
    nan[1, 2] = math.nan
    inf = torch.randn(8, generator=g)
    inf[0] = math.inf
    covered = [
        torch.randn(16, 16, generator=g) * 3 + 100,
        torch.randn(16, 16, generator=g),  # same size: another row of the same matrix
        torch.full((7,), 2.5),  # constant: std exactly 0
        torch.randn(5, 3, generator=g).to(torch.float16),
        torch.randn(300, generator=g, dtype=torch.float64),
        torch.randn(3, 4, generator=g).t(),  # not contiguous
    ]
    left = [nan, inf, torch.arange(6), torch.empty(0), torch.zeros(SMALL_ELEMENTS + 1)]
    left.append(torch.empty(3, 3, device="meta"))
    got = small_summaries(covered + left)
    assert got[len(covered) :] == [None] * len(left)
    for t, s in zip(covered, got, strict=False):
        ref = tensor_stats(t)
        assert s is not None and s["numel"] == ref["numel"]
        assert (s["nan"], s["posinf"], s["neginf"]) == (0, 0, 0)
        for k in ("mean", "std", "norm"):
            assert s[k] == pytest.approx(ref[k], rel=1e-4, abs=1e-6), (k, t.shape)
    assert got[2]["std"] == 0.0


def test_the_summarized_tensor_is_left_as_it_was() -> None:
    # Tensor.numpy() would mark the storage as never resizable again: the passes must not.
    x = torch.randn(50_000)
    before = x.clone()
    H.summarize(x)
    assert torch.equal(x, before)
    x.untyped_storage().resize_(0)
    assert x.untyped_storage().nbytes() == 0
