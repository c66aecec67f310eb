"""Vanilla saliency: the gradient of the target score with respect to the input."""

from __future__ import annotations

import torch

from .problem import Attributions, Problem


def attribute(problem: Problem, *, abs: bool = True) -> Attributions:
    """d(score)/d(input) per row; ``abs=True`` (the default, as Captum's ``Saliency``) takes |.|.

    Peak memory: one forward+backward over a chunk of rows (``internal_batch_size``, or sized so
    autograd keeps about 256 MiB) plus the result (one input's size).

    >>> ls.attribute(model, x, target=3, method="gradient", abs=False)   # doctest: +SKIP
    """
    result = [torch.empty_like(v) for v in problem.values]
    for sl in problem.chunks(problem.row_count, row_bytes=2 * problem.row_bytes()):
        grads, _ = problem.gradients([v[sl] for v in problem.values], problem.index[sl])
        for r, g in zip(result, grads, strict=True):
            r[sl] = g.abs() if abs else g
    return Attributions(tuple(result))
