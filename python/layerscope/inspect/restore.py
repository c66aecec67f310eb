"""Give the model back as it was: the promise every view keeps (see DESIGN.md).

``preserved(model)`` snapshots what a forward or backward pass may change: ``training`` flags,
``requires_grad``, parameter ``.grad``, buffers (BatchNorm running stats) and the module's hook
dictionaries. On exit (also after an exception) it puts all of it back, and removes any hook added
inside the block that the caller forgot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
def preserved(model: nn.Module, *, buffers: bool = True, grads: bool = True) -> Iterator[nn.Module]:
    """Run a block on ``model`` and restore modes, flags, grads, buffers and hooks afterwards.

    >>> with preserved(model):          # doctest: +SKIP
    ...     model.eval(); model(x).sum().backward()
    """
    modules = list(model.modules())
    training = [m.training for m in modules]
    # Keys of the hook dictionaries that hold any (most hold none: nothing to copy for them).
    hooks = [(m, k, set(d)) for m in modules for k in _HOOK_DICTS if (d := m.__dict__.get(k))]
    params = list(model.parameters())
    requires_grad = [p.requires_grad for p in params]
    saved_grads = [p.grad for p in params] if grads else []
    saved_buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
    if buffers:
        for b in model.buffers():
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
            for k in _HOOK_DICTS:
                current = m.__dict__.get(k)
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
