"""scikit-learn's bundled ``load_digits`` as tensors, a small digits CNN, and a training loop.

Shared by the tests (``tests/digits.py`` re-exports it), ``bench/recorder.py`` and
``notebooks/training.ipynb``. No download: the 1,797 8x8 images ship with scikit-learn.

>>> x_train, y_train, x_test, y_test = load()
>>> model = DigitsCNN()
>>> accs = train(model, epochs=2)        # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def load(test_fraction: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)``: images as float32 ``[N, 1, 8, 8]`` in [0, 1].

    >>> x_train, y_train, x_test, y_test = load()
    >>> tuple(x_train.shape[1:])
    (1, 8, 8)
    """
    images, target = _digits()
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    n_test = int(len(x) * test_fraction)
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """``load_digits()``'s images and targets, through a copy in the temporary directory:
    importing scikit-learn costs ~2 s, paid once per version instead of in every process (each
    rank of a ``torchrun`` job, each notebook kernel of the tests)."""
    from importlib.metadata import version

    cache = Path(tempfile.gettempdir()) / f"layerscope-digits-sklearn-{version('scikit-learn')}.npz"
    try:
        with np.load(cache) as f:
            return f["images"], f["target"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # not there, or damaged
        pass
    from sklearn.datasets import load_digits

    digits = load_digits()
    # written whole under a name of its own, then renamed: a process reading it at the same
    # time sees the old state or the whole file
    tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    np.savez(tmp, images=digits.images, target=digits.target)
    os.replace(tmp, cache)
    return digits.images, digits.target


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions on the 8x8 image, a max-pool, and two linear layers (~150k parameters).

    >>> DigitsCNN()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * 16, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct predictions, computed in eval mode without grads (mode restored)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    model.train(was_training)
    return acc


class Training:
    """A training run that advances one epoch per call: Adam, cross-entropy, shuffled batches.

    Benchmarks interleave several runs epoch by epoch, so that a busy machine slows all alike.

    >>> run = Training(DigitsCNN(), load())
    >>> acc = run.epoch()                      # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        data: tuple[torch.Tensor, ...],
        *,
        batch_size: int = 32,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.data = data
        self.batch_size = batch_size
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)
        self.loss_fn = nn.CrossEntropyLoss()
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self, recorder: Any = None) -> float:
        """Train one epoch (calling ``recorder.step``/``recorder.epoch``); return the test accuracy."""
        x_train, y_train, x_test, y_test = self.data
        model, opt = self.model, self.opt
        model.train()
        order = torch.randperm(len(x_train), generator=self.gen)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            loss = self.loss_fn(model(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recorder is not None:
                recorder.step(loss=loss)
            opt.step()
        acc = accuracy(model, x_test, y_test)
        if recorder is not None:
            recorder.epoch(val_acc=acc)
        return acc


def train(
    model: nn.Module,
    epochs: int,
    recorder: Any = None,
    *,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    data: tuple[torch.Tensor, ...] | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> list[float]:
    """Train ``model`` with Adam for ``epochs``; return the test accuracy after each epoch.

    With a ``recorder`` (an ``ls.Recorder``), calls ``recorder.step(loss=...)`` after each
    backward and ``recorder.epoch(val_acc=...)`` at each epoch's end: the loop of the issue.

    >>> rec = ls.Recorder(model, probe=load()[2][:16])       # doctest: +SKIP
    >>> train(model, epochs=3, recorder=rec)                  # doctest: +SKIP
    """
    run = Training(
        model, data if data is not None else load(), batch_size=batch_size, lr=lr, seed=seed
    )
    accs = []
    for e in range(epochs):
        accs.append(run.epoch(recorder))
        if on_epoch is not None:
            on_epoch(e)
    return accs
