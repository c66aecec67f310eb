"""How many torch threads the passes over a model run with (``model_threads``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

# A model of at most this many parameter values runs its passes (trace, capture) on one torch
# thread: its ops are small, and on a busy machine torch's OpenMP workers spin and wait for each
# other around every op (a 48-block transformer of width 64, 2.4M values: trace 6.1 s on two
# threads under load against 0.76 s on one; a plain forward 0.94 s against 0.16 s). Bigger
# models keep the user's setting, where the threads share real work.
ONE_THREAD_PARAMS = 1 << 24


@contextlib.contextmanager
def model_threads(model: nn.Module) -> Iterator[None]:
    """One torch thread while ``model`` is small (``ONE_THREAD_PARAMS``), else the user's
    setting; the setting is restored after.

    >>> with model_threads(model):        # doctest: +SKIP
    ...     graph = trace(model, x)
    """
    before = torch.get_num_threads()
    if before == 1 or sum(p.numel() for p in model.parameters()) > ONE_THREAD_PARAMS:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
