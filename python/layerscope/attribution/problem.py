"""The shared state every method works on: what is attributed, and how to score a batch of rows.

Methods see a ``Problem``: ``values`` (the tensors being attributed, R rows each), ``index`` (the
sample each row belongs to) and ``gradients(values, index)``. Rows let IG steps and SmoothGrad
noise draws share one code path: a method builds new rows and maps them to their samples, and
pass-through inputs (token ids, masks) and targets follow the index.

When inputs are token ids the attributed tensor is the output of an embedding layer: a forward
hook replaces that layer's output with the rows being scored.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..inspect.capture import first_tensor
from ..inspect.modules import find_module
from .batching import DEFAULT_BUDGET, chunks
from .gradient_path import describe_break
from .targets import OutputSelector, Target, TargetSpec, resolve_target, select_output

# Image inputs of CNNs on the CPU run in channels-last memory layout (the oneDNN convolutions:
# 1.3-1.8x faster forwards measured here on the benchmark CNN, float32). Same values, another
# layout; a model that fails with it (``.view`` on a conv output, say) is run again as given and
# remembered here.
CHANNELS_LAST = True
_KEEP_LAYOUT: weakref.WeakSet[nn.Module] = weakref.WeakSet()


def prefers_channels_last(model: nn.Module, values: Sequence[torch.Tensor]) -> bool:
    """Whether rows of ``values`` should be fed to ``model`` in channels-last layout."""
    return (
        CHANNELS_LAST
        and model not in _KEEP_LAYOUT
        and any(
            v.dim() == 4 and v.dtype == torch.float32 and v.device.type == "cpu" for v in values
        )
        and any(isinstance(m, nn.Conv2d) for m in model.modules())
    )


class _StopForward(Exception):
    """Raised by a hook once it has what it needs, to skip the rest of a forward pass."""


def is_token_tensor(x: Any) -> bool:
    return (
        isinstance(x, torch.Tensor)
        and not x.is_floating_point()
        and not x.is_complex()
        and x.dtype != torch.bool
    )


def as_input_tuple(inputs: Any) -> tuple[Any, ...]:
    """The model's positional inputs as a tuple; the first tensor gives the batch size."""
    t = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if not any(isinstance(x, torch.Tensor) for x in t):
        raise TypeError(
            "inputs must be a tensor or a tuple of tensors with the batch dimension first; got "
            f"{type(inputs).__name__}."
        )
    for x in t:
        if isinstance(x, torch.Tensor) and x.dim() == 0:
            raise ValueError("inputs need a batch dimension first; got a 0-d tensor (use x[None]).")
    return t


