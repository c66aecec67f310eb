"""A wrong input raises one readable error wherever the model is run: which pass, which module
(path and class), what that module got, what it takes, with the model's own error chained."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import layerscope as ls
from layerscope.inspect.errors import ForwardError, ModelError
from layerscope.inspect.trace import TraceError, trace


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids).mean(1))


def no_hooks(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )


def test_saliency_on_a_cnn_with_flat_inputs_names_the_conv_and_its_input() -> None:
    model = CNN().eval()
    with pytest.raises(ForwardError) as info:
        ls.saliency(model, torch.randn(4, 64), method="gradient")
    err = info.value
    message = str(err)
    assert err.path == "features.0"
    assert "in module 'features.0' (Conv2d)" in message
    assert "got input=float32[4, 64] on cpu" in message
    assert "it takes a float tensor shaped (N, 3, H, W) (4-D, 3 input channels)" in message
    assert isinstance(err.__cause__, RuntimeError) and err.original is err.__cause__
    assert no_hooks(model)


def test_attribute_and_capture_wrap_the_models_error() -> None:
    model = CNN()
    with pytest.raises(
        ForwardError, match=r"attribution \(gradient\) of CNN failed in module 'features\.0'"
    ):
        ls.attribute(model, torch.randn(2, 64), target=0, method="gradient")
    with pytest.raises(
        ForwardError, match=r"capture of CNN failed in module 'features\.0' \(Conv2d\)"
    ) as info:
        ls.inspect.capture(model, torch.randn(2, 64), layers=["head"])
    assert isinstance(info.value, ModelError) and isinstance(info.value.__cause__, RuntimeError)
    # Errors that are not the model's pass through as they are.
    with pytest.raises(ValueError, match="unknown method"):
        ls.attribute(model, torch.randn(2, 3, 8, 8), target=0, method="nope")
    assert no_hooks(model)


def test_float_token_ids_name_the_embedding() -> None:
    model = TinyLM().eval()
    with pytest.raises(ForwardError) as info:
        ls.saliency(model, torch.rand(2, 6) * 49, method="gradient")
    message = str(info.value)
    assert "in module 'embed' (Embedding)" in message
    assert "it takes integer token ids (torch.long) from 0 to 49" in message
    assert "got input=float32[2, 6]" in message


def test_activations_without_inputs_says_to_pass_them() -> None:
    with pytest.raises(
        TypeError, match=r"pass them after the model: ls\.activations\(model, x, layer=\.\.\.\)"
    ):
        ls.activations(CNN(), layer="features.0")


def test_trace_error_is_a_model_error_and_says_what_the_module_takes() -> None:
    with pytest.raises(TraceError) as info:
        trace(CNN(), torch.randn(2, 64))
    assert isinstance(info.value, ModelError)
    assert "it takes a float tensor shaped (N, 3, H, W)" in str(info.value)
