"""Compile the numba code the tests run into its on-disk caches, beside the linters (``make
warm``): pynndescent's (imported with umap-learn), layerscope's fused ``collect`` kernel and its
summary-pass kernels, all declared ``cache=True``. In a fresh checkout and venv they otherwise
compile inside the first tests that use them (~20 s, ~10 s and ~5 s of pytest on this machine)."""

from __future__ import annotations

import time

import torch
from torch import nn

import layerscope as ls
from layerscope.inspect import fused, histogram, summary_kernels

t0 = time.perf_counter()
import umap  # noqa: E402, F401  (pynndescent's kernels, compiled or loaded at import)

t1 = time.perf_counter()
fused.MIN_VALUES = 0  # the kernel for these few values too
torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 8), nn.Tanh()
)
x = torch.randn(64, 1, 8, 8)
ls.inspect.collect(model, x, progress=False)  # spatial and vector layers, bounded ones
x[0, 0, 0, 0] = float("nan")
ls.inspect.collect(model, x, progress=False)  # the careful pass (NaN/Inf)
t2 = time.perf_counter()
summary_kernels.MIN_VALUES = 0  # the kernels for a small tensor too
v = torch.randn(1000)
histogram.summarize(v)
v[3] = float("nan")
histogram.summarize(v)  # the careful kernels (NaN/Inf)
print(
    f"warm: umap {t1 - t0:.1f} s, fused collect {t2 - t1:.1f} s, "
    f"summary passes {time.perf_counter() - t2:.1f} s"
)
