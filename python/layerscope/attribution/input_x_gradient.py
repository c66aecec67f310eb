"""Input x gradient: the gradient scaled elementwise by the input."""

from __future__ import annotations

import torch

from .problem import Attributions, Problem


def attribute(problem: Problem) -> Attributions:
    """input * d(score)/d(input) per row (Captum's ``InputXGradient``).

    Peak memory: one forward+backward over a chunk of rows (``internal_batch_size``, or sized so
    autograd keeps about 256 MiB) plus the result (one input's size).

    >>> ls.attribute(model, x, target=3, method="input_x_gradient")   # doctest: +SKIP
    """
    result = [torch.empty_like(v) for v in problem.values]
    for sl in problem.chunks(problem.row_count, row_bytes=2 * problem.row_bytes()):
        rows = [v[sl] for v in problem.values]
        grads, _ = problem.gradients(rows, problem.index[sl])
        for r, x, g in zip(result, rows, grads, strict=True):
            r[sl] = x * g
    return Attributions(tuple(result))
