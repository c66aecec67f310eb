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
