"""Grad-CAM (Selvaraju et al. 2017) on a chosen layer, upsampled to the input."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..inspect.capture import first_tensor
from ..inspect.modules import find_module
from .grid import GridSpec, rows_first, tokens_to_grid
from .problem import Attributions, Problem

_CONV_FOR_RANK = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}


def default_layer(model: nn.Module, rank: int = 4) -> tuple[str, nn.Module]:
    """The path and module of the last convolution in ``named_modules()`` order: ``nn.Conv2d``
    for images (inputs of rank 4), ``nn.Conv1d`` for signals (3), ``nn.Conv3d`` for video (5)."""
    conv = _CONV_FOR_RANK.get(rank, nn.Conv2d)
    last = None
    for name, m in model.named_modules():
        if isinstance(m, conv):
            last = (name, m)
    if last is None:
        raise ValueError(
            f"Grad-CAM defaults to the last nn.{conv.__name__}, and {type(model).__name__} has none; pass "
            "layer='path' (e.g. a transformer block, whose tokens are placed on the patch grid; in a "
            "CLS-pooled vision transformer pick one before the last, whose patch tokens get no "
            "gradient)."
        )
    return last


def _replace_first(out: Any, leaf: torch.Tensor) -> Any:
    if isinstance(out, torch.Tensor):
        return leaf
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return type(out)([leaf, *out[1:]])
    raise ValueError(
        f"Grad-CAM needs a layer whose output is a tensor (or a tuple starting with one); got "
        f"{type(out).__name__}."
    )


def attribute(
    problem: Problem,
    *,
    layer: str | nn.Module | None = None,
    relu: bool = True,
    token_grid: GridSpec = None,
    skip_tokens: int | None = None,
    interpolate_mode: str = "bilinear",
) -> Attributions:
    """ReLU(sum_c mean(dS/dA_c) * A_c) at ``layer``, upsampled to the input's size.

    ``layer``: a module path or module (default: the last Conv2d). Conv maps (R, C, h, w) are used
    as they are; token outputs (R, T, D) are placed on the patch grid (``token_grid``,
    ``skip_tokens``, see ``tokens_to_grid``) when the input is an image, or give one value per
    token otherwise. Images get an (N, 1, H, W) map, upsampled with ``F.interpolate`` (bilinear,
    as Captum's ``LayerAttribution.interpolate``); token inputs an (N, L) map. ``relu=False``
    keeps negative evidence.

    The layer's output is made a leaf for the backward pass, so nothing before it is recorded:
    peak memory is one forward over a chunk of rows plus the graph from the layer to the output.

    >>> ls.attribute(model, x, 3, method="grad_cam", layer="features.4")   # doctest: +SKIP
    """
    if layer is None:
        rank = problem.values[0].dim() if problem.embedding is None else 4
        path, module = default_layer(problem.model, rank)
    elif isinstance(layer, nn.Module):
        module, path = layer, type(layer).__name__
    else:
        module, path = find_module(problem.model, layer), layer
    image = (
        next((v for v in problem.values if v.dim() == 4), None)
        if problem.embedding is None
        else None
    )
    maps = []
    for sl in problem.chunks(problem.row_count, row_bytes=problem.row_bytes()):
        rows = [v[sl] for v in problem.values]
        index = problem.index[sl]
        leaves: list[torch.Tensor] = []

        def hook(_m: nn.Module, _inp: Any, out: Any, leaves: list[torch.Tensor] = leaves) -> Any:
            t = first_tensor(out)
            if t is None:
                raise ValueError(f"Grad-CAM layer {path!r} returned no tensor.")
            leaf = t.detach().requires_grad_(True)
            leaves.append(leaf)
            return _replace_first(out, leaf)

        with torch.enable_grad():
            out = problem.run(
                rows,
                index,
                hooks=[lambda: module.register_forward_hook(hook)],
                reset=leaves.clear,
            )
            score = problem.target.scores(out, index)
        if not leaves:
            raise ValueError(
                f"Grad-CAM layer {path!r} was not called in the forward pass; pick a layer on the "
                "path from the input to the output."
            )
        if len(leaves) > 1:
            raise ValueError(
                f"Grad-CAM layer {path!r} is called {len(leaves)} times per forward pass; pick a "
                "layer that runs once (a shared module has one activation per call)."
            )
        grad = None
        if score.requires_grad:
            (grad,) = torch.autograd.grad(score.sum(), leaves[0], allow_unused=True)
        if grad is None:
            raise ValueError(
                f"Grad-CAM layer {path!r} is not on the path to the output: its activation got no "
                "gradient from the target score. Pick a layer the output depends on (default: the "
                "last Conv2d)."
            )
        leaves_shape = leaves[0].shape[1:]
        maps.append(
            _cam(leaves[0].detach(), grad, module, image, len(index), relu, token_grid, skip_tokens)
        )
    cam = torch.cat(maps)
    zero = [i for i in range(cam.shape[0]) if not bool(cam[i].ne(0).any())]
    if zero:
        shape = tuple(leaves_shape)
        signal = _layers_with_signal(problem, path, shape, image, relu, token_grid, skip_tokens)
        where = (
            f"layers of the same output shape that give a signal for this sample: {signal}"
            if signal
            else "no layer of the same output shape gives one either; try an earlier layer"
        )
        warnings.warn(
            f"the Grad-CAM map at layer {path!r} is all zero for sample(s) {zero[:10]}: the "
            "target's gradient does not reach that layer's spatial positions (at the last block "
            f"of a vision transformer only the CLS token gets one). {where}.",
            UserWarning,
            stacklevel=4,
        )
    first = problem.values[0] if problem.embedding is None else None
    if image is not None and cam.dim() == 4:
        cam = F.interpolate(cam, tuple(image.shape[2:]), mode=interpolate_mode)
    elif first is not None and first.dim() == 5 and cam.dim() == 5:  # video: (N, 1, T, H, W)
        cam = F.interpolate(cam, tuple(first.shape[2:]), mode="trilinear")
    elif first is not None and first.dim() == 3 and cam.dim() == 3:  # a Conv1d map: (N, 1, L)
        cam = F.interpolate(cam, int(first.shape[2]), mode="linear")
    elif cam.dim() == 2 and problem.embedding is not None:
        length = problem.values[0].shape[1]
        if cam.shape[1] != length:
            cam = F.interpolate(cam[:, None], length, mode="linear")[:, 0]
    return Attributions((cam,), at_point=False)


def _layers_with_signal(
    problem: Problem,
    chosen: str,
    shape: tuple[int, ...],
    image: torch.Tensor | None,
    relu: bool,
    token_grid: GridSpec,
    skip_tokens: int | None,
    limit: int = 6,
) -> list[str]:
    """Paths of modules whose output has ``shape`` (per row) and whose Grad-CAM map for the first
    sample is not all zero: one forward and backward with every such output's gradient kept."""
    outputs: list[tuple[str, nn.Module, torch.Tensor]] = []

    def keep(path: str) -> Any:
        def hook(m: nn.Module, _inp: Any, out: Any) -> None:
            t = first_tensor(out)
            if t is not None and tuple(t.shape[1:]) == shape and t.requires_grad:
                t.retain_grad()
                outputs.append((path, m, t))

        return hook

    named = [(p, m) for p, m in problem.model.named_modules() if p]
    rows = [v[:1].detach().requires_grad_(True) for v in problem.values]
    index = problem.index[:1]
    with torch.enable_grad():
        out = problem.run(
            rows,
            index,
            hooks=[functools.partial(m.register_forward_hook, keep(p)) for p, m in named],
            reset=outputs.clear,
        )
        score = problem.target.scores(out, index)
        if not score.requires_grad:
            return []
        score.sum().backward(inputs=[t for _, _, t in outputs] or rows)
    found: list[str] = []
    seen: set[str] = set()
    for path, m, t in outputs:
        if path == chosen or path in seen or t.grad is None:
            continue
        seen.add(path)
        cam = _cam(t.detach(), t.grad, m, image, 1, relu, token_grid, skip_tokens)
        if bool(cam.ne(0).any()):
            found.append(path)
    return found[-limit:]


def _cam(
    acts: torch.Tensor,
    grads: torch.Tensor,
    module: nn.Module,
    image: torch.Tensor | None,
    rows: int,
    relu: bool,
    token_grid: GridSpec,
    skip_tokens: int | None,
) -> torch.Tensor:
    if acts.dim() == 3 and not isinstance(module, nn.Conv1d):
        acts, grads = rows_first(acts, rows), rows_first(grads, rows)
        if image is not None:
            acts = tokens_to_grid(acts, skip_tokens=skip_tokens, grid=token_grid)
            grads = tokens_to_grid(grads, skip_tokens=skip_tokens, grid=token_grid)
        else:
            # one value per token: channel weights are the gradient's mean over tokens
            cam = (grads.mean(1, keepdim=True) * acts).sum(-1)
            return F.relu(cam) if relu else cam
    if acts.dim() < 3:
        raise ValueError(
            f"Grad-CAM needs a layer with spatial or token outputs; this one gives shape "
            f"{tuple(acts.shape)}. Pick a conv layer or a transformer block."
        )
    weights = grads.mean(dim=tuple(range(2, grads.dim())), keepdim=True)
    cam = (weights * acts).sum(1, keepdim=True)
    return F.relu(cam) if relu else cam
