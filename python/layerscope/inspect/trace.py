"""``trace(model, *inputs, **kwargs) -> Graph``: the real dataflow of one forward pass.

Module calls come from module hooks, the functional ops between them (``x + residual``,
``torch.cat``, ``F.relu``, ``view``, ``@``, indexing) from a ``TorchFunctionMode`` active during
the pass (see ``recorder.py``). Edges follow tensor identity from producer to consumer.
"""

from __future__ import annotations

import gc
import inspect as _pyinspect
from collections import Counter
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ModelError, locate, model_error_message
from .graph import Graph, Group, Node
from .modules import check_module, first_parameter_device, join_path, unwrap_compiled
from .recorder import Failure, Recorder
from .repeats import find_repeats
from .restore import preserved

__all__ = ["Graph", "Node", "TraceError", "trace", "trace_keeping"]


class TraceError(ModelError):
    """The model raised during the traced forward pass; chained (``from``) to the original error.

    ``path`` is the innermost module running when it raised ("" is the root, None if unknown),
    ``op`` the torch function that raised (None if it was not one), ``original`` the exception.
    """


def trace(model: nn.Module, *inputs: Any, **kwargs: Any) -> Graph:
    """Run ``model(*inputs, **kwargs)`` once and return what it did as a :class:`Graph`.

    Nodes are leaf-module calls (a module with no child modules is one node, its inner ops are
    not recorded), the functional ops run by container modules' own forward code, and the
    model's input and output tensors. Container modules become groups; consecutive sibling
    blocks that did the same thing become repeats ("Block x12"). See :meth:`Graph.to_dict` for
    the JSON schema.

    The pass runs under ``torch.no_grad()`` in the model's own mode (``train()`` or ``eval()``:
    the graph shows what the model really does in that mode, e.g. dropout in training). The
    model comes back as it was: BatchNorm running stats and other buffers, the RNG state
    (dropout), ``training`` flags, ``requires_grad``, ``.grad`` and hooks are restored, also
    when the forward raises. Models on ``meta`` trace without memory for weights (pass ``meta``
    inputs); data-dependent control flow just runs, as the pass is a real one.

    What the graph cannot show: ops inside TorchScript submodules (they refuse hooks and run
    outside Python; their outputs appear without a producer), and PyTorch's fused inference
    fast paths (``nn.TransformerEncoderLayer`` in eval): an active TorchFunctionMode turns them
    off, so the graph shows the unfused modules, which compute the same thing.

    Raises TypeError for a non-Module, and :class:`TraceError` (chained to the original
    exception) when the forward raises, naming the module path and op where it happened.

    >>> g = trace(model, torch.randn(2, 16))            # doctest: +SKIP
    >>> g.summary["ops"], [r.label for r in g.repeats]  # doctest: +SKIP
    (412, ['Block x12'])
    >>> json.dumps(g.to_dict())                         # doctest: +SKIP
    """
    return trace_keeping(model, inputs, kwargs)[0]


def trace_keeping(
    model: nn.Module,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    keep: tuple[str, ...] = (),
) -> tuple[Graph, dict[str, Tensor]]:
    """``trace(model, *inputs, **kwargs)`` that also keeps the output of the leaf modules at
    the paths in ``keep`` (the first tensor of each one's last call, detached, as
    ``capture`` keeps them; a path that is no leaf module call is left out). It saves the
    workspace a second forward for its first layer. The pass runs in the model's own mode:
    these are ``capture``'s outputs when every module is in eval mode.

    >>> g, outs = trace_keeping(model, (x,), {}, keep=("conv1",))    # doctest: +SKIP
    """
    # A torch.compile'd model is traced through the module it wraps: run through Dynamo, our
    # hooks and TorchFunctionMode would be compiled too, and recompiled on every trace.
    model = unwrap_compiled(check_module(model))
    # A trace allocates ~10 small objects per op and frees few: the cyclic GC would walk the
    # growing node list again and again (a third of the time at 10,000 ops). Tensors are
    # freed by reference counting either way; the GC runs again when trace returns.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _trace(model, inputs, kwargs, frozenset(keep))
    finally:
        if gc_was_enabled:
            gc.enable()


def _trace(
    model: nn.Module, inputs: tuple[Any, ...], kwargs: dict[str, Any], keep: frozenset[str]
) -> tuple[Graph, dict[str, Tensor]]:
    rec = Recorder(model)
    rec.keep = keep
    devices = _devices(rec.named, inputs, kwargs)
    cuda = sorted({d.index or 0 for d in devices if d.type == "cuda"})
    modules = [m for _, m in rec.named]
    with preserved(model, modules=modules), torch.random.fork_rng(devices=cuda), torch.no_grad():
        for index, (label, t) in enumerate(_labelled_inputs(model, inputs, kwargs)):
            rec.add_input(label, t, index)
        rec.attach()
        try:
            rec.start()
            output = model(*inputs, **kwargs)
        except Exception as exc:
            raise _trace_error(model, rec.failure, exc, inputs, kwargs) from exc
        finally:
            rec.stop()
            rec.detach()
        for index, (label, t) in enumerate(_labelled(output, "")):
            rec.add_output(label, t, index)
    return _build(model, rec, devices), rec.kept


