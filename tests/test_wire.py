"""The wire: every dtype round-trips through a widget's get_state/set_state as binary buffers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets
from ipywidgets import Widget
from ipywidgets.widgets.widget import _remove_buffers

from layerscope.wire import array_serialization, decode_array, encode_array


class Holder(Widget):
    value = traitlets.Any(None, allow_none=True).tag(sync=True, **array_serialization)


TORCH_CASES = [
    torch.tensor([[1.5, -2.0], [float("nan"), float("inf")]], dtype=torch.float64),
    torch.tensor([[1.5, -2.0], [float("nan"), -float("inf")]], dtype=torch.float32),
    torch.tensor([0.1, 65504.0, float("nan")], dtype=torch.float16),
    torch.tensor([0.1, 3.0e38, float("inf")], dtype=torch.bfloat16),
    torch.tensor([-128, 0, 127], dtype=torch.int8),
    torch.tensor([-32768, 0, 32767], dtype=torch.int16),
    torch.tensor([-(2**31), 0, 2**31 - 1], dtype=torch.int32),
    torch.tensor([-(2**63), 2**53 + 1, 2**63 - 1], dtype=torch.int64),
    torch.tensor([0, 255], dtype=torch.uint8),
    torch.tensor([True, False, True]),
]


@pytest.mark.parametrize("t", TORCH_CASES, ids=lambda t: str(t.dtype))
def test_torch_dtypes_round_trip_through_widget_state(t: torch.Tensor) -> None:
    w = Holder(value=t)
    state = w.get_state()
    _, paths, _buffers = _remove_buffers(state)
    assert paths == [["value", "buffer"]], "the bytes must travel as a binary buffer, not JSON"
    assert isinstance(state["value"]["shape"], list)
    w2 = Holder()
    w2.set_state(state)
    back = w2.value
    expected = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
    assert back.dtype == expected.dtype
    np.testing.assert_array_equal(back, expected)  # NaN == NaN here
    w.close()
    w2.close()


def test_int64_beyond_2_53_is_exact() -> None:
    big = 2**53 + 1
    back = decode_array(encode_array(torch.tensor([big])))
    assert int(back[0]) == big


@pytest.mark.parametrize(
    "a",
    [
        np.arange(6, dtype=">f4").reshape(2, 3),  # big-endian
        np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],  # non-contiguous
        np.arange(5, dtype=np.uint16),
        np.arange(5, dtype=np.uint32),
        np.arange(5, dtype=np.uint64),
        np.float32(2.5),  # numpy scalar
    ],
    ids=["big-endian", "strided", "uint16", "uint32", "uint64", "scalar"],
)
def test_numpy_inputs(a: np.ndarray) -> None:
    p = encode_array(a)
    np.testing.assert_array_equal(decode_array(p), np.asarray(a))
    assert decode_array(p).dtype.byteorder in "<=|"


def test_torch_non_contiguous_requires_grad_and_empty_and_0d() -> None:
    base = torch.randn(4, 6, requires_grad=True)
    for t in (base.t(), base[:, ::3], torch.zeros(0, 5), torch.tensor(3.5)):
        p = encode_array(t)
        assert p["shape"] == list(t.shape)
        np.testing.assert_array_equal(decode_array(p), t.detach().numpy())
    assert base.grad is None


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (["a", "b"], TypeError, "got list"),
        ({"a": 1}, TypeError, "got dict"),
        (None, TypeError, "got None"),
        (torch.randn(2, dtype=torch.complex64), TypeError, "x.real"),
        (torch.randn(3, 3).to_sparse(), TypeError, "to_dense"),
        (torch.empty(3, device="meta"), ValueError, "meta"),
        (np.array(["x"]), TypeError, "dtype <U1"),
    ],
    ids=["strings", "dict", "None", "complex", "sparse", "meta", "str-array"],
)
def test_bad_inputs_say_what_was_passed(bad: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        encode_array(bad)


def test_decode_rejects_unknown_dtype() -> None:
    with pytest.raises(ValueError, match="unknown wire dtype 'complex64'"):
        decode_array({"dtype": "complex64", "shape": [1], "buffer": memoryview(b"\0" * 8)})
