"""Capture layer outputs of one forward pass: ``capture(model, *inputs, layers=None)``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from .errors import model_errors
from .modules import check_module, find_module
from .restore import preserved


def first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in a module output (tensor, tuple/list, dict, dataclass-like)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    elif hasattr(value, "__dataclass_fields__"):
        value = [getattr(value, f) for f in value.__dataclass_fields__]
    if isinstance(value, (list, tuple)):
        for v in value:
            t = first_tensor(v)
            if t is not None:
                return t
    return None


def _layer_list(model: nn.Module, layers: str | Iterable[str] | None) -> list[str]:
    if layers is None:
        return [name for name, m in model.named_modules() if name and not list(m.children())]
    if isinstance(layers, str):
        layers = [layers]
    out = list(layers)
    for path in out:
        find_module(model, path)  # raises with close matches
    return out


def capture(
    model: nn.Module,
    *inputs: Any,
    layers: str | Sequence[str] | None = None,
    eval_mode: bool = True,
    **kwargs: Any,
) -> dict[str, torch.Tensor]:
    """Run ``model(*inputs, **kwargs)`` once and return the output tensor of each chosen layer.

    ``layers`` is a module path, a list of them, or None for every leaf module. The model is put in
    eval mode for the pass (``eval_mode=False`` keeps its mode) and given back exactly as it was:
    no grads, no hooks left, buffers and flags restored. A module called several times maps to the
    output of its last call; ``path + "#k"`` keys hold earlier calls (k = 0, 1, ...).

    >>> acts = capture(model, x, layers=["features.0", "classifier"])   # doctest: +SKIP
    >>> acts["features.0"].shape                                         # doctest: +SKIP
    """
    check_module(model)
    paths = _layer_list(model, layers)
    captured: dict[str, list[torch.Tensor]] = {p: [] for p in paths}
    with preserved(model):
        if eval_mode:
            model.eval()
        handles = []
        try:
            for path in paths:
                module = find_module(model, path)

                def hook(_m: nn.Module, _inp: Any, out: Any, path: str = path) -> None:
                    t = first_tensor(out)
                    if t is not None:
                        captured[path].append(t.detach())

                handles.append(module.register_forward_hook(hook))
            with torch.no_grad(), model_errors(model, "capture", inputs, kwargs):
                model(*inputs, **kwargs)
        finally:
            for h in handles:
                h.remove()
    result: dict[str, torch.Tensor] = {}
    for path, outs in captured.items():
        if not outs:
            continue
        result[path] = outs[-1]
        if len(outs) > 1:
            for k, t in enumerate(outs):
                result[f"{path}#{k}"] = t
    return result
