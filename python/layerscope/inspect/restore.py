"""Give the model back as it was: the promise every view keeps (see DESIGN.md).

``preserved(model)`` snapshots what a forward or backward pass may change: ``training`` flags,
``requires_grad``, parameter ``.grad``, buffers (BatchNorm running stats) and the module's hook
dictionaries. On exit (also after an exception) it puts all of it back, and removes any hook added
inside the block that the caller forgot.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


@contextlib.contextmanager
def preserved(
    model: nn.Module,
    *,
    buffers: bool = True,
    grads: bool = True,
    modules: list[nn.Module] | None = None,
) -> Iterator[nn.Module]:
    """Run a block on ``model`` and restore modes, flags, grads, buffers and hooks afterwards.

    ``modules`` is ``list(model.modules())`` when the caller has it already (walking a model of
    thousands of modules takes milliseconds).

    >>> with preserved(model):          # doctest: +SKIP
    ...     model.eval(); model(x).sum().backward()
    """
    if modules is None:
        modules = list(model.modules())
    training = [m.training for m in modules]
    # Keys of the hook dictionaries that hold any (most hold none: nothing to copy for them).
    hooks = [
        (m, k, set(d))
        for m in modules
        if any(dicts := _hook_dicts(m))
        for k, d in zip(_HOOK_DICTS, dicts, strict=True)
        if d
    ]
    # model.parameters() and model.buffers(), from the modules walked once: each module's own,
    # a tensor that several modules hold listed once.
    params = _members(modules, "_parameters")
    requires_grad = [p.requires_grad for p in params]
    saved_grads = [p.grad for p in params] if grads else []
    saved_buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
    if buffers:
        for b in _members(modules, "_buffers"):
            if b.device.type != "meta":
                saved_buffers.append((b, b.detach().clone()))
    saved_versions = [(b, b._version) for b, _ in saved_buffers]
    try:
        yield model
    finally:
        for m, t in zip(modules, training, strict=True):
            if m.training != t:
                m.training = t
        before = {(id(m), k): keys for m, k, keys in hooks}
        for m in modules:
            dicts = _hook_dicts(m)
            if not any(dicts):
                continue
            for k, current in zip(_HOOK_DICTS, dicts, strict=True):
                if not current:
                    continue
                kept = before.get((id(m), k), set())
                for key in [key for key in current if key not in kept]:
                    del current[key]
        for p, rg in zip(params, requires_grad, strict=True):
            if p.requires_grad != rg:
                p.requires_grad_(rg)
        if grads:
            for p, g in zip(params, saved_grads, strict=True):
                if p.grad is not g:
                    p.grad = g
        with torch.no_grad():
            for (b, copy), (_, version) in zip(saved_buffers, saved_versions, strict=True):
                # BatchNorm's kernel updates running_mean/var in place without bumping
                # _version (only num_batches_tracked moves), so compare the values as well.
                if b._version != version or not torch.equal(b, copy):
                    b.copy_(copy)


_hook_getter = operator.itemgetter(*_HOOK_DICTS)


def _hook_dicts(m: nn.Module) -> tuple[Any, ...]:
    """``m``'s hook dictionaries, in the order of _HOOK_DICTS (None for one it lacks)."""
    try:
        return _hook_getter(m.__dict__)  # type: ignore[no-any-return]
    except KeyError:  # a module that did not set up all of them (Module.__init__ does)
        get = m.__dict__.get
        return tuple(get(k) for k in _HOOK_DICTS)


def _members(modules: list[nn.Module], kind: str) -> list[torch.Tensor]:
    """What ``named_parameters()`` / ``named_buffers()`` list: the tensors of each module's
    ``_parameters`` or ``_buffers`` in module order, each once."""
    out: list[torch.Tensor] = []
    seen: set[int] = set()
    for m in modules:
        for t in getattr(m, kind).values():
            if t is not None and id(t) not in seen:
                seen.add(id(t))
                out.append(t)
    return out
