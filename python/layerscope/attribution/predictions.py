"""The model's top-k predictions, for a view that lets the user pick what to explain."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from ..inspect.errors import model_errors
from ..inspect.modules import check_module
from ..inspect.restore import preserved
from .problem import as_input_tuple
from .targets import OutputSelector, select_output


class TopK(NamedTuple):
    """``probs`` (N, k) softmax probabilities, highest first, and their class ``indices`` (N, k)."""

    probs: torch.Tensor
    indices: torch.Tensor


def predict_topk(
    model: nn.Module,
    inputs: Any,
    k: int = 5,
    *,
    output: OutputSelector = None,
    forward_kwargs: dict[str, Any] | None = None,
    logits: bool = True,
) -> TopK:
    """The k most probable classes per sample and their probabilities.

    ``logits=True`` applies a softmax over the class dim; pass False when the model already
    outputs probabilities. Runs in eval mode without gradients; the model is given back as it was.
    Peak memory: one no-grad forward.

    >>> probs, classes = predict_topk(model, x, k=3)   # doctest: +SKIP
    """
    check_module(model)
    args = as_input_tuple(inputs)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}.")
    with preserved(model), torch.no_grad(), model_errors(model, "prediction", args, forward_kwargs):
        model.eval()
        out = select_output(model(*args, **(forward_kwargs or {})), output)
    if out.dim() != 2:
        raise ValueError(
            f"top-k needs an (N, classes) output; got shape {tuple(out.shape)} (pick one with output=)."
        )
    probs = out.float().softmax(-1) if logits else out.float()
    top = probs.topk(min(k, probs.shape[1]), dim=1)
    return TopK(top.values, top.indices)
