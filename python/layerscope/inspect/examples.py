"""Dataset examples of one unit beyond its top-k: quantile groups of its per-sample values, and
the weights that feed it.

>>> groups = quantile_groups(values, index)            # doctest: +SKIP
>>> path, w = incoming_weights(model, "features.1", 64) # the conv before the ReLU  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .modules import find_module


def quantile_groups(
    values: np.ndarray, index: np.ndarray, groups: int = 10, per_group: int = 5
) -> list[dict[str, Any]]:
    """Split samples into ``groups`` by deciles of ``values`` (finite only, lowest first) and pick
    ``per_group`` evenly spaced samples of each: ``[{"lo", "hi", "count", "index", "values"}]``."""
    v = np.asarray(values, np.float64)
    ok = np.isfinite(v)
    v, idx = v[ok], np.asarray(index)[ok]
    if v.size == 0:
        return []
    order = np.argsort(v, kind="stable")
    v, idx = v[order], idx[order]
    bounds = np.linspace(0, len(v), groups + 1).round().astype(int)
    out = []
    for g in range(groups):
        a, b = bounds[g], bounds[g + 1]
        if b <= a:
            continue
        pick = np.unique(np.linspace(a, b - 1, min(per_group, b - a)).round().astype(int))
        out.append(
            {
                "lo": float(v[a]),
                "hi": float(v[b - 1]),
                "count": int(b - a),
                "index": [int(i) for i in idx[pick]],
                "values": [float(x) for x in v[pick]],
            }
        )
    return out


def incoming_weights(model: nn.Module, layer: str, units: int) -> tuple[str, torch.Tensor] | None:
    """``(parameter path, weight of shape (units, ...))`` that writes the layer's units: the
    layer's own ``weight`` when its first dim is ``units``, else that of the closest preceding
    sibling in the parent container (a conv before its ReLU); None when there is none."""
    module = find_module(model, layer)
    w = getattr(module, "weight", None)
    if isinstance(w, torch.Tensor) and w.dim() >= 2 and w.shape[0] == units:
        return f"{layer}.weight" if layer else "weight", w.detach()
    if not layer:
        return None
    parent_path, _, name = layer.rpartition(".")
    parent = find_module(model, parent_path)
    names = [n for n, _ in parent.named_children()]
    if name not in names:
        return None
    for prev in reversed(names[: names.index(name)]):
        m = getattr(parent, prev)
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() >= 2:
            if w.shape[0] != units:
                return None
            path = f"{parent_path}.{prev}" if parent_path else prev
            return f"{path}.weight", w.detach()
        if any(p.dim() >= 2 for p in m.parameters(recurse=True)):
            return None  # a module with other weights in between (norms' 1-D ones are skipped)
    return None
