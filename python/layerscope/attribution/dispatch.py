"""``attribute(model, inputs, target, method=...)``: one entry point over the method modules."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..inspect.errors import model_errors
from ..inspect.modules import check_module
from ..inspect.restore import preserved
from . import attention, grad_cam, gradient, input_x_gradient, integrated_gradients, smoothgrad
from .batching import DEFAULT_BUDGET, parameter_storages
from .problem import Attributions, Problem, build_problem
from .targets import OutputSelector, TargetSpec

# name -> the method's attribute(problem, **options); all share that signature
METHODS: dict[str, Callable[..., Attributions]] = {
    "gradient": gradient.attribute,
    "input_x_gradient": input_x_gradient.attribute,
    "integrated_gradients": integrated_gradients.attribute,
    "smoothgrad": smoothgrad.attribute,
    "grad_cam": grad_cam.attribute,
    "attention": attention.attribute,
}
SMOOTHGRAD_BASES = ("gradient", "input_x_gradient", "integrated_gradients")
_NO_TARGET = ("attention",)
EMBEDDING_REDUCTIONS = ("sum", "norm", None)

_MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase)


def _mode_dependent(model: nn.Module) -> list[str]:
    return [
        type(m).__name__
        for m in model.modules()
        if isinstance(m, _MODE_DEPENDENT)
        or (isinstance(m, nn.MultiheadAttention) and m.dropout > 0)
    ]


def _check_options(
    method: str, fn: Callable[..., Any], options: dict[str, Any], extra: tuple[str, ...] = ()
) -> None:
    params = inspect.signature(fn).parameters
    valid = [
        p for p in params if p != "problem" and params[p].kind == inspect.Parameter.KEYWORD_ONLY
    ]
    valid += list(extra)
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise TypeError(
            f"method {method!r} has no option {', '.join(map(repr, unknown))}; its options are "
            f"{valid} (plus output, embedding, embedding_reduce, forward_kwargs, "
            "internal_batch_size, memory_budget, eval_mode, progress)."
        )


def _method_keywords(method: str) -> set[str]:
    names = {
        k
        for k, p in inspect.signature(METHODS[method]).parameters.items()
        if p.kind == inspect.Parameter.KEYWORD_ONLY
    }
    if method == "smoothgrad":
        for base in SMOOTHGRAD_BASES:
            names |= _method_keywords(base)
        names.add("base")
    return names


def split_model_kwargs(
    model: nn.Module, method: str, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` split into the method's own and the model's keyword arguments: a keyword the
    method does not take but ``model.forward`` names (``attention_mask=``) goes to the model."""
    own = _method_keywords(method)
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return options, {}
    forward = {k for k, p in params.items() if p.kind != inspect.Parameter.VAR_POSITIONAL}
    model_kw = {k: v for k, v in options.items() if k not in own and k in forward}
    return {k: v for k, v in options.items() if k not in model_kw}, model_kw


def _unused_target(out: torch.Tensor) -> torch.Tensor:
    return out.reshape(out.shape[0], -1)[:, 0]


