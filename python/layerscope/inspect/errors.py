"""Errors a model raises while layerscope runs it, told in the user's terms.

A wrong input usually surfaces many frames deep as a bare torch error (``conv2d`` on a 2-D
tensor, an embedding given float ids). :class:`ModelError` says which pass failed, in which
module (path and class), what that module was given and what it takes, and chains the original.
:func:`model_errors` finds the module from the traceback itself (the innermost frame whose
``self`` is one of the model's modules), so the pass runs with no extra hooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from torch import Tensor, nn


class ModelError(RuntimeError):
    """The model raised while layerscope ran it; chained (``from``) to the original error.

    ``path`` is the innermost module running when it raised ("" is the root, None if unknown),
    ``op`` the torch function that raised (None if not known), ``original`` the exception.
    """

    def __init__(
        self, message: str, *, path: str | None, op: str | None, original: BaseException
    ) -> None:
        super().__init__(message)
        self.path = path
        self.op = op
        self.original = original


class ForwardError(ModelError):
    """The model raised during a forward pass run by capture, attribute or a view."""


def describe(value: Any) -> str:
    """``float32[4, 64] on cpu`` for a tensor, the type name for anything else."""
    if isinstance(value, Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)} on {value.device}"
    return type(value).__name__


def expects(module: nn.Module) -> str | None:
    """What a common layer takes as input, in words (None for layers we cannot say it for)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        d = len(module.kernel_size)
        spatial = ", ".join("HWD"[:d]) if d > 1 else "L"
        return (
            f"a float tensor shaped (N, {module.in_channels}, {spatial}) "
            f"({d + 2}-D, {module.in_channels} input channels)"
        )
    if isinstance(module, nn.Linear):
        return f"a float tensor whose last dimension is {module.in_features}"
    if isinstance(module, nn.Embedding):
        return f"integer token ids (torch.long) from 0 to {module.num_embeddings - 1}"
    if isinstance(module, nn.LayerNorm):
        return f"a float tensor ending in {list(module.normalized_shape)}"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return f"a float tensor shaped (N, {module.num_features}, ...)"
    return None


def locate(model: nn.Module, tb: TracebackType | None) -> tuple[str | None, list[str]]:
    """The innermost module of ``model`` on the traceback, and what its ``forward`` was given."""
    paths = {id(m): p for p, m in model.named_modules()}
    path: str | None = None
    given: list[str] = []
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in paths:
            if paths[id(owner)] != path:
                path, given = paths[id(owner)], []
            code = frame.f_code
            if code.co_name == "forward":
                names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
                given = [
                    f"{n}={describe(frame.f_locals[n])}"
                    for n in names
                    if isinstance(frame.f_locals.get(n), Tensor)
                ]
        tb = tb.tb_next
    return path, given


def model_error_message(
    what: str,
    model: nn.Module,
    exc: BaseException,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    path: str | None,
    op: str | None = None,
    given: list[str] | None = None,
) -> str:
    modules = dict(model.named_modules())
    module = modules.get(path) if path is not None else None
    if path is None:
        where = "during the forward pass"
    else:
        cls = type(module).__name__ if module is not None else "?"
        where = f"in module {path!r} ({cls})" if path else f"in the root module ({cls})"
        if op is not None:
            where += f", op {op!r}"
    original = str(exc).strip()
    if len(original) > 600:
        original = original[:600] + " ..."
    lines = [f"{what} of {type(model).__name__} failed {where}: {type(exc).__name__}: {original}"]
    if path and module is not None and (given or expects(module)):
        got = f"got {', '.join(given)}" if given else ""
        takes = f"it takes {expects(module)}" if expects(module) else ""
        lines.append(f"Module {path!r} {got}{'; ' if got and takes else ''}{takes}.")
    args = [describe(v) for v in inputs] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    lines.append(
        f"Inputs given: ({', '.join(args)}). Pass inputs that model(*inputs, **kwargs) accepts: "
        "the same shapes, dtypes and device as in a normal call."
    )
    return "\n".join(lines)


@contextlib.contextmanager
def model_errors(
    model: nn.Module, what: str, inputs: Any, kwargs: dict[str, Any] | None = None
) -> Iterator[None]:
    """Turn an exception raised inside ``model``'s modules into a :class:`ForwardError` that
    names the module, what it got and what it takes. Errors raised outside the model (our own
    checks, a bad target) and layerscope's own errors pass through unchanged."""
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        path, given = locate(model, exc.__traceback__)
        if path is None:
            raise
        args = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        message = model_error_message(what, model, exc, args, kwargs or {}, path=path, given=given)
        raise ForwardError(message, path=path, op=None, original=exc) from exc


__all__ = ["ForwardError", "ModelError", "describe", "expects", "model_errors"]
