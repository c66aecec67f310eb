"""Every public API on every architecture of tests/hf_zoo.py, with the model-unchanged check
(parameters, buffers, .grad, requires_grad, training flags, hooks, RNG state) after each call.

Hugging Face models are built from tiny configs with random weights: nothing is downloaded
(``HF_HUB_OFFLINE=1``)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"

import layerscope as ls
from hf_zoo import CASES, Case
from layerscope.attribution import attention_weights
from test_attribution_promises import assert_same, prepared, snapshot

# models with attention: attention_weights must find probabilities there, and nothing else
NO_ATTENTION_FAMILIES = {"convnet", "state space", "odd"}
NO_ATTENTION = {"lstm", "gru"}
ATTENTION = {
    n for n, c in CASES.items() if c.family not in NO_ATTENTION_FAMILIES and n not in NO_ATTENTION
}
# the models' own errors for an API, said clearly (the test checks the message)
REFUSED = {
    ("quantized", "attribute"): "gradient path breaks",
    ("quantized", "saliency"): "gradient path breaks",
}


def _kept(model: torch.nn.Module, fn: Any) -> Any:
    """Run ``fn()`` and check the model and the RNG come back as they were."""
    before = snapshot(model)
    rng = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fn()
    assert_same(before, snapshot(model))
    assert torch.equal(rng, torch.get_rng_state()), "the RNG state moved"
    return result


def _api_calls(case: Case, model: torch.nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    target = case.target
    out = case.output
    return {
        "trace": lambda: ls.inspect.trace(model, *args, **kwargs),
        "capture": lambda: ls.inspect.capture(model, *args, **kwargs),
        "activations": lambda: ls.activations(model, *args, **kwargs),
        "graph": lambda: ls.graph(model, *args, **kwargs),
        "weights": lambda: ls.weights(model),
        "attribute": lambda: ls.attribute(
            model, args, target, method="integrated_gradients", n_steps=2, output=out, **kwargs
        ),
        "saliency": lambda: ls.saliency(
            model, args, target, method="gradient", output=out, **kwargs
        ),
        "recorder": lambda: _record(model, args, kwargs),
        "timeline": lambda: ls.timeline(_record(model, args, kwargs)),
        "explore": lambda: _explore(model, args, kwargs),
    }


def _explore(model: torch.nn.Module, args: tuple, kwargs: dict) -> Any:
    """The workspace with a recorder, three layers selected across the model (every panel of
    each computed), then the rest of the bake."""
    ex = ls.explore(model, *args, recorder=_record(model, args, kwargs), **kwargs)
    table = ex._layers  # the page's columns: the parameter each module's weights panel shows
    first = {
        p: table["params"][i] for p, i in zip(table["paths"], table["param"], strict=True) if i >= 0
    }
    paths = [p for p in table["paths"] if p]
    for path in paths[:: max(1, len(paths) // 3)][:3]:
        ex.selected = path
        assert ex.weights.selected == first.get(path, ex.weights.selected)
    ex._after_cell()
    assert ex._baked["weights"] or not any(True for _ in model.parameters())
    return ex


def _record(model: torch.nn.Module, args: tuple, kwargs: dict) -> ls.Recorder:
    rec = ls.Recorder(model, probe=args, probe_kwargs=kwargs)
    rec.step(loss=1.0)
    rec.epoch()
    return rec


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if c.slow else n for n, c in CASES.items()],
)
def test_every_api_on_every_model(name: str) -> None:
    case = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, args, kwargs = case.build()
    if any(True for _ in model.parameters()):
        prepared(model)  # train mode, a known .grad everywhere, one frozen parameter
    else:
        model.train()  # a quantized model keeps its weights in packed params
    for api, call in _api_calls(case, model, args, kwargs).items():
        refused = REFUSED.get((name, api))
        if refused:
            before = snapshot(model)
            with pytest.raises(ValueError, match=refused), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
            assert_same(before, snapshot(model))  # also after the error
            continue
        result = _kept(model, call)
        if api == "capture":
            assert result, f"{name}: capture found no layer"
            assert not any(t.is_nested for t in result.values())
            assert not any("parametrizations" in k for k in result)
        if api == "attribute":
            attr = result[0] if isinstance(result, tuple) else result
            assert torch.isfinite(attr).all() and attr.abs().sum() > 0, f"{name}: zero attribution"
    weights = None
    try:
        weights = _kept(
            model, lambda: attention_weights(model, args, forward_kwargs=kwargs or None)
        )
    except ValueError as e:
        assert name not in ATTENTION, f"{name}: {e}"
        assert "no attention weights" in str(e)
    if name in ATTENTION:
        assert weights, name
        for path, w in weights.items():
            rows = w.sum(-1)
            assert (w >= 0).all() and torch.allclose(rows, torch.ones_like(rows), atol=1e-3), path
