"""One dataset sample as the views show it: an image thumbnail (uint8), tokens as text, or a
feature strip; and a baked set of them within a byte budget for exported pages.

Shared by ``ProjectionView`` (hover) and ``UnitsView`` (top examples). Token text is text: the
front end puts it in with ``textContent``, never as HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..numpy_view import numpy_view
from ..wire.codec import encode_array

THUMB_MAX_SIDE = 96
MAX_FEATURES = 4096
Decode = Callable[[int], str] | Sequence[str] | None


def input_kind(shape: tuple[int, ...], dtype: str) -> str:
    """ "image" for (C, H, W) with C in 1..4 or (H, W) floats, "tokens" for 1-D integers,
    else "features"."""
    integer = not dtype.startswith(("float", "bfloat"))
    if integer and len(shape) == 1:
        return "tokens"
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[1] > 1 and shape[2] > 1:
        return "image"
    if len(shape) == 2 and not integer and shape[0] > 1 and shape[1] > 1:
        return "image"
    return "features"


def token_text(ids: Sequence[int], decode: Decode) -> list[str]:
    if decode is None:
        return [str(int(i)) for i in ids]
    if callable(decode):
        return [str(decode(int(i))) for i in ids]
    return [str(decode[int(i)]) if 0 <= int(i) < len(decode) else f"<{int(i)}>" for i in ids]


def image_u8(x: torch.Tensor, side: int = THUMB_MAX_SIDE) -> np.ndarray:
    """(h, w, c) uint8 of an image sample, min-max scaled, shrunk by striding to ``side``."""
    a = x.detach().float().cpu()
    if a.dim() == 2:
        a = a.unsqueeze(0)
    a = a[:3] if a.shape[0] >= 3 else a[:1]
    step = max(1, -(-max(a.shape[1], a.shape[2]) // side))
    a = a[:, ::step, ::step]
    finite = a[torch.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.numel() else (0.0, 1.0)
    scaled = ((a - lo) / (hi - lo if hi > lo else 1.0) * 255).nan_to_num(0).clamp(0, 255)
    return scaled.round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def sample_payload(x: torch.Tensor, decode: Decode = None) -> tuple[dict[str, Any], list[Any]]:
    """The reply describing one input: ``{"kind", ...}`` plus binary buffers."""
    kind = input_kind(tuple(x.shape), str(x.dtype).replace("torch.", ""))
    if kind == "tokens":
        return {"kind": "tokens", "tokens": token_text(x.tolist(), decode)}, []
    if kind == "image":
        img = image_u8(x)
        p = encode_array(img)
        return {
            "kind": "image",
            "shape": list(x.shape),
            "image": {k: v for k, v in p.items() if k != "buffer"},
        }, [p["buffer"]]
    flat = x.detach().float().flatten()
    total = flat.numel()
    p = encode_array(flat[:MAX_FEATURES].contiguous().numpy())
    return {
        "kind": "features",
        "total": total,
        "features": {k: v for k, v in p.items() if k != "buffer"},
    }, [p["buffer"]]


def bake_samples(
    get_many: Callable[[Sequence[int]], torch.Tensor | None],
    order: Sequence[int],
    budget: int,
    decode: Decode = None,
) -> dict[str, Any]:
    """Inputs of the samples in ``order`` (first first) until ``budget`` bytes are used:
    ``{"kind", "index": [...], "data": payload or "tokens": [[...]], "left_out": count}``.
    ``get_many(indices)`` returns those inputs stacked (None when they cannot be fetched)."""
    first = get_many([int(order[0])]) if len(order) else None
    if first is None:
        return {"kind": "none", "index": [], "left_out": len(order)}
    kind = input_kind(tuple(first.shape[1:]), str(first.dtype).replace("torch.", ""))
    if kind == "tokens":
        index: list[int] = []
        texts: list[list[str]] = []
        used = 0
        for i in order:
            x = get_many([int(i)])
            assert x is not None
            t = token_text(x[0].tolist(), decode)
            cost = sum(len(s) + 3 for s in t)
            if used + cost > budget:
                break
            used += cost
            texts.append(t)
            index.append(int(i))
        return {"kind": kind, "index": index, "tokens": texts, "left_out": len(order) - len(index)}
    row = image_u8(first[0]) if kind == "image" else _features16(first)[0]
    count = min(len(order), budget // max(1, row.nbytes))
    chosen = [int(i) for i in order[:count]]
    rows: np.ndarray
    if not chosen:
        rows = np.zeros((0, *row.shape), row.dtype)
    else:
        x = get_many(chosen)
        assert x is not None
        rows = np.stack([image_u8(t) for t in x]) if kind == "image" else _features16(x)
    return {
        "kind": kind,
        "index": chosen,
        "data": encode_array(rows),
        "left_out": len(order) - len(chosen),
    }


def _features16(x: torch.Tensor) -> np.ndarray:
    return numpy_view(x.detach().float().flatten(1)[:, :MAX_FEATURES].cpu()).astype(np.float16)
