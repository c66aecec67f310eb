"""What an epoch snapshot keeps of each parameter: ``Recorder(snapshot=...)``.

Statistics (min/max/mean/std/norm, NaN/Inf counts) and histograms on fixed bins are recorded for
every parameter at every epoch whatever the policy: they are small and need no host copy of the
tensor. The policy decides what else: the full tensor (``"full"``, bit-exact), its reduced image
(``"reduced"``: block means of its 2-D view, at most ``reduced_elements`` values: the overview
level the views draw), or nothing more (``"stats"``).

- ``snapshot="full"`` / ``"reduced"`` / ``"stats"``: that, every epoch, every parameter;
- ``snapshot=k`` (an int): full every k-th epoch (0, k, 2k, ...), reduced in between;
- ``snapshot=["fc", "features.0.weight"]``: full for those parameters (names or module paths),
  reduced for the rest;
- ``snapshot=SnapshotPolicy(resolution=..., every=..., between=..., params=...)``: any mix;
- ``snapshot="auto"`` (the default): ``"full"`` while the chosen parameters hold at most
  ``AUTO_FULL_BYTES`` (256 MB: 64M float32 values), else ``"reduced"`` every epoch with a full
  snapshot every 50th.

Why that default (measured with ``bench/recorder.py --transformer`` on a 134M-parameter
transformer, 537 MB float32, on a 2-core CPU; see BENCHMARKS.md): whatever the policy, ``epoch()``
spends ~0.5-0.7 s of CPU on the statistics and histogram passes over the weights (about half a
training step of that model at batch 2 x 64 tokens; ~0.4-0.7 s of wall time on two threads), so
calling it every N >= 30 steps keeps it within ~2 %; on a GPU those passes run on the device.
What the policy changes is the host copy and the disk: ``"full"`` writes 537 MB per epoch
(1.8 s of background writing here), ``"reduced"`` 9.2 MB (at most 256 KB per tensor). A 1B-parameter float32 model is 4 GB: ``"full"`` every epoch would
copy and write 4 GB per epoch; the default keeps ~150 weight tensors x 256 KB = ~40 MB per epoch
plus one full snapshot every 50 epochs, ~(4 GB / 50 + 40 MB) = ~120 MB per epoch on average on
disk; in memory the budget (512 MB by default) thins older epochs.

Under FSDP2 each rank writes its own shard, full or reduced (rows split on dim 0: each rank
reduces its rows with the whole parameter's blocks, and the reader stacks the images); nothing is
gathered. Where a shard's rows do not split into whole blocks, its last block row is shorter, so
the stacked image may have up to (ranks - 1) more rows than the unsharded parameter's.

Every epoch at which the policy kept less than the full tensor is listed in ``rec.thinned``
(action ``"policy_reduced"`` or ``"policy_stats"``) and shown under the timeline.

>>> Recorder(model, snapshot=10)                                  # doctest: +SKIP
>>> Recorder(model, snapshot=SnapshotPolicy("reduced", every=5))   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..numpy_view import numpy_view
from .thinning import reduced_shape

RESOLUTIONS = ("full", "reduced", "stats")
AUTO_FULL_BYTES = 256 * 2**20
AUTO_FULL_EVERY = 50


@dataclass(frozen=True)
class SnapshotPolicy:
    """At epoch ``e`` a chosen parameter is kept at ``resolution`` when ``e % every == 0``, else at
    ``between``; parameters not in ``params`` (None: all are chosen) are kept at ``between``."""

    resolution: str = "full"
    every: int = 1
    between: str = "reduced"
    params: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for field, value in (("resolution", self.resolution), ("between", self.between)):
            if value not in RESOLUTIONS:
                raise ValueError(
                    f"SnapshotPolicy {field} must be one of {RESOLUTIONS}, got {value!r}"
                )
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"SnapshotPolicy every must be an int >= 1, got {self.every!r}")

    def level(self, name: str, epoch: int) -> str:
        """ "full", "reduced" or "stats" for parameter ``name`` at ``epoch``."""
        chosen = self.params is None or any(
            name == p or name.startswith(p + ".") for p in self.params
        )
        if chosen and epoch % self.every == 0:
            return self.resolution
        return self.between

    def describe(self) -> str:
        parts = [
            f"{self.resolution} every {self.every} epoch(s)" if self.every > 1 else self.resolution
        ]
        if self.every > 1 or self.params is not None:
            parts.append(f"{self.between} otherwise")
        if self.params is not None:
            parts.append(f"for {list(self.params)}")
        return ", ".join(parts)


def parse_snapshot(spec: object, param_bytes: int, names: Sequence[str] = ()) -> SnapshotPolicy:
    """The ``SnapshotPolicy`` for ``Recorder(snapshot=spec)`` (see module docstring).

    >>> parse_snapshot(10, 0)
    SnapshotPolicy(resolution='full', every=10, between='reduced', params=None)
    """
    if isinstance(spec, SnapshotPolicy):
        policy = spec
    elif spec is None or spec == "auto":
        if param_bytes <= AUTO_FULL_BYTES:
            return SnapshotPolicy("full")
        return SnapshotPolicy("full", every=AUTO_FULL_EVERY, between="reduced")
    elif isinstance(spec, str):
        if spec not in RESOLUTIONS:
            raise ValueError(
                f"snapshot={spec!r}: pass 'auto', 'full', 'reduced', 'stats', an int k (full every "
                "k epochs), a list of parameter names, or a SnapshotPolicy"
            )
        return SnapshotPolicy(spec, between=spec)
    elif isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise ValueError(f"snapshot={spec}: an int means full every k epochs, k >= 1")
        return SnapshotPolicy("full", every=spec)
    elif isinstance(spec, (list, tuple)) and all(isinstance(s, str) for s in spec):
        policy = SnapshotPolicy("full", params=tuple(spec))
    else:
        raise TypeError(
            f"snapshot= takes 'auto', 'full', 'reduced', 'stats', an int, a list of parameter "
            f"names or a SnapshotPolicy; got {type(spec).__name__}"
        )
    if policy.params is not None and names:
        for p in policy.params:
            if not any(n == p or n.startswith(p + ".") for n in names):
                raise KeyError(
                    f"snapshot: {p!r} is neither a parameter name nor a module path with "
                    f"parameters; e.g. {list(names)[:5]}"
                )
    return policy


def reduce_tensor(
    t: torch.Tensor, max_elements: int, factors: tuple[int, int] | None = None
) -> np.ndarray:
    """Block means of the 2-D view ``[shape[0], rest]`` of ``t``, at most ``max_elements`` values,
    computed where ``t`` lives (one small copy to the host): ``thinning.reduce_array`` for a tensor.
    ``factors``: the block size ``(rows, cols)`` to use instead (a shard of a parameter is reduced
    with its whole parameter's blocks, so the shards' images stack into the parameter's).

    >>> reduce_tensor(torch.arange(8.0).reshape(2, 4), 4)
    array([[0.5, 2.5],
           [4.5, 6.5]], dtype=float32)
    """
    shape = tuple(t.shape) if t.dim() else (1,)
    rows = int(shape[0])
    cols = int(math.prod(shape[1:])) if len(shape) > 1 else 1
    m = t.detach().reshape(rows, cols)
    if m.dtype != torch.float32:
        m = m.float()
    fy, fx = factors if factors is not None else reduced_shape(shape, max_elements)
    if fy == fx == 1:
        return numpy_view(m.cpu()).copy()
    if rows == 0:  # an empty shard (FSDP2 pads uneven splits on the last ranks)
        return np.zeros((0, math.ceil(cols / fx)), np.float32)
    ry, rx = math.ceil(rows / fy), math.ceil(cols / fx)
    if ry * fy != rows or rx * fx != cols:  # pad the ragged last blocks with zeros...
        m = torch.nn.functional.pad(m, (0, rx * fx - cols, 0, ry * fy - rows))
    # ...summed in two passes along memory order (rows of blocks, then columns of blocks)...
    sums = m.reshape(ry, fy, rx * fx).sum(dim=1).reshape(ry, rx, fx).sum(dim=2)
    # ...and divided by the number of real values in each block (fewer in the ragged ones).
    ny = torch.full((ry,), float(fy), device=m.device)
    ny[-1] = rows - (ry - 1) * fy
    nx = torch.full((rx,), float(fx), device=m.device)
    nx[-1] = cols - (rx - 1) * fx
    return (sums / torch.outer(ny, nx)).cpu().numpy()
