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

Why that default: a 1B-parameter float32 model is 4 GB. A full snapshot every epoch copies 4 GB to
the host and writes 4 GB to disk per epoch (measured here: ~2.5 s/GB for the host copy plus the
write on this CPU, see BENCHMARKS.md), which for an LLM's "epoch" of a few hundred steps is far
above a few percent. ``"reduced"`` copies at most 256 KB per tensor: ~290 tensors (a 1B
Llama-style model) x 256 KB = ~75 MB per epoch on disk and in host memory, and its cost is the
statistics' and histogram's passes over the weights on their device (measured: ~3 % of one
training step's compute on the 100M transformer of ``bench/recorder.py``). The full snapshot every
50th epoch bounds the disk to ~(4 GB / 50 + 75 MB) = ~155 MB per epoch on average.

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


def reduce_tensor(t: torch.Tensor, max_elements: int) -> np.ndarray:
    """Block means of the 2-D view ``[shape[0], rest]`` of ``t``, at most ``max_elements`` values,
    computed where ``t`` lives (one small copy to the host): ``thinning.reduce_array`` for a tensor.

    >>> reduce_tensor(torch.arange(8.0).reshape(2, 4), 4)
    array([[0.5, 2.5],
           [4.5, 6.5]], dtype=float32)
    """
    from .thinning import reduced_shape

    shape = tuple(t.shape) if t.dim() else (1,)
    rows = int(shape[0])
    cols = int(math.prod(shape[1:])) if len(shape) > 1 else 1
    m = t.detach().reshape(rows, cols).float()
    fy, fx = reduced_shape(shape, max_elements)
    if fy == fx == 1:
        return m.cpu().numpy().copy()
    ry, rx = math.ceil(rows / fy), math.ceil(cols / fx)
    padded = torch.zeros((ry * fy, rx * fx), dtype=torch.float32, device=m.device)
    padded[:rows, :cols] = m
    weight = torch.zeros_like(padded)
    weight[:rows, :cols] = 1.0
    sums = padded.reshape(ry, fy, rx, fx).sum(dim=(1, 3))
    n = weight.reshape(ry, fy, rx, fx).sum(dim=(1, 3))
    return (sums / n).cpu().numpy()
