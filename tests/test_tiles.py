"""Tiles against numpy: every aggregation, edge tiles, non-square, 1 x N / N x 1, float16 and
bfloat16 input, NaN/Inf dominance, chunking; quantization within its stated error bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import layerscope.wire.tiles as tiles
from layerscope.inspect.histogram import FINE_BINS, percentile, summarize
from layerscope.inspect.stats import tensor_stats
from layerscope.wire.quantize import (
    LEVELS,
    NAN,
    NEGINF,
    POSINF,
    dequantize_u8,
    error_bound,
    nice_range,
    quantize_u8,
    to_float16,
)
from layerscope.wire.tiles import AGGREGATIONS, block_reduce, fit_budget


def reference(
    x: np.ndarray, out: tuple[int, int], agg: str, window: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """Plain-numpy block aggregation with the adaptive-pooling windows, in float64."""
    if window is not None:
        r0, r1, c0, c1 = window
        x = x[r0:r1, c0:c1]
    h, w = x.shape
    oh, ow = min(out[0], h), min(out[1], w)
    res = np.empty((oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            b = x[
                (i * h) // oh : -((-(i + 1) * h) // oh), (j * w) // ow : -((-(j + 1) * w) // ow)
            ].astype(np.float64)
            if agg == "mean":
                v = b.mean()
            elif agg == "max":
                v = b.max()
            elif agg == "min":
                v = b.min()
            else:
                v = b.max() if b.max() >= -b.min() else b.min()
            if agg != "mean" and not np.isfinite(b).all():
                v = np.nan if np.isnan(b).any() else (np.inf if (b == np.inf).any() else -np.inf)
            res[i, j] = v
    return res


CASES = [
    ((37, 53), (7, 11), None),  # non-square, uneven windows
    ((1, 1000), (1, 37), None),  # 1 x N
    ((1000, 1), (37, 1), None),  # N x 1
    ((64, 64), (64, 5), None),  # rows exact, columns reduced
    ((50, 40), (3, 40), None),
    ((100, 90), (9, 8), (91, 100, 80, 90)),  # edge tile at the bottom-right corner
    ((100, 90), (4, 4), (13, 57, 0, 33)),
    # Uniform blocks (every cell kh x kw): the reshape path.
    ((64, 48), (16, 12), None),
    ((100, 90), (4, 5), (10, 50, 20, 45)),
    ((1, 1000), (1, 100), None),
    # Uniform row blocks, uneven column windows.
    ((60, 70), (12, 9), None),
    ((100, 90), (8, 7), (20, 60, 3, 90)),
]


@pytest.mark.parametrize("agg", AGGREGATIONS)
@pytest.mark.parametrize(("shape", "out", "window"), CASES)
def test_block_reduce_matches_numpy(shape, out, window, agg) -> None:
    rng = np.random.default_rng(hash((shape, out)) % 2**32)
    x = rng.standard_normal(shape).astype(np.float32)
    got = block_reduce(torch.from_numpy(x), out, window=window, agg=agg)
    np.testing.assert_allclose(got, reference(x, out, agg, window), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("agg", AGGREGATIONS)
@pytest.mark.parametrize("out", [(6, 7), (6, 9), (7, 9)])  # uniform, uniform rows, neither
def test_nan_and_inf_win_in_every_block(agg, out) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 70)).astype(np.float32)
    x[3, 4], x[30, 31], x[50, 60], x[51, 61] = np.nan, np.inf, -np.inf, np.inf
    got = block_reduce(torch.from_numpy(x), out, agg=agg)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(reference(x, out, agg)))
    np.testing.assert_allclose(got, reference(x, out, agg), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("agg", AGGREGATIONS)
def test_chunked_reduction_is_the_same(agg, monkeypatch) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((301, 77)).astype(np.float32)
    x[150, 3] = np.nan
    # A few rows per chunk, windows split (and no one-chunk shortcut for small tensors).
    monkeypatch.setattr(tiles, "_CHUNK_ELEMENTS", 200)
    monkeypatch.setattr(tiles, "_MIN_CHUNK_ELEMENTS", 200)
    monkeypatch.setattr(tiles, "_WHOLE_ELEMENTS", 0)
    assert tiles.chunk_elements(x.size) == 200
    for out in [(13, 9), (1, 9), (301, 77 // 2), (43, 11), (7, 7)]:
        np.testing.assert_allclose(
            block_reduce(torch.from_numpy(x), out, agg=agg),
            reference(x, out, agg),
            rtol=2e-6,
            atol=1e-6,
        )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int32, torch.bool])
def test_low_precision_and_integer_input(dtype) -> None:
    x = (torch.randn(40, 30) * 4).to(dtype)
    ref = x.to(torch.float32).numpy()
    for agg in AGGREGATIONS:
        np.testing.assert_allclose(
            block_reduce(x, (5, 6), agg=agg), reference(ref, (5, 6), agg), rtol=1e-5, atol=1e-5
        )
    assert block_reduce(x, (40, 30)).dtype == np.float32  # exact cells, widened


def test_output_never_invents_resolution_and_bad_windows_are_errors() -> None:
    assert block_reduce(torch.zeros(3, 4), (100, 100)).shape == (3, 4)
    with pytest.raises(ValueError, match="outside a tensor of shape"):
        block_reduce(torch.zeros(3, 4), (2, 2), window=(0, 4, 0, 2))
    with pytest.raises(ValueError, match="unknown aggregation"):
        block_reduce(torch.zeros(3, 4), (2, 2), agg="median")


def test_fit_budget_keeps_aspect_and_budget() -> None:
    assert fit_budget((4096, 2048), 1024, 2**19) == (1024, 512)
    h, w = fit_budget((16384, 16384), 1024, 2**19)
    assert h * w <= 2**19 and abs(h - w) <= 1
    assert fit_budget((3, 5), 1024, 2**19) == (3, 5)


def test_quantization_error_is_within_the_stated_bound() -> None:
    rng = np.random.default_rng(3)
    v = rng.uniform(-3, 5, 100_000).astype(np.float32)
    codes, q = quantize_u8(v, -3, 5)
    back = dequantize_u8(codes, q)
    bound = error_bound(q)
    assert bound == pytest.approx(8 / 500)
    assert np.abs(back - v).max() <= bound * (1 + 1e-5)  # + float32 rounding of the decoded value
    assert codes.max() == LEVELS and codes.min() == 0
    # The bound is tight: a coarser rounding would fail this test.
    assert np.abs(back - v).max() > bound * 0.9


def test_quantization_sentinels_clipping_and_log_mode() -> None:
    v = np.array([np.nan, np.inf, -np.inf, -10.0, 10.0, 0.5], np.float32)
    codes, q = quantize_u8(v, 0, 1)
    assert codes[:3].tolist() == [NAN, POSINF, NEGINF]
    assert codes[3] == 0 and codes[4] == LEVELS  # clipped to the colour range ends
    back = dequantize_u8(codes, q)
    assert np.isnan(back[0]) and back[1] == np.inf and back[2] == -np.inf
    # 1e-30 and 1e30 together: log magnitudes keep both ends.
    mags = np.array([1e-30, 1e-10, 1.0, 1e30, 0.0], np.float32)
    codes, q = quantize_u8(mags, 1e-30, 1e30, log=True)
    back = dequantize_u8(codes, q)
    logerr = np.abs(np.log10(back[:4]) - np.log10(mags[:4]))
    assert logerr.max() <= error_bound(q) + 1e-6 and back[4] == 0
    # All-equal: no division by zero.
    codes, q = quantize_u8(np.full(4, 7.0, np.float32), 7.0, 7.0)
    assert q["hi"] > q["lo"] and np.allclose(dequantize_u8(codes, q), 7.0, atol=error_bound(q))


def test_nice_range_holds_the_data_in_round_bounds_not_much_wider() -> None:
    """The timeline's colour range: bounds that are multiples of a round step (1, 2, 2.5 or 5
    times a power of ten, a sixth to a sixteenth of the span), around the data and at most a
    third wider, symmetric when the data's range is; data that grows inside it keeps it unless
    its rounded span changes; a narrow range far from 0 keeps its contrast; 0, NaN, Inf and
    empty ranges as they are."""
    from layerscope.wire.quantize import _SPANS, _round_number

    rng = np.random.default_rng(0)
    for _ in range(20_000):
        scale = 10.0 ** rng.uniform(-30, 30)
        lo, hi = np.sort(rng.uniform(-1, 1, 2) * scale).tolist()
        if rng.random() < 0.3:
            lo, hi = -max(-lo, hi), max(-lo, hi)  # a signed tensor's symmetric range
        span = hi - lo
        out = nice_range(lo, hi)
        assert out[0] <= lo and out[1] >= hi
        assert out[1] - out[0] <= span * (4 / 3) * (1 + 1e-9), (lo, hi, out)
        if lo == -hi:
            assert out[0] == -out[1]
        e = math.floor(math.log10(span))
        steps = [c * 10.0**k for k in (e - 2, e - 1, e) for c in (1, 2, 2.5, 5)]
        assert any(
            span / 16 * (1 - 1e-9) <= st <= span / 6 * (1 + 1e-9)
            and all(abs(b / st - round(b / st)) < 1e-6 for b in out)
            for st in steps
        ), (lo, hi, out)
        # the data grows inside the range (a live run): the same range, unless the span
        # passed a round span
        lo2, hi2 = rng.uniform(out[0], lo), rng.uniform(hi, out[1])
        if nice_range(lo2, hi2) != out:
            assert _round_number(hi2 - lo2, _SPANS, True) != _round_number(span, _SPANS, True)
    assert nice_range(-0.37, 0.37) == (-0.4, 0.4) and nice_range(0.1, 0.3) == (0.1, 0.3)
    assert nice_range(0.0, 9.2) == (0.0, 10.0) and nice_range(0.981, 1.029) == (0.98, 1.03)
    assert nice_range(0.0, 0.0) == (0.0, 0.0) and nice_range(-math.inf, 1.0)[0] == -math.inf


def test_float16_form_bounded_relative_error() -> None:
    v = np.array([1e30, -3e29, 1e25, np.nan, np.inf], np.float32)
    h, scale = to_float16(v)
    back = h.astype(np.float32) * scale
    assert np.allclose(back[:3], v[:3], rtol=2**-11)
    assert np.isnan(back[3]) and back[4] == np.inf


def test_summary_matches_numpy_and_percentiles_within_a_bin() -> None:
    x = torch.randn(700, 900) * 3 + 1
    x[0, 0] = 0.0
    x[1, 1] = float("nan")
    x[2, 2] = float("inf")
    stats, hist = summarize(x)
    ref = tensor_stats(x)
    for k in ("nan", "posinf", "neginf", "finite", "min", "max"):
        assert stats[k] == ref[k]
    for k in ("mean", "std", "norm", "zeros"):
        assert stats[k] == pytest.approx(ref[k], rel=1e-5)
    assert sum(hist["counts"]) == stats["finite"] and len(hist["counts"]) == FINE_BINS
    finite = x[torch.isfinite(x)].numpy()
    width = (stats["max"] - stats["min"]) / FINE_BINS
    for q in (1, 50, 99):
        assert abs(percentile(hist, q) - np.percentile(finite, q)) <= width
    assert hist["abs_lo"] == 0 or hist["abs_lo"] == pytest.approx(np.abs(finite[finite != 0]).min())


def test_summary_of_all_nan_and_all_equal() -> None:
    stats, hist = summarize(torch.full((5, 5), float("nan")))
    assert stats["nan"] == 25 and stats["min"] is None and hist["counts"] == []
    stats, hist = summarize(torch.full((5, 5), 2.0))
    assert stats["min"] == stats["max"] == 2.0 and sum(hist["counts"]) == 25
    assert percentile(hist, 50) == 2.0
    assert math.isfinite(stats["std"])


@pytest.mark.parametrize("agg", AGGREGATIONS)
def test_reduce_blocks_whole_blocks_and_remainders(agg) -> None:
    """Blocks of kh x kw from the corner; the last row and column of cells take what is left."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((23, 17)).astype(np.float32)
    x[21, 2] = np.nan  # in a remainder row
    got = tiles.reduce_blocks(torch.from_numpy(x), (5, 4), agg=agg)
    assert got.shape == (5, 5)
    for i, (a, b) in enumerate([(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]):
        for j, (c, d) in enumerate([(0, 4), (4, 8), (8, 12), (12, 16), (16, 17)]):
            want = reference(x[a:b, c:d], (1, 1), agg)[0, 0]
            np.testing.assert_allclose(got[i, j], want, rtol=2e-6, atol=1e-6)
    whole = tiles.reduce_blocks(torch.from_numpy(x), (1, 1), window=(2, 9, 3, 5), agg=agg)
    np.testing.assert_array_equal(whole, x[2:9, 3:5])


def test_aligned_blocks_cover_the_window_in_whole_aligned_blocks() -> None:
    rng = np.random.default_rng(4)
    for _ in range(500):
        n = int(rng.integers(2, 50_000))
        a = int(rng.integers(0, n - 1))
        b = int(rng.integers(a + 1, n + 1))
        out = int(rng.integers(1, 2000))
        start, end, cells = tiles.aligned_blocks(a, b, n, out)
        if 2 * (b - a) < 3 * out:  # under 1.5 cells a pixel: as asked
            assert (start, end, cells) == (a, b, out)
            continue
        k = round((b - a) / out)
        assert start % k == 0 and (end - start) == cells * k and 0 <= start <= a
        assert end <= n and (end >= b or n - end < k)  # covers it, but for a tail under k
        assert cells <= 1.25 * out + 2 and cells >= 0.75 * out - 1
