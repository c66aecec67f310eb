"""Record one forward pass: module hooks for module calls, a TorchFunctionMode for the ops between.

The recorder is the hot path of ``trace()``: every torch function called during the pass goes
through :meth:`Recorder.__torch_function__`, so it does as little as it can (no stack
inspection, no copies of tensors, shapes kept as the ``torch.Size`` objects torch hands out).
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

from .capture import dense, first_tensor
from .graph import Edge, Node, TensorMeta
from .modules import is_parametrization

# Reading t.shape inside a hook would itself go through the mode; this switches it off there.
_no_torch_function = torch._C.DisableTorchFunction
_mode_stack_len = torch._C._len_torch_function_stack
_mode_stack_at = torch._C._get_function_stack_at
_pop_mode = torch._C._pop_torch_function_stack
_push_mode = torch._C._push_on_torch_function_stack

_SETITEM = Tensor.__setitem__
_ITER = Tensor.__iter__

# Dunder names torch hands the mode for Python operators, as the op names a reader expects.
_DUNDER = {
    "getitem": "getitem",
    "setitem": "setitem",
    "matmul": "matmul",
    "rmatmul": "matmul",
    "radd": "add",
    "rmul": "mul",
    "rsub": "rsub",
    "rtruediv": "rdiv",
    "rdiv": "rdiv",
    "rpow": "rpow",
    "iter": "unbind",
}


def op_name(func: Callable[..., Any]) -> str:
    """A short readable name for a torch function: ``add``, ``cat``, ``getitem``, ``T`` ..."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":  # a Tensor property such as .T or .mT
        owner = getattr(func, "__self__", None)
        return getattr(owner, "__name__", "get")
    if name.startswith("__") and name.endswith("__"):
        core = name[2:-2]
        if core in _DUNDER:
            return _DUNDER[core]
        if core.startswith("i") and hasattr(Tensor, core[1:] + "_"):  # __iadd__ -> add_
            return core[1:] + "_"
        return core
    return name


