"""SmoothGrad (Smilkov et al. 2017) and its squared and variance forms, around a base method.

Noise is drawn per sample draw from a seeded ``torch.Generator``, one draw at a time, so the
result does not depend on how draws are chunked, and never touches the global RNG.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from .problem import Attributions, Problem

VARIANTS = ("smoothgrad", "smoothgrad_sq", "vargrad")
DEFAULT_NOISE_LEVEL = 0.15  # paper's suggestion: 10-20% of the input's range
SAMPLE_CHUNK_BYTES = 64 * 2**20  # bound on the noisy copies held at once


def noise_stdevs(values: Sequence[torch.Tensor], stdevs: Any) -> list[torch.Tensor]:
    """Per-row noise std for each tensor: a number is absolute (as Captum's ``stdevs``); None is
    0.15 x (max - min) of each row, the paper's relative level.

    >>> noise_stdevs([torch.tensor([[0.0, 2.0]])], None)[0]
    tensor([[0.3000]])
    """
    specs = list(stdevs) if isinstance(stdevs, (tuple, list)) else [stdevs] * len(values)
    if len(specs) != len(values):
        raise ValueError(
            f"stdevs has {len(specs)} entries for {len(values)} inputs; give one each."
        )
    out = []
    for v, s in zip(values, specs, strict=True):
        shape = (v.shape[0],) + (1,) * (v.dim() - 1)
        if s is None:
            flat = v.detach().reshape(v.shape[0], -1)
            rng = flat.max(1).values - flat.min(1).values
            out.append((DEFAULT_NOISE_LEVEL * rng).view(shape))
        elif isinstance(s, (int, float)) and not isinstance(s, bool) and s >= 0:
            out.append(torch.full(shape, float(s), dtype=v.dtype, device=v.device))
        else:
            raise ValueError(f"stdevs must be a non-negative number or None; got {s!r}.")
    return out


def noise_draws(
    values: Sequence[torch.Tensor], stdevs: Sequence[torch.Tensor], n_samples: int, seed: int
) -> Iterator[list[torch.Tensor]]:
    """The noise for draw 0, 1, ..., ``n_samples - 1``: one tensor per input, like ``values``.

    Tests regenerate SmoothGrad's noise with this to feed the same draws to a reference.

    >>> next(noise_draws([torch.zeros(1, 2)], [torch.ones(1, 1)], 1, seed=0))[0].shape
    torch.Size([1, 2])
    """
    g = torch.Generator(device=values[0].device)
    g.manual_seed(seed)
    for _ in range(n_samples):
        yield [
            torch.randn(v.shape, generator=g, dtype=v.dtype, device=v.device) * s
            for v, s in zip(values, stdevs, strict=True)
        ]


def attribute(
    problem: Problem,
    *,
    base: Callable[..., Attributions],
    n_samples: int = 50,
    stdevs: Any = None,
    variant: str = "smoothgrad",
    seed: int | None = None,
    **base_options: Any,
) -> Attributions:
    """Average a base method over noisy copies of the input (Captum's ``NoiseTunnel``).

    ``variant``: "smoothgrad" (mean), "smoothgrad_sq" (mean of squares) or "vargrad" (variance,
    mean of squares minus squared mean). ``stdevs``: absolute noise std (a number, or one per
    input), or None for 0.15 x each sample's (max - min). ``seed`` fixes the noise (None: fresh).

    Peak memory: the noisy copies of a group of draws (at most 64 MiB, at least one draw), the base
    method's chunked forward+backward over them, and three input-sized accumulators.

    >>> ls.attribute(model, x, 3, method="smoothgrad", base="gradient", n_samples=25,
    ...              stdevs=0.1, variant="smoothgrad_sq", seed=0)   # doctest: +SKIP
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown SmoothGrad variant {variant!r}; use one of {list(VARIANTS)}.")
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int; got {n_samples!r}.")
    if seed is None:
        seed = random.SystemRandom().getrandbits(63)  # fresh noise without touching torch's RNG
    values, r = problem.values, problem.row_count
    stds = noise_stdevs(values, stdevs)
    per_draw = max(1, problem.row_bytes() * r)
    group = max(1, min(n_samples, SAMPLE_CHUNK_BYTES // per_draw))
    total: list[torch.Tensor] | None = None
    total_sq: list[torch.Tensor] | None = None
    at_point = True
    draws = noise_draws(values, stds, n_samples, seed)
    for start in range(0, n_samples, group):
        k = min(group, n_samples - start)
        noisy = [[] for _ in values]  # type: list[list[torch.Tensor]]
        for _ in range(k):
            for bucket, v, e in zip(noisy, values, next(draws), strict=True):
                bucket.append(v + e)
        rows = tuple(torch.cat(b) for b in noisy)
        # draw j of row i is row j * r + i: the base method sees k x r rows of the same samples
        sub = problem.with_rows(rows, problem.index.repeat(k))
        if problem.progress is not None:
            outer, done = problem.progress, start
            sub.progress = lambda f, outer=outer, done=done, k=k: outer((done + f * k) / n_samples)
        result = base(sub, **base_options)
        at_point = result.at_point
        parts = [a.reshape(k, r, *a.shape[1:]) for a in result.values]
        if total is None:
            total = [p.sum(0) for p in parts]
            total_sq = [(p * p).sum(0) for p in parts]
        else:
            assert total_sq is not None
            for t, t2, p in zip(total, total_sq, parts, strict=True):
                t += p.sum(0)
                t2 += (p * p).sum(0)
    assert total is not None and total_sq is not None
    mean = [t / n_samples for t in total]
    mean_sq = [t2 / n_samples for t2 in total_sq]
    if variant == "smoothgrad":
        out = mean
    elif variant == "smoothgrad_sq":
        out = mean_sq
    else:
        out = [m2 - m * m for m, m2 in zip(mean, mean_sq, strict=True)]
    return Attributions(tuple(out), at_point=at_point)
