"""Which number is explained: pick the model output (``output=``), then the target in it.

A model may return a tensor, a dict (Hugging Face ``ModelOutput`` is one), a tuple, or a
dataclass. ``select_output`` turns that into one tensor with the batch first; ``Target`` turns the
user's ``target`` (class index, tuple index, one per sample, callable, or None = predicted class)
into one score per row, which is what every method differentiates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

OutputSelector = str | int | Callable[[Any], torch.Tensor] | None
TargetSpec = (
    int | tuple | Sequence[Any] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None
)


def _describe(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def select_output(raw: Any, output: OutputSelector = None) -> torch.Tensor:
    """The tensor to explain out of what the model returned.

    ``output`` is a key (dict / ``ModelOutput`` / dataclass field), an index (tuple / list) or a
    callable on the raw output; None works only when the model returns a tensor.

    >>> select_output({"logits": torch.zeros(2, 3)}, "logits").shape
    torch.Size([2, 3])
    """
    if callable(output):
        value = output(raw)
    elif isinstance(raw, torch.Tensor) and output is None:
        value = raw
    elif isinstance(raw, Mapping):
        keys = list(raw.keys())
        if output is None:
            raise ValueError(
                f"the model returned a {type(raw).__name__} with keys {keys}; say which one to "
                f"explain with output={keys[0]!r} (a key) or output=callable(raw_output) -> tensor."
            )
        if output not in raw:
            raise ValueError(f"output={output!r} is not a key of the model output; keys: {keys}.")
        value = raw[output]
    elif hasattr(raw, "__dataclass_fields__"):
        fields = list(raw.__dataclass_fields__)
        if output is None or not isinstance(output, str) or output not in fields:
            raise ValueError(
                f"the model returned a {type(raw).__name__} with fields {fields}; say which one to "
                f"explain with output={fields[0]!r} or output=callable(raw_output) -> tensor."
            )
        value = getattr(raw, output)
    elif isinstance(raw, (tuple, list)):
        if output is None:
            kinds = [type(v).__name__ for v in raw]
            raise ValueError(
                f"the model returned a {type(raw).__name__} of {len(raw)} items ({kinds}); say which "
                "one to explain with output=0 (an index) or output=callable(raw_output) -> tensor."
            )
        if not isinstance(output, int) or not -len(raw) <= output < len(raw):
            raise ValueError(
                f"output={output!r} does not index the model's {type(raw).__name__} of {len(raw)} "
                f"items; pass an int in 0..{len(raw) - 1}."
            )
        value = raw[output]
    else:
        raise ValueError(
            f"output={output!r} cannot select from a model output of type {_describe(raw)}; "
            "pass output=callable(raw_output) -> tensor."
        )
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"the selected model output is a {_describe(value)}, not a tensor; pass output= to pick "
            "a tensor with the batch dimension first."
        )
    return value


@dataclass(frozen=True)
class Target:
    """A resolved target: per-sample indices into the output, or a callable, or the output itself.

    ``indices`` has shape (N, k): one index tuple per sample into output dims 1..k (k = 1 for
    class logits). ``fn`` maps the output of a batch of rows to one score per row.
    """

    indices: torch.Tensor | None = None
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def scores(self, out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """One score per row; ``index`` maps each row of ``out`` to its sample."""
        if self.fn is not None:
            s = self.fn(out)
            if not isinstance(s, torch.Tensor) or s.shape != (out.shape[0],):
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(
                    f"a callable target must return one score per row, shape ({out.shape[0]},); "
                    f"got {got}. Example: target=lambda out: out[:, 3] - out[:, 5]."
                )
            return s
        if self.indices is None:
            return out.reshape(out.shape[0])
        check_indices(self.indices, out.shape)
        idx = self.indices.to(out.device).index_select(0, index.to(out.device))
        rows = torch.arange(out.shape[0], device=out.device)
        return out[(rows, *idx.unbind(1))]


def _index_tuple(t: Any) -> tuple[int, ...]:
    if isinstance(t, torch.Tensor):
        t = t.tolist()
    if isinstance(t, bool) or not isinstance(t, (int, tuple, list)):
        raise TypeError(
            f"a target is a class index (int), a tuple of indices into a multi-dim output, a list "
            f"with one per sample, a callable on the output, or None for the predicted class; got "
            f"{_describe(t)}."
        )
    return (t,) if isinstance(t, int) else tuple(int(v) for v in t)


def check_indices(indices: torch.Tensor, out_shape: torch.Size) -> None:
    """Raise a ValueError that states the valid range when an index does not fit the output."""
    dims = tuple(out_shape[1:])
    if indices.shape[1] != len(dims):
        raise ValueError(
            f"the target has {indices.shape[1]} index(es) per sample but the output has shape "
            f"{tuple(out_shape)} ({len(dims)} dims after the batch); pass "
            + (
                "a class index."
                if len(dims) == 1
                else f"a tuple of {len(dims)} indices or a callable target."
            )
        )
    for d, size in enumerate(dims):
        col = indices[:, d]
        bad = (col < 0) | (col >= size)
        if bool(bad.any()):
            sample = int(bad.nonzero()[0, 0])
            what = "classes" if len(dims) == 1 else f"entries in output dim {d + 1}"
            raise ValueError(
                f"target {int(col[sample])} (sample {sample}) is out of range for an output with "
                f"{size} {what}: valid indices are 0..{size - 1}."
            )


def resolve_target(target: TargetSpec, out: torch.Tensor | None, n: int) -> Target:
    """Turn ``target`` into a ``Target`` for ``n`` samples; None needs the output ``out`` (N, ...).

    An int is a class index; a tuple is one index into a multi-dim output (Captum's convention); a
    list or 1-D tensor has one entry per sample; a callable maps the output to one score per row.
    Ranges are checked against the output when scores are taken.

    >>> resolve_target(None, torch.tensor([[0.1, 0.9]]), 1).indices
    tensor([[1]])
    """
    if callable(target) and not isinstance(target, torch.Tensor):
        return Target(fn=target)
    if target is None:
        if out is None:
            raise RuntimeError("target=None needs the model output to find the predicted class")
        if out.dim() == 0 or out.shape[0] != n:
            raise ValueError(
                f"the selected model output has shape {tuple(out.shape)}, but the batch has {n} "
                "samples; the output must have the batch dimension first (pick another with output=)."
            )
        if out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1):
            return Target()  # one score per sample: explain it
        if out.dim() == 2:
            return Target(indices=out.detach().argmax(dim=1, keepdim=True).cpu())
        raise ValueError(
            f"target=None picks the predicted class of an (N, classes) output, but the output has "
            f"shape {tuple(out.shape)}; pass a tuple of indices or a callable target."
        )
    if isinstance(target, torch.Tensor) and target.dim() == 0:
        target = int(target)
    if isinstance(target, (list, torch.Tensor)):
        items = list(target.tolist() if isinstance(target, torch.Tensor) else target)
        if len(items) != n:
            raise ValueError(
                f"a per-sample target needs one entry per sample: got {len(items)} for {n} samples."
            )
        idx = [_index_tuple(t) for t in items]
        if len({len(i) for i in idx}) > 1:
            raise ValueError("every per-sample target needs the same number of indices.")
    else:
        idx = [_index_tuple(target)] * n
    return Target(indices=torch.tensor(idx, dtype=torch.long))