def tensor_leaves(value: Any, out: list[Tensor]) -> list[Tensor]:
    """Append every tensor in a nested result (tuple, list, dict, dataclass) to ``out``."""
    if isinstance(value, Tensor):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            tensor_leaves(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            tensor_leaves(v, out)
    elif hasattr(value, "__dataclass_fields__"):
        for f in value.__dataclass_fields__:
            tensor_leaves(getattr(value, f, None), out)
    return out


def _arg_tensors(args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> list[Tensor]:
    # Arguments nest at most one level in practice (cat, stack, einsum take lists of tensors).
    ins: list[Tensor] = []
    for a in args:
        if isinstance(a, Tensor):
            ins.append(a)
        elif isinstance(a, (list, tuple)):
            for b in a:
                if isinstance(b, Tensor):
                    ins.append(b)
    if kwargs:
        for a in kwargs.values():
            if isinstance(a, Tensor):
                ins.append(a)
            elif isinstance(a, (list, tuple)):
                for b in a:
                    if isinstance(b, Tensor):
                        ins.append(b)
    return ins


class Frame:
    """One module call on the recorder's stack."""

    __slots__ = (
        "ambient",
        "call",
        "events",
        "leaf",
        "module",
        "ops",
        "path",
        "popped",
        "quiet",
        "record",
    )

    def __init__(
        self,
        module: nn.Module | None,
        path: str | None,
        quiet: bool,
        record: bool,
        leaf: bool,
        ambient: BaseException | None,
    ) -> None:
        self.module = module
        self.path = path
        self.quiet = quiet  # ops are not recorded: inside a leaf module's own forward
        self.record = record  # the call itself becomes a node / group call
        self.leaf = leaf
        self.events: list[Any] = []  # op names and child signatures, for repeat detection
        self.ambient = ambient  # the exception being handled when the call began, if any
        self.popped = False  # the recorder took itself off the mode stack for this leaf call
        self.call = 0  # which call of this (container) module this is
        # op name -> [calls so far, node path] for the ops of this module's forward code,
        # shared by all calls of the module (None where ops are not recorded)
        self.ops: dict[str, list[Any]] | None = None


class _Module:
    """What the hooks need about one module of the model, looked up by id on each call."""

    __slots__ = ("group", "leaf", "params", "path", "shapes", "signature")

    def __init__(self, path: str, leaf: bool) -> None:
        self.path = path
        self.leaf = leaf
        self.group = path.rpartition(".")[0] if path else None  # the container it lives in
        # a leaf's parameter count and shapes and its structure id, from its first call
        self.params = 0
        self.shapes: dict[str, tuple[int, ...]] | None = None
        self.signature = -1


class Failure:
    """Where the pass raised: the innermost module (and op) that saw the exception first."""

    __slots__ = ("exc", "op", "path")

    def __init__(self, exc: BaseException, path: str | None, op: str | None) -> None:
        self.exc = exc
        self.path = path
        self.op = op


class Recorder(TorchFunctionMode):
    """Collects nodes and edges while active; hooks are registered by :meth:`attach`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        # named_modules() walks nested generators (slow on 5,000 modules): walk it once here
        # and let attach(), preserved() and the graph builder reuse the list.
        self.named: list[tuple[str, nn.Module]] = list(model.named_modules())
        self.paths: dict[int, str] = {}
        self.leaves: set[str] = set()
        for path, m in self.named:
            self.paths[id(m)] = path
            # The root is always a group, even without children: an all-functional model
            # shows its ops (and tracing a lone nn.Linear shows its F.linear).
            # parametrizations (weight_norm) are part of their owner, never a layer of their own
            # (m._modules.values() is what m.children() yields, less its None entries)
            children = m._modules
            if path and (
                not children
                or not any(c is not None and not is_parametrization(c) for c in children.values())
            ):
                self.leaves.add(path)
        self.root_path = ""
        # Leaf paths whose output tensors the pass keeps (``trace_keeping``): path -> output.
        self.keep: frozenset[str] = frozenset()
        self.kept: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        # id(tensor) -> (weakref, node id, output index). The weakref tells a live tensor from a
        # new one that got the id of a freed one, without keeping activations alive.
        self.produced: dict[int, tuple[Callable[[], Tensor | None], int, int]] = {}
        # group path -> its Frame.ops (the ops outside any module go to the bottom frame's)
        self._ops: dict[str | None, dict[str, list[Any]]] = {None: {}}
        bottom = Frame(None, None, False, False, False, None)
        bottom.ops = self._ops[None]
        self.stack: list[Frame] = [bottom]
        self.module_calls: dict[str, int] = {}
        self.container_calls: dict[str, int] = {}
        self.group_calls: dict[str, list[tuple[list[TensorMeta], list[TensorMeta]]]] = {}
        self.signatures: dict[str, int] = {}  # module path -> structure id of its first call
        self._sig_ids: dict[tuple[Any, ...], int] = {}
        self._names: dict[Any, str] = {}
        self._modules: dict[int, _Module] = {}
        self.failure: Failure | None = None
        self.handles: list[Any] = []

    @property
    def op_calls(self) -> dict[tuple[str | None, str], int]:
        """(group path, op name) -> how many times that group's forward code ran the op."""
        return {(g, name): c[0] for g, ops in self._ops.items() for name, c in ops.items()}

    # -- hooks --

    def attach(self) -> None:
        # One global pre hook and one global post hook for the pass, each module's path and leaf
        # flag looked up by id, rather than two hooks registered on every module: registering
        # them took ~40 us a module (~0.35 s of a 48-block transformer's 0.75 s trace).
        # ScriptModules do not call hooks (their ops run in TorchScript, out of the mode's sight).
        leaves = self.leaves
        self._modules = {
            id(m): _Module(path, path in leaves)
            for path, m in self.named  # named_modules() lists a module once
            if not isinstance(m, torch.jit.ScriptModule)
        }
        self.handles.append(register_module_forward_pre_hook(self._pre))
        self.handles.append(
            register_module_forward_hook(self._post, with_kwargs=True, always_call=True)
        )

    def start(self) -> None:
        """Switch the mode on (like ``with recorder:``, but :meth:`stop` is safe after anything)."""
        _push_mode(self)

    def stop(self) -> None:
        n = _mode_stack_len()
        if n and _mode_stack_at(n - 1) is self:
            _pop_mode()

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _pre(self, module: nn.Module, _args: Any) -> None:
        info = self._modules.get(id(module))
        if info is None:  # not this model's module
            return
        path = info.path
        stack = self.stack
        if stack[-1].quiet:  # a module called from inside a leaf module's forward: part of it
            frame = Frame(module, path, True, False, info.leaf, sys.exc_info()[1])
        elif info.leaf:
            frame = Frame(module, path, True, True, True, sys.exc_info()[1])
            # Nothing inside a leaf's forward is recorded, so take the mode off the stack
            # until its forward hook: the ops in there (F.linear, dropout...) then cost
            # nothing extra instead of a Python call each.
            n = _mode_stack_len()
            if n and _mode_stack_at(n - 1) is self:
                _pop_mode()
                frame.popped = True
        else:
            frame = Frame(module, path, False, True, False, sys.exc_info()[1])
            calls = self.container_calls
            frame.call = calls.get(path, 0)
            calls[path] = frame.call + 1
            ops = self._ops.get(path)
            if ops is None:
                ops = self._ops[path] = {}
            frame.ops = ops
        stack.append(frame)

    def _post(self, module: nn.Module, args: Any, *rest: Any) -> None:
        info = self._modules.get(id(module))
        if info is None:
            return
        # (kwargs, output) normally; on the way out of a forward that raised, torch calls a
        # global always_call hook without the kwargs: (output,), which is None.
        kwargs, output = rest if len(rest) == 2 else ({}, rest[0])
        stack = self.stack
        frame = stack[-1]
        while frame.module is not module and len(stack) > 2:
            self._unwind(stack.pop())  # frames of calls that raised and were caught in the model
            frame = stack[-1]
        if len(stack) > 1:
            self._unwind(stack.pop())
        exc = sys.exc_info()[1]
        if exc is not None and exc is not frame.ambient:
            # always_call hook on the way out of a forward that raised: remember the innermost.
            if self.failure is None or self.failure.exc is not exc:
                self.failure = Failure(exc, info.path, None)
            return
        if not frame.record:
            return
        parent = stack[-1]
        with _no_torch_function():
            if frame.leaf:
                self._module_node(info, module, args, kwargs, output, parent)
            else:
                self._group_call(info.path, module, frame, args, kwargs, output, parent)

    def _unwind(self, frame: Frame) -> None:
        if frame.popped:
            _push_mode(self)
            frame.popped = False

    def _params(self, module: nn.Module) -> tuple[int, dict[str, tuple[int, ...]]]:
        if _parametrized(module):
            # the originals the weights derive from (the parametrization holders inside)
            named = list(module.named_parameters())
            return sum(p.numel() for _, p in named), {name: tuple(p.shape) for name, p in named}
        # A leaf has no other children: its own _parameters are all of them
        # (named_parameters() walks the module tree through generators, 10x slower here).
        count = 0
        shapes: dict[str, tuple[int, ...]] = {}
        for name, p in module._parameters.items():
            if p is not None:
                shapes[name] = tuple(p.shape)
                count += p.numel()
        return count, shapes

    def _signature(self, key: tuple[Any, ...]) -> int:
        sig = self._sig_ids.get(key)
        if sig is None:
            sig = self._sig_ids[key] = len(self._sig_ids)
        return sig

    def _module_node(
        self, info: _Module, module: nn.Module, args: Any, kwargs: Any, output: Any, parent: Frame
    ) -> None:
        path = info.path
        ins = _arg_tensors(args, kwargs)
        outs = [output] if isinstance(output, Tensor) else tensor_leaves(output, [])
        calls = self.module_calls
        call = calls.get(path, 0)
        calls[path] = call + 1
        shapes = info.shapes
        if shapes is None:  # its first call
            info.params, shapes = self._params(module)
            info.shapes = shapes
            info.signature = self._signature((type(module).__name__, tuple(shapes.items())))
            self.signatures[path] = info.signature
        group = info.group
        in_meta, out_meta = self._link(len(self.nodes), ins, outs)
        # Identity, or Dropout in eval, hand back their input untouched: only a module that
        # says it works in place (ReLU(inplace=True)) wrote into it.
        # (__dict__, not getattr: Module.__getattr__ raises and catches for a missing name.)
        inplace = module.__dict__.get("inplace", False) is True and _writes_input(ins, outs)
        self.nodes.append(
            Node(
                len(self.nodes),
                "module",
                path,
                type(module).__name__,
                group,
                call,
                in_meta,
                out_meta,
                info.params,
                shapes,
                inplace,
                parent.call if parent.path == group else 0,
            )
        )
        if path in self.keep:
            t = first_tensor(output)
            if t is not None:
                self.kept[path] = dense(t.detach())  # the last call's, as capture() keeps
        parent.events.append(info.signature)

    def _group_call(
        self,
        path: str,
        module: nn.Module,
        frame: Frame,
        args: Any,
        kwargs: Any,
        output: Any,
        parent: Frame,
    ) -> None:
        ins = _arg_tensors(args, kwargs)
        outs = tensor_leaves(output, [])
        self.group_calls.setdefault(path, []).append(
            ([(t.shape, t.dtype) for t in ins], [(t.shape, t.dtype) for t in outs])
        )
        if path not in self.signatures:
            own = tuple((n, tuple(p.shape)) for n, p in module._parameters.items() if p is not None)
            self.signatures[path] = self._signature(
                (type(module).__name__, own, tuple(frame.events))
            )
        parent.events.append(self.signatures[path])

    # -- nodes and edges --

    def _link(
        self, node_id: int, ins: list[Tensor], outs: list[Tensor] | tuple[Tensor, ...]
    ) -> tuple[list[TensorMeta], list[TensorMeta]]:
        """Edges into node ``node_id`` from the producers of ``ins``; ``outs`` now come from
        it. Returns the (shape, dtype) of each input and output."""
        produced = self.produced
        edges = self.edges
        for j, t in enumerate(ins):
            src = produced.get(id(t))
            if src is not None and src[0]() is t:
                edges.append(Edge(src[1], node_id, src[2], j))
        for i, t in enumerate(outs):
            try:
                ref: Callable[[], Tensor | None] = _weakref(t)
            except TypeError:  # a tensor subclass without __weakref__
                ref = _Strong(t)
            produced[id(t)] = (ref, node_id, i)
        return [(t.shape, t.dtype) for t in ins], [(t.shape, t.dtype) for t in outs]

    def add_input(self, label: str, t: Tensor, index: int) -> None:
        node_id = len(self.nodes)
        if id(t) not in self.produced:  # the same tensor passed twice: edges from the first
            self.produced[id(t)] = (_ref(t), node_id, 0)
        self.nodes.append(
            Node(node_id, "input", "input:" + label, label, None, index, [], [(t.shape, t.dtype)])
        )

    def add_output(self, label: str, t: Tensor, index: int) -> None:
        node_id = len(self.nodes)
        src = self.produced.get(id(t))
        if src is not None and src[0]() is t:
            self.edges.append(Edge(src[1], node_id, src[2], 0))
        self.nodes.append(
            Node(
                node_id,
                "output",
                "output:" + label,
                "output" + label,
                None,
                index,
                [(t.shape, t.dtype)],
                [],
            )
        )

    # -- the mode --

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        frame = self.stack[-1]
        if frame.quiet:
            return func(*args, **kwargs) if kwargs else func(*args)
        try:
            out = func(*args, **kwargs) if kwargs else func(*args)
        except Exception as exc:
            if self.failure is None or self.failure.exc is not exc:
                self.failure = Failure(exc, frame.path, self._name(func))
            raise
        if isinstance(out, Tensor):
            outs: list[Tensor] | tuple[Tensor, ...] = (out,)
        elif isinstance(out, (tuple, list)):
            outs = [o for o in out if isinstance(o, Tensor)]
            if not outs:  # torch.Size, split sizes...
                return out
        elif func is _SETITEM:
            outs = (args[0],)  # x[i] = y writes into x: x now comes from this op
        elif func is _ITER:
            out = tuple(out)  # for row in x: record the unbind, hand back a fresh iterator
            self._record_op(func, args, kwargs, out, frame)
            return iter(out)
        else:
            return out  # .shape, .dim(), .item(), bool(x): not dataflow
        self._record_op(func, args, kwargs, outs, frame)
        return out

    def _name(self, func: Any) -> str:
        try:
            name = self._names.get(func)
        except TypeError:  # unhashable callables
            return op_name(func)
        if name is None:
            name = self._names[func] = op_name(func)
        return name

    def _record_op(
        self,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        outs: list[Tensor] | tuple[Tensor, ...],
        frame: Frame,
    ) -> None:
        try:
            name = self._names.get(func)
        except TypeError:  # unhashable callables
            name = None
        if name is None:
            name = self._name(func)
        ops = frame.ops
        assert ops is not None  # a frame that records ops has them
        counted = ops.get(name)
        if counted is None:
            counted = ops[name] = [0, f"{frame.path or ''}:{name}"]
        call = counted[0]
        counted[0] = call + 1
        ins = _arg_tensors(args, kwargs)
        nodes = self.nodes
        node_id = len(nodes)
        in_meta, out_meta = self._link(node_id, ins, outs)
        # x.contiguous() or x.float() may return x itself without writing: trailing "_" ops
        # (add_, relu_, masked_fill_) and x[i] = y are the ones that write.
        nodes.append(
            Node(
                node_id,
                "function",
                counted[1],
                name,
                frame.path,
                call,
                in_meta,
                out_meta,
                0,
                None,
                (name[-1] == "_" or func is _SETITEM) and _writes_input(ins, outs),
                frame.call,
            )
        )
        frame.events.append(name)


class _Strong:
    """A strong reference that reads like a weakref, for tensor subclasses without __weakref__."""

    __slots__ = ("t",)

    def __init__(self, t: Tensor) -> None:
        self.t = t

    def __call__(self) -> Tensor:
        return self.t


_weakref = weakref.ref


def _ref(t: Tensor) -> Callable[[], Tensor | None]:
    try:
        return weakref.ref(t)
    except TypeError:
        return _Strong(t)


def _parametrized(module: nn.Module) -> bool:
    """``parametrize.is_parametrized(module)``, without its getattr: Module.__getattr__ raises
    and catches for the "parametrizations" most modules do not have (~2 us a module)."""
    if (
        "parametrizations" in module._modules
        or "parametrizations" in module.__dict__
        or hasattr(type(module), "parametrizations")
    ):
        return parametrize.is_parametrized(module)
    return False


def _writes_input(ins: list[Tensor], outs: list[Tensor] | tuple[Tensor, ...]) -> bool:
    for o in outs:
        for t in ins:
            if o is t:
                return True
    return False
