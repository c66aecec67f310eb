"""Where the gradient path from the attributed tensor to the output breaks.

A quantized layer or an integer cast gives an output with no gradient: the attribution would be
all zeros, which looks like an answer. Captum raises there; we raise too, and say where. One
diagnostic forward pass with gradients on finds the innermost module whose tensor inputs need a
gradient while none of its outputs has one, and inside it the first op that did that.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

# Ops whose gradient-free result is expected (a mask, a shape, an index): never "the break".
_BENIGN = ("size", "dim", "shape", "numel", "__get__", "is_floating_point", "detach")


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]


def _grad_inputs(value: Any) -> list[torch.Tensor]:
    return [t for t in _tensors(value) if t.requires_grad]


def _cuts(inputs: Any, output: Any) -> bool:
    """Whether ``output`` holds a float tensor (or an integer one, not a bool mask) that does
    not depend differentiably on any of ``inputs`` that need a gradient.

    ``requires_grad`` alone does not tell: a dynamically quantized Linear returns a tensor that
    requires grad but whose graph does not reach its input.
    """
    sources = _grad_inputs(inputs)
    outs = [t for t in _tensors(output) if t.dtype != torch.bool]
    if not sources or not outs:
        return False
    floats = [t for t in outs if t.requires_grad and t.is_floating_point()]
    if not floats:
        return True  # an integer cast, or a result computed without the graph
    grads = torch.autograd.grad(
        [t.sum() for t in floats], sources, allow_unused=True, retain_graph=True
    )
    return all(g is None for g in grads)


class _FirstCut(TorchFunctionMode):
    """Records the first op whose tensor arguments need a gradient and whose result has none."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, str | None]] = []
        self.where: list[str | None] = [None]

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", None) or str(func)
        # (the mode is off inside its own __torch_function__: _cuts's ops are not seen)
        if (
            name not in _BENIGN
            and isinstance(out, torch.Tensor | tuple | list)
            and _cuts((args, kwargs), out)
        ):
            self.ops.append((name, self.where[-1]))
        return out


def describe_break(run: Callable[[], Any], model: nn.Module) -> str:
    """Run ``run()`` (a forward pass whose attributed tensors need a gradient) and describe where
    the gradient path ends: "module 'path' (Type), op 'name'"; hooks are removed afterwards."""
    modules: list[tuple[str, str]] = []
    mode = _FirstCut()
    handles = []

    def pre(path: str, _m: nn.Module, _inp: Any) -> None:
        mode.where.append(path)

    def post(path: str, m: nn.Module, inp: Any, out: Any) -> None:
        mode.where.pop()
        with torch._C.DisableTorchFunction():
            if _cuts(inp, out):
                modules.append((path, type(m).__name__))

    for path, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(partial(pre, path)))
        handles.append(m.register_forward_hook(partial(post, path), always_call=True))
    try:
        with torch.enable_grad(), mode:
            run()
    except Exception:  # the pass already ran once; what it found so far is the answer
        pass
    finally:
        for h in handles:
            h.remove()
    parts = []
    ops = mode.ops
    if modules:
        path, kind = modules[0]  # post hooks run innermost first
        parts.append(f"module {path!r} ({kind})")
        ops = [o for o in mode.ops if o[1] == path] or ops
    if ops:
        op, where = ops[0]
        parts.append(f"op {op!r}" + (f" in module {where!r}" if where and not modules else ""))
    if not parts:
        return "the model's output does not depend on the attributed input"
    return "the gradient path breaks at " + ", ".join(parts)
