"""Token outputs (vision transformers) back onto the image's patch grid."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

GridSpec = tuple[int, int] | Callable[[torch.Tensor], torch.Tensor] | None


def rows_first(t: torch.Tensor, rows: int) -> torch.Tensor:
    """(T, R, D) sequence-first outputs (``batch_first=False``) as (R, T, D)."""
    if t.dim() == 3 and t.shape[0] != rows and t.shape[1] == rows:
        return t.transpose(0, 1)
    return t


def _square(n: int) -> int | None:
    s = math.isqrt(n) if n > 0 else 0
    return s if s * s == n and s > 0 else None


def tokens_to_grid(
    tokens: torch.Tensor, *, skip_tokens: int | None = None, grid: GridSpec = None
) -> torch.Tensor:
    """(R, T, D) tokens as an (R, D, h, w) map.

    ``skip_tokens``: leading tokens that are not patches (CLS, registers); None drops none when T
    is a square and one (a CLS token) when T - 1 is. ``grid``: (h, w), None for a square grid, or a
    callable taking the (R, T, D) tokens and returning (R, D, h, w) for any other layout.

    >>> tokens_to_grid(torch.zeros(2, 17, 8)).shape   # CLS + 4 x 4 patches
    torch.Size([2, 8, 4, 4])
    """
    if callable(grid):
        out = grid(tokens)
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise ValueError("a token_grid callable must return an (R, D, h, w) tensor.")
        return out
    r, t, d = tokens.shape
    if skip_tokens is None:
        if _square(t) is not None and grid is None:
            skip_tokens = 0
        elif grid is not None and grid[0] * grid[1] in (t, t - 1):
            skip_tokens = t - grid[0] * grid[1]
        elif _square(t - 1) is not None:
            skip_tokens = 1
        else:
            raise ValueError(
                f"cannot place {t} tokens on a square patch grid (nor {t - 1} after a CLS token); "
                "pass token_grid=(h, w) and skip_tokens=k (leading non-patch tokens), or "
                "token_grid=callable(tokens (R, T, D)) -> (R, D, h, w)."
            )
    patches = t - skip_tokens
    if grid is None:
        side = _square(patches)
        if side is None:
            raise ValueError(
                f"{patches} patch tokens (after skipping {skip_tokens}) are not a square grid; pass "
                "token_grid=(h, w)."
            )
        grid = (side, side)
    h, w = grid
    if h * w != patches:
        raise ValueError(
            f"token_grid={grid} holds {h * w} patches but the layer gives {patches} patch tokens "
            f"({t} tokens, skip_tokens={skip_tokens})."
        )
    return tokens[:, skip_tokens:, :].transpose(1, 2).reshape(r, d, h, w)
