"""Capture layer outputs of one forward pass: ``capture(model, *inputs, layers=None)``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from .errors import model_errors
from .modules import check_module, find_module, layer_modules
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


def dense(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor for ``t``: a nested tensor (``nn.TransformerEncoder``'s fast path in eval
    mode with a padding mask) is padded to its longest sequence with NaN, so views show the
    padded positions as NaN (their own colour and count) instead of values the model never made."""
    if t.is_nested:
        return t.to_padded_tensor(float("nan"))
    return t


def _layer_list(model: nn.Module, layers: str | Iterable[str]) -> list[str]:
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

    ``layers`` is a module path, a list of them, or None for every layer that ran: a module that
    ran and none of whose children ran (so ``nn.MultiheadAttention``, whose ``out_proj`` is never
    called, a dynamically quantized Linear, a bare ``nn.LSTM`` given as the model (path "") are
    layers; parametrizations such as ``weight_norm`` are part of their owner). The model is put in
    eval mode for the pass (``eval_mode=False`` keeps its mode) and given back exactly as it was:
    no grads, no hooks left, buffers and flags restored. A module called several times maps to the
    output of its last call; ``path + "#k"`` keys hold earlier calls (k = 0, 1, ...).

    >>> acts = capture(model, x, layers=["features.0", "classifier"])   # doctest: +SKIP
    >>> acts["features.0"].shape                                         # doctest: +SKIP
    """
    check_module(model)
    if layers is None:
        captured = _capture_ran_leaves(model, inputs, kwargs, eval_mode)
    else:
        captured = _capture_paths(model, _layer_list(model, layers), inputs, kwargs, eval_mode)
    result: dict[str, torch.Tensor] = {}
    for path, outs in captured.items():
        if not outs:
            continue
        result[path] = outs[-1]
        if len(outs) > 1:
            for k, t in enumerate(outs):
                result[f"{path}#{k}"] = t
    return result


def _capture_paths(
    model: nn.Module, paths: list[str], inputs: Any, kwargs: Any, eval_mode: bool
) -> dict[str, list[torch.Tensor]]:
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
                        captured[path].append(dense(t.detach()))

                handles.append(module.register_forward_hook(hook))
            with torch.no_grad(), model_errors(model, "capture", inputs, kwargs):
                model(*inputs, **kwargs)
        finally:
            for h in handles:
                h.remove()
    return captured


def _capture_ran_leaves(
    model: nn.Module, inputs: Any, kwargs: Any, eval_mode: bool
) -> dict[str, list[torch.Tensor]]:
    """Outputs of every module that ran and none of whose children ran, in call order.

    A stack of calls tells, when a call ends, whether any module ran inside it; the outputs of
    calls that had one are dropped then, so only layer outputs are kept alive.
    """
    stack: list[list[Any]] = []  # [path, child ran]
    outputs: dict[str, list[torch.Tensor]] = {}
    parents: set[str] = set()

    def pre(path: str, _m: nn.Module, _inp: Any) -> None:
        if stack:
            stack[-1][1] = True
        stack.append([path, False])

    def post(path: str, _m: nn.Module, _inp: Any, out: Any) -> None:
        while stack and stack[-1][0] != path:  # a call that raised inside a caught exception
            stack.pop()
        if not stack:
            return
        _, child_ran = stack.pop()
        if child_ran:
            parents.add(path)
            return
        t = first_tensor(out)
        if t is not None:
            outputs.setdefault(path, []).append(dense(t.detach()))

    with preserved(model):
        if eval_mode:
            model.eval()
        handles = []
        try:
            for path, module in layer_modules(model):
                if isinstance(module, torch.jit.ScriptModule):
                    continue  # refuses hooks
                handles.append(module.register_forward_pre_hook(partial(pre, path)))
                handles.append(module.register_forward_hook(partial(post, path), always_call=True))
            with torch.no_grad():
                model(*inputs, **kwargs)
        finally:
            for h in handles:
                h.remove()
    # "none of whose children ran" holds over all calls: a module that ran a child in any call
    # is a container
    return {p: outs for p, outs in outputs.items() if p not in parents}