def _build(model: nn.Module, rec: Recorder, devices: list[torch.device]) -> Graph:
    nodes = rec.nodes
    wanted: set[str | None] = {n.group for n in nodes}
    wanted.discard(None)
    wanted.update(rec.group_calls)
    for path in list(wanted):  # containers that never ran (ModuleList) still hold their children
        while path:
            path = path.rpartition(".")[0]
            wanted.add(path)
    groups: dict[str, Group] = {}
    for path, m in rec.named:
        if path in wanted and path not in rec.leaves:
            parent = path.rpartition(".")[0] if path else None
            groups[path] = Group(
                path, type(m).__name__, parent, [], 0, rec.group_calls.get(path, [])
            )
            if parent is not None and parent in groups:
                groups[parent].children.append(path)

    # One walk over the parameters gives every group's count (parameter_count per group would
    # walk each subtree again) and the tied ones; a tied parameter counts once, under its
    # first path: each module's own count, then added up into its ancestors (``named`` lists
    # a parent before its children).
    first: dict[int, tuple[int, str, str]] = {}  # id -> (order, module path, name)
    tied_ids: dict[int, list[str]] = {}
    params: list[tuple[torch.nn.Parameter, int]] = []
    totals: dict[str, int] = {}
    for path, m in rec.named:
        own = 0
        for name, p in m._parameters.items():
            if p is None:
                continue
            seen = first.get(id(p))
            if seen is not None:
                names = tied_ids.get(id(p))
                if names is None:
                    names = tied_ids[id(p)] = [join_path(seen[1], seen[2])]
                names.append(join_path(path, name))
                continue
            first[id(p)] = (len(first), path, name)
            n = p.numel()
            params.append((p, n))
            own += n
        totals[path] = own
    for path, _ in reversed(rec.named):
        if path:
            parent = path.rpartition(".")[0]
            totals[parent] = totals.get(parent, 0) + totals[path]
    for path, g in groups.items():
        g.params = totals.get(path, 0)
    tied = [names for _, names in sorted((first[i][0], names) for i, names in tied_ids.items())]

    shared = {p: c for p, c in rec.module_calls.items() if c > 1}
    shared.update({p: len(c) for p, c in rec.group_calls.items() if len(c) > 1})
    device = devices[0] if devices else first_parameter_device(model)
    kinds = Counter(n.kind for n in nodes)
    summary = {
        "model": type(model).__name__,
        "params": sum(n for _, n in params),
        "trainable_params": sum(n for p, n in params if p.requires_grad),
        "nodes": len(nodes),
        "edges": len(rec.edges),
        "ops": kinds["function"],
        "module_calls": kinds["module"],
        "modules": len(rec.module_calls),
        "inputs": kinds["input"],
        "outputs": kinds["output"],
        "device": str(device),
        "training": model.training,
    }
    return Graph(
        nodes=nodes,
        edges=rec.edges,
        groups=list(groups.values()),
        repeats=find_repeats(rec.named, rec.signatures, rec.leaves),
        summary=summary,
        shared=shared,
        tied=tied,
    )


def _devices(
    named: list[tuple[str, nn.Module]], inputs: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[torch.device]:
    found: dict[torch.device, None] = {}
    for _, m in named:
        for p in m._parameters.values():
            if p is not None:
                found[p.device] = None
        for b in m._buffers.values():
            if b is not None:
                found[b.device] = None
    for _, t in _labelled((inputs, kwargs), ""):
        found[t.device] = None
    return list(found)


def _labelled(value: Any, label: str) -> list[tuple[str, Tensor]]:
    """(label, tensor) for every tensor in a nested value: ``[0]``, ``['logits']``, ``.hidden``."""
    out: list[tuple[str, Tensor]] = []

    def walk(v: Any, at: str) -> None:
        if isinstance(v, Tensor):
            out.append((at, v))
        elif isinstance(v, dict):
            # HF ModelOutput is an OrderedDict *and* a dataclass: attribute style reads better.
            attr = hasattr(v, "__dataclass_fields__")
            for k, x in v.items():
                walk(x, f"{at}.{k}" if attr and isinstance(k, str) else f"{at}[{k!r}]")
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, f"{at}[{i}]")
        elif hasattr(v, "__dataclass_fields__"):
            for f in v.__dataclass_fields__:
                walk(getattr(v, f, None), f"{at}.{f}")

    walk(value, label)
    return out


def _labelled_inputs(
    model: nn.Module, inputs: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[str, Tensor]]:
    try:
        params = list(_pyinspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names: list[str] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    out: list[tuple[str, Tensor]] = []
    for i, v in enumerate(inputs):
        out += _labelled(v, names[i] if i < len(names) else f"args[{i}]")
    for k, v in kwargs.items():
        out += _labelled(v, k)
    return out


def _trace_error(
    model: nn.Module,
    failure: Failure | None,
    exc: Exception,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> TraceError:
    path = op = None
    if failure is not None and failure.exc is exc:
        path, op = failure.path, failure.op
    where, given = locate(model, exc.__traceback__)
    message = model_error_message(
        "trace", model, exc, inputs, kwargs, path=path, op=op, given=given if where == path else []
    )
    return TraceError(message, path=path, op=op, original=exc)


# Graph is re-exported here: layerscope.inspect exposes trace.Graph lazily.
_ = (Graph, Node)