def attribute(
    model: nn.Module,
    inputs: Any,
    target: TargetSpec = None,
    method: str = "integrated_gradients",
    *,
    output: OutputSelector = None,
    embedding: str | nn.Module | None = None,
    embedding_call: int | None = None,
    embedding_reduce: str | None = "sum",
    forward_kwargs: dict[str, Any] | None = None,
    internal_batch_size: int | None = None,
    memory_budget: int = DEFAULT_BUDGET,
    eval_mode: bool = True,
    progress: Callable[[float], None] | None = None,
    **options: Any,
) -> Any:
    """Attribute ``model``'s output for ``target`` to ``inputs``: a tensor shaped like the input.

    ``method``: "gradient" (``abs=``), "input_x_gradient", "integrated_gradients" (``baselines=``,
    ``n_steps=``, ``ig_method=``, ``return_convergence_delta=``), "smoothgrad" (``base=`` one of
    the above, ``n_samples=``, ``stdevs=``, ``variant=``, ``seed=``, plus the base's options),
    "grad_cam" (``layer=``, ``token_grid=``, ``skip_tokens=``), "attention" (``layers=``,
    ``head_fusion=``, ``query=``). Each method module documents its options.

    ``inputs``: a tensor or a tuple of them, batch first. Float inputs are attributed directly (a
    tuple gives a tuple, one per float input). Integer token ids are attributed at the output of an
    embedding layer (``embedding="path"``, default: the ``nn.Embedding`` that embedded these ids
    in the forward pass); the (N, L, D) result is reduced to (N, L) by ``embedding_reduce``
    ("sum", "norm", or None to keep D). An embedding called more than once per pass (one shared
    by the encoder and the decoder) is attributed at one call, ``embedding_call=k`` (default:
    the call that embedded the ids, else the first); the other calls keep their own output.

    ``target``: a class index, a tuple of indices (multi-dim outputs), a list with one per sample,
    a callable on the output returning one score per sample, or None for the predicted class.
    ``output``: which part of a dict / tuple / dataclass model output to explain (a key, an index,
    or a callable). ``forward_kwargs`` are passed to every forward call (tensors with the batch
    dim follow the rows); a keyword that no method takes but the model's ``forward`` does
    (``attention_mask=``, ``decoder_input_ids=``) is passed to the model the same way.

    A target with no gradient path to the input (a quantized layer, an integer cast) raises a
    ValueError naming the module and op where the path breaks, never an all-zero answer.

    The model comes back as it was: parameter ``.grad`` untouched (gradients are taken with
    ``torch.autograd.grad`` on copies of the inputs), ``requires_grad`` of parameters and inputs,
    ``training`` flags, buffers, no hooks left, also after an error. The computation runs in
    eval mode (``eval_mode=True``): a model in train mode with dropout or batch norm gets a
    warning saying so, and is put back in train mode afterwards.

    ``progress``: called with the fraction done (0..1] after each chunk, for a view's progress bar
    (the kernel is busy meanwhile: send what it needs from the callback).

    Speed: on the CPU, float32 image rows of a model with ``nn.Conv2d`` layers run in
    channels-last memory layout (oneDNN's faster convolutions; the same values, returned
    contiguous). A model that cannot take that layout is run again as given and remembered;
    ``layerscope.attribution.problem.CHANNELS_LAST = False`` turns it off.

    Peak memory: one forward+backward over a chunk of rows (sample x step/draw): at most
    ``internal_batch_size`` rows, or by default as many as keep about ``memory_budget`` bytes
    (256 MiB) of saved activations, measured on the first row; plus a few input-sized buffers.

    >>> import layerscope as ls                                                   # doctest: +SKIP
    >>> attr = ls.attribute(model, x, target=3, method="integrated_gradients")    # doctest: +SKIP
    >>> attr, delta = ls.attribute(model, x, None, return_convergence_delta=True) # doctest: +SKIP
    >>> tok = ls.attribute(lm, ids, 1, method="gradient", embedding="embed")      # doctest: +SKIP
    """
    check_module(model)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods are {list(METHODS)}.")
    if embedding_reduce not in EMBEDDING_REDUCTIONS:
        raise ValueError(
            f"embedding_reduce must be one of {list(EMBEDDING_REDUCTIONS)}; got {embedding_reduce!r}."
        )
    fn = METHODS[method]
    options, model_kwargs = split_model_kwargs(model, method, options)
    if model_kwargs:
        forward_kwargs = {**(forward_kwargs or {}), **model_kwargs}
    if method == "smoothgrad":
        base = options.pop("base", "gradient")
        if base not in SMOOTHGRAD_BASES:
            raise ValueError(f"smoothgrad base {base!r} is not one of {list(SMOOTHGRAD_BASES)}.")
        base_fn = METHODS[base]
        sg_keys = [k for k in inspect.signature(fn).parameters if k not in ("problem", "base")]
        base_options = {k: v for k, v in options.items() if k not in sg_keys}
        if base_options.get("return_convergence_delta"):
            raise ValueError("return_convergence_delta is not available with smoothgrad.")
        _check_options(base, base_fn, base_options)
        options = {k: v for k, v in options.items() if k in sg_keys}
        options.update(base=base_fn, **base_options)
    else:
        _check_options(method, fn, options)
    if eval_mode and model.training and _mode_dependent(model):
        warnings.warn(
            f"{type(model).__name__} is in train mode and has {sorted(set(_mode_dependent(model)))}: "
            "attribution ran in eval mode (no dropout, running BatchNorm statistics) and the model "
            "was put back in train mode. Pass eval_mode=False to compute in train mode.",
            UserWarning,
            stacklevel=2,
        )
    inputs_tuple = isinstance(inputs, (tuple, list))
    with preserved(model), model_errors(model, f"attribution ({method})", inputs, forward_kwargs):
        if eval_mode and any(m.training for m in model.modules()):
            model.eval()
        # frozen parameters: no graph is recorded upstream of the attributed tensor (Grad-CAM's
        # layer, the embedding output) and no weight-gradient work is done
        for p in model.parameters():
            p.requires_grad_(False)
        problem: Problem = build_problem(
            model,
            inputs,
            _unused_target if method in _NO_TARGET else target,
            output=output,
            embedding=embedding,
            embedding_call=embedding_call,
            forward_kwargs=forward_kwargs,
            internal_batch_size=internal_batch_size,
            budget=memory_budget,
            exclude=parameter_storages(model) if internal_batch_size is None else set(),
            progress=progress,
        )
        result = fn(problem, **options)
    # (contiguous: rows run in channels-last layout give gradients in that layout)
    values = tuple(v.contiguous() for v in result.values)
    if result.at_point and problem.embedding is not None:
        if embedding_reduce == "sum":
            values = tuple(v.sum(-1) for v in values)
        elif embedding_reduce == "norm":
            values = tuple(v.norm(dim=-1) for v in values)
    # a tuple of float inputs gets a tuple back; token ids and maps (Grad-CAM, attention) one tensor
    tuple_out = inputs_tuple and result.at_point and problem.embedding is None
    attr: Any = values if tuple_out or len(values) > 1 else values[0]
    if result.delta is not None:
        return attr, result.delta
    return attr
