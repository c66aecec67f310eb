"""Bound memory by running forward+backward on chunks of rows.

A "row" is one model input: one sample at one IG step or one noise draw. With
``internal_batch_size=None`` the chunk size is picked from a memory budget: the first chunk is a
single row run under ``saved_tensors_hooks`` that sums the bytes autograd keeps for the backward
pass (the bulk of the peak), and the rest are sized so one chunk keeps about ``budget`` bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

DEFAULT_BUDGET = 256 * 2**20  # bytes of saved activations per chunk when sizing automatically
# First-chunk guess: autograd keeps at most this many times a row's input bytes. A guess too low
# only costs one small extra chunk; too high overshoots the budget on the first chunk alone.
FIRST_GUESS_RATIO = 256


class SavedBytes:
    """Context that counts the bytes of tensors autograd saves for backward, parameters excluded."""

    def __init__(self, exclude: set[int] | None = None) -> None:
        self.bytes = 0
        self._exclude = exclude or set()
        self._seen: set[int] = set()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # no plain storage (nested, sparse)
            key, size = id(t), t.numel() * t.element_size()
        # the same storage saved twice (views, or one tensor used by two ops) costs once
        if key not in self._exclude and key not in self._seen:
            self._seen.add(key)
            self.bytes += size
        return t

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def __enter__(self) -> SavedBytes:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)


def chunks(
    total: int,
    rows: int | None,
    *,
    row_bytes: int = 0,
    budget: int = DEFAULT_BUDGET,
    exclude: set[int] | None = None,
) -> Iterator[slice]:
    """Slices covering ``range(total)``, each at most ``rows`` long.

    With ``rows=None`` the first slice is a guess (``budget / (256 x row_bytes)`` rows), measured
    (the caller's work for it runs inside the measuring context, between this generator's yield
    and resume), and the rest are sized to the budget. ``row_bytes`` is what the caller holds per
    row besides the saved tensors (inputs, gradients).

    >>> [s.stop for s in chunks(5, 2)]
    [2, 4, 5]
    """
    if total <= 0:
        return
    start = 0
    if rows is None:
        first = min(total, max(1, budget // (FIRST_GUESS_RATIO * max(row_bytes, 1))))
        with SavedBytes(exclude) as counter:
            yield slice(0, first)
        per_row = max(1, counter.bytes // first + row_bytes)
        rows = max(1, budget // per_row)
        start = first
    if rows < 1:
        raise ValueError(f"internal_batch_size must be a positive int or None; got {rows}.")
    while start < total:
        stop = min(total, start + rows)
        yield slice(start, stop)
        start = stop


def parameter_storages(module: torch.nn.Module) -> set[int]:
    """Storage pointers of a module's parameters and buffers: saved weights are not per-row cost."""
    ptrs = set()
    for t in [*module.parameters(), *module.buffers()]:
        if t.device.type != "meta":
            ptrs.add(t.untyped_storage().data_ptr())
    return ptrs
