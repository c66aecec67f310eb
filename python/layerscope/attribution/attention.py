"""Attention weights per layer and head, attention rollout (Abnar & Zuidema 2020).

``nn.MultiheadAttention`` is often called with ``need_weights=False`` (``nn.TransformerEncoderLayer``
does, and its fused fast path skips the module entirely). A forward pre-hook re-requests per-head
weights for the call and a forward hook gives the caller what it asked for, so the model computes
the same output; the hooks also turn the fused fast path off, which checks for hooks. Modules in
the Hugging Face style that return ``(output, weights, ...)`` are read as they are.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..inspect.modules import check_module, find_module
from ..inspect.restore import preserved
from .grid import GridSpec, tokens_to_grid
from .problem import Attributions, Problem, as_input_tuple

_MHA_ARGS = ("key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal")
HEAD_FUSIONS = ("mean", "max", "min")


def _mha_hooks(module: nn.MultiheadAttention, record: Any) -> list[Any]:
    asked: list[tuple[bool, bool]] = []

    def pre(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        kwargs = dict(kwargs)
        kwargs.update(
            zip(_MHA_ARGS, args[3:], strict=False)
        )  # positional extras by name, so we can override
        asked.append(
            (bool(kwargs.get("need_weights", True)), bool(kwargs.get("average_attn_weights", True)))
        )
        kwargs["need_weights"] = True
        kwargs["average_attn_weights"] = False
        return args[:3], kwargs

    def post(_m: nn.Module, _args: Any, out: Any) -> Any:
        need, average = asked.pop()
        weights = out[1]
        record(weights if weights.dim() == 4 else weights.unsqueeze(0))
        if not need:
            return (out[0], None)
        return (out[0], weights.mean(dim=-3) if average else weights)

    return [
        module.register_forward_pre_hook(pre, with_kwargs=True),
        module.register_forward_hook(post),
    ]


def is_attention(t: Any) -> bool:
    """Whether ``t`` looks like attention probabilities: (N, heads, queries, keys), non-negative,
    each row summing to 1 over the keys (0 for a fully masked row).

    T5's attention modules return ``position_bias`` (negative values, rows not summing to 1)
    before the weights: a 4-D tensor that is not attention, never to be shown as such.
    """
    if not isinstance(t, torch.Tensor) or t.dim() != 4 or not t.is_floating_point():
        return False
    if t.numel() == 0:
        return False
    a = t.detach().float()
    if not bool(torch.isfinite(a).all()) or float(a.min()) < -1e-6:
        return False
    rows = a.sum(-1)
    ok = torch.isclose(rows, torch.ones_like(rows), atol=1e-3) | (rows.abs() <= 1e-6)
    return bool(ok.all()) and bool((rows > 0.5).any())


def _returned_weights(out: Any) -> torch.Tensor | None:
    if isinstance(out, (tuple, list)):
        for v in out[1:]:
            if is_attention(v):
                return v
    return None


_OUTPUT_ATTENTIONS = ("attentions", "encoder_attentions", "decoder_attentions", "cross_attentions")


def _output_attentions(out: Any) -> list[tuple[str, torch.Tensor]]:
    """The attention tensors a model returned itself (Hugging Face ``ModelOutput`` fields)."""
    found: list[tuple[str, torch.Tensor]] = []
    for name in _OUTPUT_ATTENTIONS:
        value = out.get(name) if isinstance(out, Mapping) else getattr(out, name, None)
        if isinstance(value, (tuple, list)):
            found += [(f"{name}.{i}", w) for i, w in enumerate(value) if is_attention(w)]
    for sub in ("text_model_output", "vision_model_output"):  # CLIP-style nested outputs
        inner = out.get(sub) if isinstance(out, Mapping) else getattr(out, sub, None)
        if inner is not None:
            found += [(f"{sub}.{k}", w) for k, w in _output_attentions(inner)]
    return found


def _takes_output_attentions(model: nn.Module) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "output_attentions" in params or (
        any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
        and hasattr(model, "config")
    )


@contextlib.contextmanager
def _eager_attention(model: nn.Module) -> Iterator[None]:
    """Hugging Face models with SDPA or flash attention return no weights: switch their configs
    to the "eager" implementation (which computes the same thing) for this pass."""
    configs: dict[int, tuple[Any, Any]] = {}
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation_internal"):
            configs.setdefault(id(cfg), (cfg, cfg._attn_implementation_internal))
    try:
        for cfg, impl in configs.values():
            if impl != "eager":
                cfg._attn_implementation_internal = "eager"
        yield
    finally:
        for cfg, impl in configs.values():
            cfg._attn_implementation_internal = impl


def attention_weights(
    model: nn.Module,
    inputs: Any,
    *,
    layers: str | Sequence[str] | None = None,
    forward_kwargs: dict[str, Any] | None = None,
) -> dict[str, torch.Tensor]:
    """Attention weights of one forward pass: module path -> (N, heads, queries, keys).

    ``layers`` None takes every ``nn.MultiheadAttention`` and every module whose class name
    contains "Attention" and that returns ``(output, weights (N, H, T, S), ...)``. A tensor counts
    as weights only if it is attention (see :func:`is_attention`: T5's position bias is not).
    Hugging Face models are run with ``output_attentions=True`` and eager attention (SDPA returns
    no weights), and the weights the model returns itself are preferred: a module's entry is kept
    when it returned one of them. Runs in eval mode without gradients and gives the model back
    as it was (its attention implementation too). Entries are in call order (a module called twice
    gives ``path`` for the last call and ``path#0``, ``path#1``).

    Peak memory: one no-grad forward plus the weights (layers x N x H x T x S).

    >>> w = attention_weights(model, ids)              # doctest: +SKIP
    >>> w["encoder.layers.0.self_attn"].shape          # doctest: +SKIP
    torch.Size([2, 4, 128, 128])
    """
    check_module(model)
    args = as_input_tuple(inputs)
    if layers is None:
        chosen = [
            (name, m)
            for name, m in model.named_modules()
            if isinstance(m, nn.MultiheadAttention) or "Attention" in type(m).__name__
        ]
    else:
        paths = [layers] if isinstance(layers, str) else list(layers)
        chosen = [(p, find_module(model, p)) for p in paths]
    found: list[tuple[str, torch.Tensor]] = []
    # The recorded tensors themselves, kept alive: an id() alone could be reused by a later
    # layer's weights once the first ones are freed, and that layer would be skipped.
    seen: list[torch.Tensor] = []

    def recorder(path: str) -> Any:
        def record(w: torch.Tensor) -> None:
            # Hugging Face wrappers pass their inner module's weights up: keep the first (inner)
            if not any(w is s for s in seen):
                seen.append(w)
                found.append((path, w))

        return record

    handles: list[Any] = []
    # TransformerEncoder turns padded batches into nested tensors in eval mode, which
    # need_weights=True cannot take: switch that off for this pass
    nested = [
        m
        for m in model.modules()
        if isinstance(m, nn.TransformerEncoder) and getattr(m, "use_nested_tensor", False)
    ]
    kwargs = dict(forward_kwargs or {})
    if "output_attentions" not in kwargs and _takes_output_attentions(model):
        kwargs["output_attentions"] = True
    own: list[tuple[str, torch.Tensor]] = []
    with preserved(model), _eager_attention(model):
        model.eval()
        try:
            for m in nested:
                m.use_nested_tensor = False
            for path, m in chosen:
                if isinstance(m, nn.MultiheadAttention):
                    handles += _mha_hooks(m, recorder(path))
                else:
                    rec = recorder(path)
                    handles.append(
                        m.register_forward_hook(
                            lambda _m, _i, out, rec=rec: _record_returned(out, rec)
                        )
                    )
            with torch.no_grad():
                own = _output_attentions(model(*args, **kwargs))
        finally:
            for h in handles:
                h.remove()
            for m in nested:
                m.use_nested_tensor = True
    if own:
        # the model's own attention outputs: keep the modules that returned one of them, and
        # name the rest by their output field
        kept = [(p, w) for p, w in found if any(w is o for _, o in own)]
        matched = [o for _, o in own if any(o is w for _, w in kept)]
        extra = [(name, o) for name, o in own if not any(o is m for m in matched)]
        found = kept + extra
    found = [(p, w.detach()) for p, w in found]
    if not found:
        raise ValueError(
            f"no attention weights found in {type(model).__name__}: it has no nn.MultiheadAttention "
            "and no module returned (output, weights). Pass layers=[paths] naming modules that "
            "return weights, or forward_kwargs={'output_attentions': True} for Hugging Face models."
        )
    result: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for path, _ in found:
        counts[path] = counts.get(path, 0) + 1
    calls: dict[str, int] = {}
    for path, w in found:
        if counts[path] > 1:
            result[f"{path}#{calls.get(path, 0)}"] = w
            calls[path] = calls.get(path, 0) + 1
        result[path] = w
    return result


def _record_returned(out: Any, record: Any) -> None:
    w = _returned_weights(out)
    if w is not None:
        record(w)


def _unique_layers(
    weights: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    if isinstance(weights, Mapping):
        # "path" duplicates the last "path#k" entry of a module called more than once
        return [w for k, w in weights.items() if f"{k}#0" not in weights]
    return list(weights)


def attention_rollout(
    weights: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
    *,
    head_fusion: str = "mean",
    residual: bool = True,
) -> torch.Tensor:
    """Attention rollout: how much each token attends to each input token through all layers.

    Per layer, heads are fused (``head_fusion`` "mean", "max" or "min"), the residual path is
    added as 0.5 A + 0.5 I (``residual=True``, as Abnar & Zuidema) and rows renormalized; the
    layers' matrices are multiplied in order. Takes ``attention_weights``'s dict (in call order)
    or a list of (N, H, T, T) tensors; returns (N, T, T).

    Peak memory: two (N, T, T) matrices beyond the input.

    >>> attention_rollout([torch.full((1, 2, 3, 3), 1 / 3)]).shape
    torch.Size([1, 3, 3])
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"unknown head_fusion {head_fusion!r}; use one of {list(HEAD_FUSIONS)}.")
    mats = _unique_layers(weights)
    if not mats:
        raise ValueError("attention_rollout needs at least one layer of attention weights.")
    result: torch.Tensor | None = None
    for a in mats:
        if a.dim() != 4 or a.shape[-1] != a.shape[-2]:
            raise ValueError(
                f"rollout needs self-attention weights (N, heads, T, T); got {tuple(a.shape)}."
            )
        if head_fusion == "mean":
            fused = a.mean(1)
        elif head_fusion == "max":
            fused = a.amax(1)
        else:
            fused = a.amin(1)
        if residual:
            eye = torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
            fused = 0.5 * fused + 0.5 * eye
        fused = fused / fused.sum(-1, keepdim=True).clamp_min(torch.finfo(fused.dtype).tiny)
        if result is not None and result.shape != fused.shape:
            raise ValueError("rollout needs the same token count in every layer.")
        result = fused if result is None else fused @ result
    assert result is not None
    return result


def attribute(
    problem: Problem,
    *,
    layers: str | Sequence[str] | None = None,
    head_fusion: str = "mean",
    query: int | str = 0,
    residual: bool = True,
    token_grid: GridSpec = None,
    skip_tokens: int | None = None,
) -> Attributions:
    """Attention rollout read at one query token, as a map over the input.

    ``query``: the rollout row to read, 0 (a CLS token) by default, or "mean" over all tokens. The
    target is not used (attention does not depend on it). Token inputs get (N, L); image inputs
    (vision transformers) get (N, 1, H, W): tokens placed on the patch grid (see
    ``tokens_to_grid``) and upsampled bilinearly.

    Peak memory: as ``attention_weights`` plus the rollout.

    >>> ls.attribute(model, ids, None, method="attention", query="mean")   # doctest: +SKIP
    """
    weights = attention_weights(
        problem.model, problem.inputs, layers=layers, forward_kwargs=problem.forward_kwargs
    )
    roll = attention_rollout(weights, head_fusion=head_fusion, residual=residual)
    if problem.progress is not None:
        problem.progress(1.0)
    if query == "mean":
        rel = roll.mean(1)
    elif (
        isinstance(query, int)
        and not isinstance(query, bool)
        and -roll.shape[1] <= query < roll.shape[1]
    ):
        rel = roll[:, query]
    else:
        raise ValueError(
            f"query must be a token index in 0..{roll.shape[1] - 1} or 'mean'; got {query!r}."
        )
    image = (
        next((v for v in problem.values if v.dim() == 4), None)
        if problem.embedding is None
        else None
    )
    if image is not None:
        grid = tokens_to_grid(rel.unsqueeze(-1), skip_tokens=skip_tokens, grid=token_grid)
        return Attributions(
            (F.interpolate(grid, tuple(image.shape[2:]), mode="bilinear"),), at_point=False
        )
    length = problem.values[0].shape[1] if problem.values[0].dim() >= 2 else rel.shape[1]
    if rel.shape[1] != length:
        rel = F.interpolate(rel[:, None], length, mode="linear")[:, 0]
    return Attributions((rel,), at_point=False)
