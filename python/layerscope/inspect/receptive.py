"""Receptive fields of a layer's positions in input coordinates, found by the gradient.

The input region that can change ``output[:, :, *pos]`` is where that output's gradient with
respect to the input is non-zero. A ReLU or max-pool zeroes some of it for one input, so the
gradient is taken on several random inputs (in eval mode, no grads left on the model) and the
bounding box of their union is the field. Works for any architecture (padding, strides, pooling,
dilations), at the cost of one backward pass per position asked for (cached by the caller).

>>> box = receptive_field(model, "features.2", (1, 8, 8), (3, 4))     # doctest: +SKIP
>>> box                                  # ((row_start, row_stop), (col_start, col_stop))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .capture import first_tensor
from .modules import find_module
from .restore import preserved

PROBES = 4


def receptive_field(
    model: nn.Module,
    layer: str,
    input_shape: Sequence[int],
    position: Sequence[int],
    *,
    seed: int = 0,
) -> tuple[tuple[int, int], ...]:
    """Half-open ``(start, stop)`` per spatial dim of the input that output ``position`` of
    ``layer`` sees; the whole input along a dim the gradient reaches everywhere."""
    module = find_module(model, layer)
    spatial = len(input_shape) - 1
    if spatial < 1:
        raise ValueError(f"an input of shape {tuple(input_shape)} has no spatial dims")
    p0 = next(model.parameters(), None)
    device = p0.device if p0 is not None else torch.device("cpu")
    dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(PROBES, *input_shape, generator=g).to(device=device, dtype=dtype)
    x.requires_grad_(True)
    out: list[torch.Tensor] = []
    with preserved(model):
        model.eval()
        handle = module.register_forward_hook(lambda _m, _i, o: out.append(first_tensor(o)))  # type: ignore[arg-type]
        try:
            with torch.enable_grad():
                model(x)
                if not out or out[0] is None:
                    raise RuntimeError(f"layer {layer!r} did not run in the forward pass")
                o = out[0]
                if o.dim() - 2 != len(position):
                    raise ValueError(
                        f"position {tuple(position)} does not index the spatial dims of "
                        f"{layer!r}'s output {tuple(o.shape)}"
                    )
                index: tuple[Any, ...] = (slice(None), slice(None), *(int(p) for p in position))
                (grad,) = torch.autograd.grad(o[index].sum(), x)
        finally:
            handle.remove()
    mask = grad.detach().abs().sum(dim=(0, 1)) > 0  # spatial dims of the input
    box = []
    for d in range(spatial):
        other = tuple(k for k in range(spatial) if k != d)
        hit = mask.any(dim=other) if other else mask
        idx = torch.nonzero(hit).flatten()
        if idx.numel() == 0:
            box.append((0, int(input_shape[1 + d])))
        else:
            box.append((int(idx.min()), int(idx.max()) + 1))
    return tuple(box)


class FieldMap:
    """Receptive fields of every position of a layer from three gradient passes (2-D outputs):
    the field of a central position and of its neighbours along each dim give the stride, and
    every other field is that one shifted and clipped to the input. Exact for convolution and
    pooling stacks (translation-equivariant); a layer that sees the whole input (stride 0)
    maps every position to the whole input.

    >>> fields = FieldMap(model, "features.2", (1, 8, 8), (8, 8))   # doctest: +SKIP
    >>> fields(3, 4)                                                 # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        input_shape: Sequence[int],
        output_hw: Sequence[int],
    ) -> None:
        self.input_hw = tuple(int(s) for s in input_shape[1:])
        self.centre = tuple(max(0, (int(n) - 1) // 2) for n in output_hw)
        self.box = receptive_field(model, layer, input_shape, self.centre)
        self.stride = []
        for d, n in enumerate(output_hw):
            if int(n) < 2:
                self.stride.append(0)
                continue
            pos = list(self.centre)
            pos[d] += 1
            other = receptive_field(model, layer, input_shape, pos)
            # the far edge moves by the stride unless it is clipped by the input's border
            moved = other[d][0] - self.box[d][0]
            self.stride.append(moved if moved else other[d][1] - self.box[d][1])

    def __call__(self, *position: int) -> tuple[tuple[int, int], ...]:
        out = []
        for d, p in enumerate(position):
            shift = (int(p) - self.centre[d]) * self.stride[d]
            a, b = self.box[d]
            out.append((max(0, a + shift), min(self.input_hw[d], b + shift)))
        return tuple(out)
