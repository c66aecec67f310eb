"""numpy_view: a tensor read as numpy without marking its storage unresizable, and the places
that read a user's tensors (layer outputs that are views of the input, labels, parameters,
gradients, a tensor shown in a view) leave them resizable."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from torch import nn

from layerscope.numpy_view import numpy_view
from layerscope.wire.tiles import block_reduce
from layerscope.wire.values import exact_text


def still_resizable(t: torch.Tensor) -> bool:
    """Whether ``t``'s storage can still be resized (a same-size resize checks the flag that
    ``Tensor.numpy()`` clears, and changes nothing)."""
    s = t.untyped_storage()
    try:
        s.resize_(s.nbytes())
    except RuntimeError as e:
        assert "not resizable" in str(e)
        return False
    return True


def test_the_check_sees_what_tensor_numpy_does():
    x = torch.zeros(3)
    assert still_resizable(x)
    x.numpy()
    assert not still_resizable(x)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x,
        lambda x: x.t(),
        lambda x: x[:, ::2],
        lambda x: x[1:, 1:],
        lambda x: x.unsqueeze(0).expand(3, -1, -1),
        lambda x: x.reshape(-1),
    ],
    ids=["contiguous", "transposed", "strided", "offset", "expanded", "flat"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.uint8])
def test_the_view_has_the_values_shape_and_dtype_of_tensor_numpy(make, dtype):
    x = torch.arange(20).reshape(4, 5).to(dtype)
    t = make(x)
    a = numpy_view(t)
    expected = t.clone().numpy()
    assert a.shape == expected.shape and a.dtype == expected.dtype
    assert np.array_equal(a, expected)
    assert still_resizable(x)


def test_the_view_shares_memory_and_keeps_the_tensor_alive():
    x = torch.zeros(4)
    a = numpy_view(x)
    a[1] = 7.0  # writable and shared, as Tensor.numpy() is
    assert x[1] == 7.0

    def made() -> np.ndarray:
        return numpy_view(torch.arange(1000.0) + 1)  # only the view holds the tensor

    b = made()
    gc.collect()
    torch.zeros(1000).fill_(-1)  # reuse freed memory, were the tensor gone
    assert b[0] == 1.0 and b[-1] == 1000.0


def test_negative_bit_empty_and_unsupported_tensors():
    x = torch.arange(3.0)
    assert numpy_view(torch._neg_view(x)).tolist() == [-0.0, -1.0, -2.0]
    assert numpy_view(torch.zeros(2, 0)).shape == (2, 0)
    with pytest.raises(TypeError):  # as Tensor.numpy(): numpy has no bfloat16
        numpy_view(torch.zeros(2, dtype=torch.bfloat16))


def test_views_and_values_leave_the_users_tensor_resizable():
    x = torch.randn(40, 30)
    block_reduce(x, (40, 30))  # full resolution: a copy of the window
    block_reduce(x[:, :10], (40, 10))
    assert exact_text(x[0, 0]) and exact_text(torch.tensor(2.5)) == "2.5"
    assert still_resizable(x)


def test_collect_leaves_the_inputs_and_labels_resizable(monkeypatch):
    """A layer that returns its input (nn.Identity) hands the kernels views of the user's data."""
    import layerscope as ls
    from layerscope.inspect import fused

    monkeypatch.setattr(fused, "MIN_VALUES", 0)  # the kernel for this small dataset too
    torch.manual_seed(0)
    model = nn.Sequential(nn.Identity(), nn.Flatten(), nn.Linear(12, 3))
    x = torch.randn(50, 3, 4)
    y = torch.randint(0, 3, (50,))
    col = ls.inspect.collect(model, (x, y), layers=["0"], batch_size=16, progress=False)
    assert still_resizable(x) and still_resizable(y)
    assert col.labels is not None and np.array_equal(col.labels, y.clone().numpy())
    assert np.allclose(col["0"].reps, x.mean(1).clone().numpy(), atol=1e-3)  # (B, T, D): D units


def test_the_recorder_leaves_parameters_gradients_and_probe_resizable():
    import layerscope as ls

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Identity(), nn.Linear(8, 2))
    probe = torch.randn(10, 6)
    rec = ls.Recorder(model, probe=probe)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss = model(torch.randn(16, 6)).square().mean()
        loss.backward()
        opt.step()
        rec.step(loss=loss)
    rec.epoch()
    for name, p in model.named_parameters():
        assert still_resizable(p), name
        assert p.grad is not None and still_resizable(p.grad), name
    assert still_resizable(probe)
