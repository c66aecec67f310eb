"""Module paths: the names from ``model.named_modules()`` ("" is the root)."""

from __future__ import annotations

import difflib

import torch
from torch import nn


class ModulePathError(KeyError):
    """No module at that path; the message lists the closest existing paths."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def check_module(model: object, what: str = "model") -> nn.Module:
    """Return ``model`` if it is an ``nn.Module``, else raise a TypeError saying what to pass."""
    if isinstance(model, nn.Module):
        return model
    raise TypeError(
        f"{what} must be a torch.nn.Module, got {type(model).__module__}.{type(model).__qualname__}. "
        "Pass the model object itself (for a torch.jit or functional model, wrap it in an nn.Module)."
    )


def join_path(parent: str, name: str) -> str:
    """The path of ``name`` inside the module at ``parent`` ("" is the root).

    >>> join_path("", "fc"), join_path("blocks.0", "weight")
    ('fc', 'blocks.0.weight')
    """
    return f"{parent}.{name}" if parent else name


def module_paths(model: nn.Module) -> list[str]:
    """All module paths of ``model`` in ``named_modules()`` order ("" is the root)."""
    return [name for name, _ in check_module(model).named_modules(remove_duplicate=False)]


def find_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at ``path``; a ModulePathError (a KeyError) that lists the closest existing paths otherwise.

    >>> find_module(model, "layer1.0.conv1")   # doctest: +SKIP
    """
    modules = dict(check_module(model).named_modules(remove_duplicate=False))
    if not isinstance(path, str):
        raise TypeError(
            f"a module path must be a str like 'layer1.0.conv1', got {type(path).__name__}"
        )
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, [p for p in modules if p], n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    sample = ", ".join(repr(p) for p in list(modules)[1:8])
    raise ModulePathError(
        f"{type(model).__name__} has no module at path {path!r}.{hint} "
        f"Paths are the names from model.named_modules(), e.g. {sample}."
    )


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def first_parameter_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def is_parametrization(module: nn.Module) -> bool:
    """Whether ``module`` is ``torch.nn.utils.parametrize``'s holder of a parametrized tensor.

    Such a module (``layer.parametrizations`` and what it holds) runs when its owner reads the
    weight: it is part of the owner, never a layer of its own.
    """
    from torch.nn.utils import parametrize

    return isinstance(module, (parametrize.ParametrizationList, nn.ModuleDict)) and (
        isinstance(module, parametrize.ParametrizationList)
        or any(isinstance(v, parametrize.ParametrizationList) for v in module.values())
    )


def layer_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``named_modules()`` without parametrization holders and what they hold (see
    :func:`is_parametrization`): the modules that can be layers."""
    out: list[tuple[str, nn.Module]] = []
    skipped: list[str] = []
    for path, m in check_module(model).named_modules():
        if any(path == s or path.startswith(s + ".") for s in skipped):
            continue
        if path and is_parametrization(m):
            skipped.append(path)
            continue
        out.append((path, m))
    return out


def unwrap_compiled(model: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper (``OptimizedModule``) holds, else ``model``.

    Running our hooks and TorchFunctionMode through Dynamo would compile our own code and
    recompile on every call; the original module computes the same thing eagerly.
    """
    orig = getattr(model, "_orig_mod", None)
    if isinstance(orig, nn.Module) and type(model).__name__ == "OptimizedModule":
        return orig
    return model