@dataclass
class Problem:
    """What a method attributes and how to score rows of it (see the module docstring)."""

    model: nn.Module
    inputs: tuple[Any, ...]
    values: tuple[torch.Tensor, ...]
    index: torch.Tensor
    target: Target
    n: int
    output: OutputSelector = None
    forward_kwargs: dict[str, Any] = field(default_factory=dict)
    attributed: tuple[int, ...] = ()
    embedding: nn.Module | None = None
    # which call of ``embedding`` in one forward pass is attributed (a shared embedding runs
    # once for the source and once for the target tokens)
    embedding_call: int = 0
    rows: int | None = None
    budget: int = DEFAULT_BUDGET
    exclude: set[int] = field(default_factory=set)
    progress: Callable[[float], None] | None = None
    channels_last: bool = False

    @property
    def row_count(self) -> int:
        return int(self.index.shape[0])

    def with_rows(self, values: tuple[torch.Tensor, ...], index: torch.Tensor) -> Problem:
        """The same problem over other rows (noisy copies, path points) of the same samples."""
        return dataclasses.replace(self, values=values, index=index)

    def chunks(self, total: int, row_bytes: int = 0, *, report: bool = True) -> Iterator[slice]:
        """Row slices sized by ``internal_batch_size`` or by the memory budget; after each one
        the ``progress`` callback (when given and ``report``) gets the fraction done."""
        parts = chunks(
            total, self.rows, row_bytes=row_bytes, budget=self.budget, exclude=self.exclude
        )
        for sl in parts:
            yield sl
            if report and self.progress is not None:
                self.progress(sl.stop / total)

    def row_bytes(self) -> int:
        """Bytes one row of the attributed values takes (a row's input plus its gradient)."""
        return sum(v[:1].nbytes for v in self.values)

    def _take(self, x: Any, index: torch.Tensor) -> Any:
        if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == self.n:
            if index.shape[0] == self.n and bool((index == torch.arange(self.n)).all()):
                return x
            return x.index_select(0, index.to(x.device))
        return x

    def run(
        self,
        values: Sequence[torch.Tensor],
        index: torch.Tensor,
        hooks: Sequence[Callable[[], Any]] = (),
        reset: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """The selected model output for rows ``values`` (their samples given by ``index``).

        ``hooks`` register forward hooks for this pass (removed after it); ``reset`` clears what
        they collected if the pass is run again in the model's own layout (see CHANNELS_LAST).
        """
        if self.channels_last and self.model not in _KEEP_LAYOUT:
            try:
                return self._forward(values, index, hooks, channels_last=True)
            except RuntimeError:
                _KEEP_LAYOUT.add(self.model)  # its own error, if any, comes from the next pass
                if reset is not None:
                    reset()
        return self._forward(values, index, hooks, channels_last=False)

    def _forward(
        self,
        values: Sequence[torch.Tensor],
        index: torch.Tensor,
        hooks: Sequence[Callable[[], Any]],
        channels_last: bool,
    ) -> torch.Tensor:
        args = [self._take(x, index) for x in self.inputs]
        kwargs = {k: self._take(v, index) for k, v in self.forward_kwargs.items()}
        handles = [h() for h in hooks]
        try:
            if self.embedding is None:
                for pos, v in zip(self.attributed, values, strict=True):
                    # (a differentiable copy: gradients reach `v` in its own layout's values)
                    args[pos] = (
                        v.contiguous(memory_format=torch.channels_last)
                        if channels_last and v.dim() == 4
                        else v
                    )
            else:
                handles.append(
                    self.embedding.register_forward_hook(
                        _replace_output(values[0], self.embedding_call)
                    )
                )
            raw = self.model(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
        out = select_output(raw, self.output)
        if out.dim() == 0 or out.shape[0] != index.shape[0]:
            raise ValueError(
                f"the selected model output has shape {tuple(out.shape)} for a batch of "
                f"{index.shape[0]} rows; it must have the batch dimension first (pick another with "
                "output=)."
            )
        return out

    def scores(self, values: Sequence[torch.Tensor], index: torch.Tensor) -> torch.Tensor:
        """Target scores (R,) for rows, without gradients."""
        with torch.no_grad():
            return self.target.scores(self.run(values, index), index)

    def gradients(
        self, values: Sequence[torch.Tensor], index: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """d(score)/d(values) for each row, and the scores.

        ``torch.autograd.grad`` on fresh leaves: parameter ``.grad`` is never touched, and a user
        tensor with ``requires_grad`` keeps its flag and its ``.grad``.
        """
        leaves = tuple(v.detach().requires_grad_(True) for v in values)
        with torch.enable_grad():
            s = self.target.scores(self.run(leaves, index), index)
            grads = (
                torch.autograd.grad(s.sum(), leaves, allow_unused=True)
                if s.requires_grad
                else (None,) * len(leaves)
            )
        if all(g is None for g in grads):
            # all zeros would look like an answer (a quantized layer, an integer cast): say where
            # the gradient path ends instead, as Captum does
            where = describe_break(lambda: self.run(leaves, index), self.model)
            raise ValueError(
                f"the target score has no gradient with respect to the attributed input: {where}. "
                "Attribution needs a differentiable path from the input to the output: attribute "
                "a float (not quantized) copy of the model, or use method='attention' or Grad-CAM "
                "at a layer after the break (layer=)."
            )
        unused = [i for i, g in enumerate(grads) if g is None]
        if unused:
            warnings.warn(
                f"attributed input(s) {unused} do not reach the target score: their attribution "
                "is zero.",
                UserWarning,
                stacklevel=3,
            )
        return tuple(
            torch.zeros_like(v) if g is None else g for v, g in zip(leaves, grads, strict=True)
        ), s.detach()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """The embedding layer's output when the token ids (first integer input) are ``ids``."""
        if self.embedding is None:
            raise ValueError(
                "token-id baselines need token inputs attributed at an embedding layer."
            )
        args = list(self.inputs)
        pos = next(i for i, x in enumerate(args) if is_token_tensor(x))
        if tuple(ids.shape) != tuple(args[pos].shape):
            raise ValueError(
                f"a token-id baseline needs the shape of the token ids {tuple(args[pos].shape)}; got "
                f"{tuple(ids.shape)}."
            )
        args[pos] = ids.to(args[pos].device)
        store: list[torch.Tensor] = []
        handle = self.embedding.register_forward_hook(
            _capture_output(store, stop=True, call=self.embedding_call)
        )
        try:
            with torch.no_grad():
                self.model(*args, **self.forward_kwargs)
        except _StopForward:
            pass
        finally:
            handle.remove()
        return store[0]


def _replace_output(value: torch.Tensor, call: int = 0) -> Callable[[nn.Module, Any, Any], Any]:
    """A forward hook that replaces the output of the ``call``-th call (0-based) in one pass
    with ``value``; other calls keep their own output (a shared embedding for the source and
    the target tokens: swapping every call would differentiate another function)."""
    calls = [0]

    def hook(module: nn.Module, _inp: Any, out: Any) -> Any:
        k = calls[0]
        calls[0] += 1
        if k != call:
            return None
        t = first_tensor(out)
        if not isinstance(out, torch.Tensor) or t is None or t.shape != value.shape:
            got = tuple(t.shape) if t is not None else type(out).__name__
            raise ValueError(
                f"the embedding layer ({type(module).__name__}) gave {got} where {tuple(value.shape)} "
                "was expected; name an embedding layer that returns one tensor (embedding=), and "
                "the call that embeds the attributed tokens (embedding_call=)."
            )
        return value

    return hook


def _capture_output(
    store: list[torch.Tensor], stop: bool, call: int = 0
) -> Callable[[nn.Module, Any, Any], None]:
    """A forward hook that keeps the output of the ``call``-th call (and, with ``stop``, ends
    the pass there); ``store`` gets one entry per call up to then (None before ``call``)."""

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        k = len(store)
        t = first_tensor(out)
        store.append(t.detach() if t is not None and k == call else None)  # type: ignore[arg-type]
        if stop and k == call:
            raise _StopForward

    return hook


def find_embedding(model: nn.Module, embedding: str | nn.Module | None) -> nn.Module | None:
    """The layer whose output token-id inputs are attributed at; None: find it by running the
    model (see :func:`consuming_embedding`)."""
    if isinstance(embedding, nn.Module):
        return embedding
    if isinstance(embedding, str):
        return find_module(model, embedding)
    if any(isinstance(m, nn.Embedding) for m in model.modules()):
        return None
    raise ValueError(
        f"the inputs hold integer token ids, which have no gradient, so they are attributed at an "
        f"embedding layer's output; {type(model).__name__} has no nn.Embedding. Pass "
        "embedding='path.to.layer' (a module path from model.named_modules()) naming the layer "
        "whose output to attribute, or pass float inputs."
    )


def build_problem(
    model: nn.Module,
    inputs: Any,
    target: TargetSpec,
    *,
    output: OutputSelector = None,
    embedding: str | nn.Module | None = None,
    embedding_call: int | None = None,
    forward_kwargs: dict[str, Any] | None = None,
    internal_batch_size: int | None = None,
    budget: int = DEFAULT_BUDGET,
    exclude: set[int] | None = None,
    progress: Callable[[float], None] | None = None,
) -> Problem:
    """Check the inputs, find the attribution point, resolve the target.

    Runs one no-grad forward when the target is None (to find the predicted class) and, for
    token inputs, up to the embedding layer (to get the embeddings); nothing otherwise.
    """
    args = as_input_tuple(inputs)
    n = next(x for x in args if isinstance(x, torch.Tensor)).shape[0]
    for x in args:
        if isinstance(x, torch.Tensor) and x.shape[0] != n:
            raise ValueError(
                f"all input tensors need the same batch size first; got {[tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]}."
            )
    if internal_batch_size is not None and (
        not isinstance(internal_batch_size, int) or internal_batch_size < 1
    ):
        raise ValueError(
            f"internal_batch_size must be a positive int or None; got {internal_batch_size!r}."
        )
    base = Problem(
        model=model,
        inputs=args,
        values=(),
        index=torch.arange(n),
        target=Target(),
        n=n,
        output=output,
        forward_kwargs=dict(forward_kwargs or {}),
        rows=internal_batch_size,
        budget=budget,
        exclude=exclude or set(),
        progress=progress,
    )
    tokens = any(is_token_tensor(x) for x in args)
    if embedding_call is not None and (
        isinstance(embedding_call, bool)
        or not isinstance(embedding_call, int)
        or embedding_call < 0
    ):
        raise ValueError(f"embedding_call must be an int >= 0 or None; got {embedding_call!r}.")
    if tokens or embedding is not None:
        layer = find_embedding(model, embedding)
        call = embedding_call or 0
        out: torch.Tensor | None = None
        if layer is None:
            ids = next(x for x in args if is_token_tensor(x))
            layer, found_call, out = consuming_embedding(model, args, base.forward_kwargs, ids)
            out = select_output(out, output) if target is None else None
            call = found_call if embedding_call is None else embedding_call
        store: list[torch.Tensor] = []
        # with a given target only the embeddings are needed: stop the pass there
        handle = layer.register_forward_hook(
            _capture_output(store, stop=target is not None or out is not None, call=call)
        )
        try:
            with torch.no_grad():
                raw = model(*args, **base.forward_kwargs)
                if target is None and out is None:
                    out = select_output(raw, output)
        except _StopForward:
            pass
        finally:
            handle.remove()
        if len(store) <= call:
            raise ValueError(
                f"the embedding layer ({type(layer).__name__}) was called {len(store)} time(s) in "
                f"the forward pass, so it has no call {call}; name the layer the token ids go "
                "through with embedding='path' and its call with embedding_call=k (0: the first)."
            )
        problem = dataclasses.replace(
            base, values=(store[call],), embedding=layer, embedding_call=call
        )
    else:
        attributed = tuple(
            i for i, x in enumerate(args) if isinstance(x, torch.Tensor) and x.is_floating_point()
        )
        if not attributed:
            raise TypeError(
                "inputs hold no floating-point tensor to attribute; pass float inputs, or token ids "
                "(integer tensors) with embedding='path'."
            )
        values = tuple(args[i].detach() for i in attributed)
        problem = dataclasses.replace(
            base,
            values=values,
            attributed=attributed,
            channels_last=prefers_channels_last(model, values),
        )
        out = None
        if target is None:
            with torch.no_grad():
                out = problem.run(values, problem.index)
    return dataclasses.replace(problem, target=resolve_target(target, out, n))


def consuming_embedding(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], ids: torch.Tensor
) -> tuple[nn.Module, int, Any]:
    """The ``nn.Embedding`` that embedded the token ids ``ids`` in one forward pass, which call
    of it that was, and the model's output.

    Not the first ``nn.Embedding`` in ``named_modules()``: BART's ``shared`` is never called (its
    encoder has its own embedding module on the same weight), and T5's runs for the encoder's
    and the decoder's tokens.
    """
    calls: list[tuple[nn.Module, int, torch.Tensor]] = []
    counts: dict[int, int] = {}

    def hook(m: nn.Module, inp: Any, _out: Any) -> None:
        k = counts.get(id(m), 0)
        counts[id(m)] = k + 1
        if inp and isinstance(inp[0], torch.Tensor):
            calls.append((m, k, inp[0]))

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Embedding)
    ]
    try:
        with torch.no_grad():
            out = model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    for m, k, used in calls:
        if used.numel() == ids.numel() and torch.equal(used.reshape(ids.shape).cpu(), ids.cpu()):
            return m, k, out
    if calls:
        return calls[0][0], calls[0][1], out
    raise ValueError(
        f"no nn.Embedding of {type(model).__name__} was called in the forward pass; name the layer "
        "the token ids go through with embedding='path'."
    )


@dataclass
class Attributions:
    """What every method returns: one tensor per attributed input.

    ``at_point`` is True when ``values`` have the shape of the attribution point (for token
    inputs, the embedding output (N, L, D), reduced to tokens afterwards); False when the method
    already gives a map over the input (Grad-CAM, attention). ``delta`` is IG's convergence delta.
    """

    values: tuple[torch.Tensor, ...]
    at_point: bool = True
    delta: torch.Tensor | None = None
