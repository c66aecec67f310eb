"""ls.heatmap on the kernel side: what the view is given, bad inputs, exact values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import layerscope as ls
from layerscope.wire import decode_array


def base_array(view: ls.TensorView) -> np.ndarray:
    return decode_array(view._base["data"])


def test_small_tensor_is_baked_whole_with_stats() -> None:
    x = torch.arange(12.0).view(3, 4) - 5
    x[0, 0] = float("nan")
    x[2, 3] = float("inf")
    v = ls.heatmap(x)
    assert v._meta["kind"] == "2d" and v._meta["shape"] == [3, 4]
    s = v._meta["stats"]
    assert (s["nan"], s["posinf"], s["neginf"]) == (1, 1, 0)
    assert s["min"] == -4 and s["max"] == 5
    assert v._base["exact"] is True
    np.testing.assert_array_equal(base_array(v), x.numpy())


def test_big_tensor_is_baked_at_screen_size_and_hover_asks_the_kernel() -> None:
    x = torch.randn(4096, 2048)
    v = ls.heatmap(x)
    arr = base_array(v)
    assert arr.shape == (1024, 512) and v._base["exact"] is False
    assert v._base["data"]["buffer"].nbytes == 1024 * 512 * 4
    np.testing.assert_allclose(arr[0, 0], x[:4, :4].mean().item(), rtol=1e-5)
    reply, _ = v.handle_request("value", {"row": 4095, "col": 7})
    # Exact: the text reads back to the very same float32.
    assert np.float32(reply["text"]) == x[4095, 7].numpy()


def test_exact_value_texts() -> None:
    v = ls.heatmap(torch.tensor([[0.1, float("nan")], [float("-inf"), 2.0]]))
    texts = [
        v.handle_request("value", {"row": r, "col": c})[0]["text"] for r in (0, 1) for c in (0, 1)
    ]
    assert texts == ["0.1", "NaN", "-Inf", "2"]
    big = ls.heatmap(torch.tensor([[2**53 + 1, 0]]))
    assert big.handle_request("value", {"row": 0, "col": 0})[0]["text"] == "9007199254740993"


def test_value_outside_the_tensor_is_a_clear_error() -> None:
    v = ls.heatmap(torch.zeros(3, 3))
    with pytest.raises(IndexError, match=r"outside the tensor of shape \(3, 3\)"):
        v.handle_request("value", {"row": 9, "col": 0})


def test_one_d_is_a_strip_and_empty_is_an_empty_state() -> None:
    strip = ls.heatmap(np.linspace(-1, 1, 50))
    assert strip._meta["kind"] == "1d" and strip._meta["shape"] == [1, 50]
    assert strip._meta["source_shape"] == [50]
    empty = ls.heatmap(torch.zeros(0, 5))
    assert empty._meta["kind"] == "empty" and empty._meta["source_shape"] == [0, 5]
    assert empty._base == {}


def test_all_nan_and_all_equal_render() -> None:
    v = ls.heatmap(torch.full((4, 4), float("nan")))
    assert v._meta["stats"]["nan"] == 16 and v._meta["stats"]["min"] is None
    assert np.isnan(base_array(v)).all()
    same = ls.heatmap(torch.full((4, 4), 7.0))
    assert same._meta["stats"]["min"] == same._meta["stats"]["max"] == 7.0


def test_lists_of_numbers_are_accepted_and_dtypes_kept() -> None:
    v = ls.heatmap([[1, 2], [3, 4]])
    assert v._meta["dtype"] == "int64"
    bf = ls.heatmap(torch.randn(3, 3, dtype=torch.bfloat16))
    assert bf._meta["dtype"] == "bfloat16" and bf._base["data"]["source"] == "float32"


def test_assigning_new_data_updates_and_changes_token() -> None:
    v = ls.heatmap(torch.zeros(2, 2))
    token = v._meta["token"]
    v.data = torch.ones(3, 5)
    assert v._meta["token"] != token and v._meta["shape"] == [3, 5]
    assert v._meta["t_sent"] > 0


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (["a", "b"], TypeError, "got list"),
        ({"a": 1}, TypeError, "got dict"),
        (None, TypeError, "got None"),
        (torch.randn(3, 3, dtype=torch.complex64), TypeError, "complex"),
        (torch.randn(3, 3).to_sparse(), TypeError, "to_dense"),
        (torch.empty(3, 3, device="meta"), ValueError, "meta"),
        ([[1, 2], [3]], TypeError, "ragged"),
    ],
)
def test_bad_inputs(bad: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ls.heatmap(bad)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="unknown colormap 'jet'"):
        ls.heatmap(torch.zeros(2, 2), colormap="jet")
