"""The model's class scores over a dataset -> per-sample prediction, its probability and loss.

``collect`` hands each batch's output and labels to ``Scores.add``. The class scores of
consecutive batches are gathered up to ``CHUNK_VALUES`` and turned into predictions at once: one
log-softmax gives the prediction, its probability and the cross-entropy loss, and its per-op
costs (dispatch, five host copies) are paid per chunk, not per batch (on a small model's batch
of 256 they were ~4 % of the pass). The first batch is taken at once, so that a wrong label or a
``loss_fn`` that does not give one loss per sample is reported before the pass goes on; a later
batch's error is raised at the latest at the end of its chunk, before ``collect`` returns.
Memory: at most ``CHUNK_VALUES`` float32 scores (plus their labels) besides the results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..numpy_view import numpy_view
from .capture import first_tensor

CHUNK_VALUES = 2**18


class Scores:
    """Labels, predictions, probabilities and per-sample losses of the batches seen so far.

    ``predict=False`` keeps the labels only. ``loss_fn(output, labels)`` gives per-sample losses
    (default: cross-entropy for class scores ``(N, C)`` and integer labels). What cannot be
    given (an output that is not class scores, labels that are not class indices) is said once
    in ``notes``."""

    def __init__(self, loss_fn: Any, predict: bool, notes: list[str]) -> None:
        self.loss_fn = loss_fn
        self.predict = predict
        self.notes = notes
        self.labels: list[np.ndarray] = []
        self.predictions: list[np.ndarray] = []
        self.probability: list[np.ndarray] = []
        self.loss: list[np.ndarray] = []
        self._outs: list[torch.Tensor] = []
        self._ys: list[torch.Tensor | None] = []
        self._values = 0
        self._batches = 0

    def add(self, output: Any, yb: torch.Tensor | None) -> None:
        """One batch: the model's ``output`` and its labels ``yb`` (None without labels)."""
        if yb is not None:
            self.labels.append(numpy_view(yb.cpu()).copy())  # the user may reuse the buffer
        self._batches += 1
        if not self.predict:
            return
        out = first_tensor(output)
        if out is None or out.dim() != 2 or not out.is_floating_point():
            if not any("no predictions" in n for n in self.notes):
                shape = None if out is None else tuple(out.shape)
                self.notes.append(
                    f"no predictions: the model output {shape} is not class scores (N, C)"
                )
            self.flush()  # the batches before keep their predictions; the rest have none
            return
        if self._outs and not _joins(self._outs[0], self._ys[0], out, yb):
            self.flush()
        # a copy: a model may hand back a buffer its next call writes again (CUDA graphs)
        self._outs.append(out.detach().to(torch.float32, copy=True))
        self._ys.append(yb)
        self._values += out.numel()
        if self._batches == 1 or self._values >= CHUNK_VALUES:
            self.flush()

    def flush(self) -> None:
        """Turn the gathered class scores into predictions, probabilities and losses."""
        if not self._outs:
            return
        outs, ys = self._outs, self._ys
        self._outs, self._ys, self._values = [], [], 0
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        # one log-softmax gives the prediction, its probability and the cross-entropy loss
        logp = torch.log_softmax(out, dim=1)
        top, pred = logp.max(dim=1)
        self.predictions.append(pred.cpu().numpy())
        self.probability.append(top.exp().cpu().numpy())
        labelled = [t for t in ys if t is not None]
        if len(labelled) < len(ys):
            return
        y = (labelled[0] if len(labelled) == 1 else torch.cat(labelled)).to(out.device)
        if self.loss_fn is not None:
            loss = self.loss_fn(out, y)
            if not isinstance(loss, torch.Tensor) or loss.shape[:1] != (out.shape[0],):
                raise ValueError(
                    "loss_fn(output, labels) must return one loss per sample (use "
                    f"reduction='none'), got {getattr(loss, 'shape', type(loss).__name__)}"
                )
            self.loss.append(loss.detach().float().reshape(out.shape[0], -1).mean(1).cpu().numpy())
        elif not y.is_floating_point() and y.dim() == 1:
            lo, hi = torch.aminmax(y)
            lo_i, hi_i = int(lo), int(hi)
            if lo_i < 0 or hi_i >= out.shape[1]:
                raise ValueError(
                    f"labels range over {lo_i}..{hi_i} but the model outputs "
                    f"{out.shape[1]} classes; pass class indices 0..{out.shape[1] - 1}"
                )
            self.loss.append(logp.gather(1, y[:, None]).neg_()[:, 0].cpu().numpy())
        elif not any("no per-sample loss" in n for n in self.notes):
            self.notes.append(
                f"no per-sample loss: labels of shape {tuple(y.shape)} and dtype "
                f"{str(y.dtype).replace('torch.', '')} are not class indices (N,); pass "
                "loss_fn=fn(output, labels) returning one loss per sample"
            )


def _joins(
    out0: torch.Tensor, y0: torch.Tensor | None, out: torch.Tensor, y: torch.Tensor | None
) -> bool:
    """Whether a batch's scores and labels can be concatenated to those of the chunk's first."""
    if out.shape[1:] != out0.shape[1:] or out.device != out0.device:
        return False
    if y is None or y0 is None:
        return y is None and y0 is None
    return y.shape[1:] == y0.shape[1:] and y.dtype == y0.dtype and y.device == y0.device
