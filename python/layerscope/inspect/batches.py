"""The batches of a dataset for one streaming pass: a tensor, a tuple of tensors, a ``DataLoader``
or any iterable of batches (inputs, or ``(inputs, labels)``), with the checks ``collect`` makes.

>>> for xb, yb, start in iter_batches(x, labels=y, batch_size=256):   # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


class DatasetError(ValueError):
    """The dataset cannot be streamed as given; the message says what to pass instead."""


def _as_tensor(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise DatasetError(
                f"{what} must hold numbers, got a numpy array of dtype {x.dtype}; pass class "
                "indices (and class_names= to a view for their names)"
            )
        return torch.from_numpy(x)
    raise DatasetError(
        f"{what} must be a torch.Tensor or numpy array, got {type(x).__name__}. "
        "Pass a tensor, a tuple (inputs, labels), a DataLoader, or an iterable of batches."
    )


def dataset_length(data: Any) -> int | None:
    """Number of samples when it is known before the pass (tensors, DataLoaders over a Dataset)."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return int(data.shape[0]) if data.ndim else None
    if isinstance(data, tuple) and data and isinstance(data[0], (torch.Tensor, np.ndarray)):
        return int(data[0].shape[0])
    dataset = getattr(data, "dataset", None)
    if dataset is not None and hasattr(dataset, "__len__"):
        return len(dataset)
    return None


def is_one_shot(data: Any) -> bool:
    """True for data that can be iterated only once: an iterator such as a generator (a
    DataLoader, a list or a tensor start over on each ``iter()``)."""
    return isinstance(data, Iterator)


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``inputs`` or ``(inputs, labels)`` (tuple, list, or dict with "x"/"input(s)" and "y"/"label(s)")."""
    if isinstance(batch, dict):
        x = next((batch[k] for k in ("x", "input", "inputs", "input_ids") if k in batch), None)
        y = next((batch[k] for k in ("y", "label", "labels", "target") if k in batch), None)
        if x is None:
            raise DatasetError(
                f"a dict batch needs an 'x', 'input(s)' or 'input_ids' key; got keys {sorted(batch)}"
            )
        return _as_tensor(x, "a batch's inputs"), None if y is None else _as_tensor(y, "labels")
    if isinstance(batch, (tuple, list)):
        if len(batch) == 0:
            raise DatasetError("a batch is an empty tuple; yield inputs or (inputs, labels)")
        x = _as_tensor(batch[0], "a batch's inputs")
        y = _as_tensor(batch[1], "a batch's labels") if len(batch) > 1 else None
        return x, y
    return _as_tensor(batch, "a batch"), None


def iter_batches(
    data: Any, *, labels: Any = None, batch_size: int = 256
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int]]:
    """Yield ``(inputs, labels or None, index of the batch's first sample)``.

    Checks what a pass needs: an integer ``batch_size`` >= 1, ``labels`` as long as the data,
    every batch with the same per-sample shape as the first and labels as long as its inputs.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DatasetError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(data, (torch.Tensor, np.ndarray)) or (
        isinstance(data, tuple) and data and isinstance(data[0], (torch.Tensor, np.ndarray))
    ):
        if isinstance(data, tuple):
            if labels is not None:
                raise DatasetError(
                    "labels were given twice: as labels= and as the second item of data; pass one"
                )
            x = _as_tensor(data[0], "data[0]")
            y = _as_tensor(data[1], "data[1] (labels)") if len(data) > 1 else None
        else:
            x, y = _as_tensor(data, "data"), None
        if y is None and labels is not None:
            if isinstance(labels, (list, tuple)):
                labels = np.asarray(labels)  # a list of class indices or names
            y = _as_tensor(labels, "labels")
        if x.dim() == 0:
            raise DatasetError("data is a 0-d tensor; pass samples along the first dimension")
        if y is not None and len(y) != len(x):
            raise DatasetError(
                f"labels have {len(y)} entries but the data has {len(x)} samples; pass one label "
                "per sample, in the same order"
            )
        for start in range(0, len(x), batch_size):
            yield (
                x[start : start + batch_size],
                None if y is None else y[start : start + batch_size],
                start,
            )
        return
    if labels is not None:
        raise DatasetError(
            "labels= goes with tensor data; a DataLoader or iterable yields (inputs, labels) itself"
        )
    if not hasattr(data, "__iter__"):
        raise DatasetError(
            f"data must be a tensor, a tuple (inputs, labels), a DataLoader or an iterable of "
            f"batches; got {type(data).__name__}"
        )
    if inspect.isgenerator(data) and inspect.getgeneratorstate(data) == inspect.GEN_CLOSED:
        raise DatasetError(
            "data is a generator that was read to its end already (a generator can be read only "
            "once); pass data that can be read again: a tensor, a tuple (inputs, labels), a "
            "DataLoader, or a list of batches"
        )
    start = 0
    first_shape: tuple[int, ...] | None = None
    for k, batch in enumerate(data):
        x, y = split_batch(batch)
        if x.dim() == 0:
            raise DatasetError(f"batch {k} is a 0-d tensor; batches hold samples along dim 0")
        shape = tuple(x.shape[1:])
        if first_shape is None:
            first_shape = shape
        elif shape != first_shape:
            raise DatasetError(
                f"batch {k} has samples of shape {shape}, but batch 0 had {first_shape}: every "
                "batch must hold samples of one shape (pad or resize them, e.g. in collate_fn)"
            )
        if y is not None and len(y) != len(x):
            raise DatasetError(
                f"batch {k} has {len(x)} inputs but {len(y)} labels; yield one label per sample"
            )
        yield x, y, start
        start += len(x)


def sample_input(data: Any, index: int) -> torch.Tensor | None:
    """Input ``index`` of an indexable dataset (tensors, a DataLoader over a map-style Dataset
    with a sequential sampler); None when it cannot be fetched without a second pass."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return _as_tensor(data, "data")[index]
    if isinstance(data, tuple) and data and isinstance(data[0], (torch.Tensor, np.ndarray)):
        return _as_tensor(data[0], "data[0]")[index]
    dataset = getattr(data, "dataset", None)
    sampler = getattr(data, "sampler", None)
    if (
        dataset is not None
        and hasattr(dataset, "__getitem__")
        and type(sampler).__name__ == "SequentialSampler"
    ):
        x, _ = split_batch(dataset[index])
        return x
    return None
