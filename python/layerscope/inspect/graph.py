"""The traced graph of one forward pass: nodes, edges, module groups, repeats; ``Graph.to_dict()``.

``trace()`` (in ``trace.py``) builds a :class:`Graph`; the front end reads ``Graph.to_dict()``.
This module holds only the data and its JSON form, no torch hooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

# A tensor as the graph sees it: its shape and dtype, never its values.
TensorMeta = tuple[tuple[int, ...], torch.dtype]

SCHEMA = "layerscope.graph/1"

NODE_KINDS = ("module", "function", "input", "output")


@dataclass(slots=True)
class Node:
    """One call in the pass: a leaf module call, a functional op, a model input or output.

    ``group`` is the path of the container module the node lives in (None for inputs and
    outputs). The root module is always a container, even without children.
    """

    id: int
    kind: str
    path: str
    name: str
    group: str | None
    call: int
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]
    params: int = 0
    param_shapes: dict[str, tuple[int, ...]] | None = None
    inplace: bool = False
    group_call: int = 0


@dataclass(slots=True)
class Edge:
    """Tensor ``src.outputs[out]`` is argument tensor ``dst.inputs[inp]``."""

    src: int
    dst: int
    out: int
    inp: int


@dataclass(slots=True)
class Group:
    """A container module (one with child modules): a box the view can fold."""

    path: str
    cls: str
    parent: str | None
    children: list[str]
    params: int
    calls: list[tuple[list[TensorMeta], list[TensorMeta]]]


@dataclass(slots=True)
class Repeat:
    """Consecutive sibling modules with the same structure (``layers.0`` .. ``layers.11``)."""

    parent: str
    paths: list[str]
    cls: str

    @property
    def label(self) -> str:
        return f"{self.cls} x{len(self.paths)}"


@dataclass
class Graph:
    """What one forward pass of a model did; see :meth:`to_dict` for the JSON schema.

    ``nodes`` are in execution order and ``nodes[i].id == i``; ``shared`` maps a module path
    that ran more than once to its number of calls; ``tied`` lists parameter paths that are
    one tensor.

    >>> g = trace(model, x)                                   # doctest: +SKIP
    >>> [n.name for n in g.nodes if n.kind == "function"]     # doctest: +SKIP
    ['add', 'relu', 'cat']
    >>> add = g.find("add", kind="function")[0]               # doctest: +SKIP
    >>> [p.path for p in g.predecessors(add)]                 # doctest: +SKIP
    ['layer1.0.bn2', 'stem']
    >>> g.group("layer1").children, g.repeats[0].label        # doctest: +SKIP
    (['layer1.0', 'layer1.1'], 'BasicBlock x2')
    """

    nodes: list[Node]
    edges: list[Edge]
    groups: list[Group]
    repeats: list[Repeat]
    summary: dict[str, Any]
    shared: dict[str, int] = field(default_factory=dict)
    tied: list[list[str]] = field(default_factory=list)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"<Graph of {s['model']}: {s['nodes']} nodes ({s['ops']} ops, {s['module_calls']} "
            f"module calls), {s['edges']} edges, {len(self.groups)} groups, "
            f"{len(self.repeats)} repeats>"
        )

    # -- queries (tests and widgets use these; all linear scans, the graph is built once) --

    def find(
        self, name: str | None = None, *, kind: str | None = None, path: str | None = None
    ) -> list[Node]:
        """Nodes matching every given filter (exact name, kind and path).

        >>> g.find("add", kind="function")      # doctest: +SKIP
        """
        return [
            n
            for n in self.nodes
            if (name is None or n.name == name)
            and (kind is None or n.kind == kind)
            and (path is None or n.path == path)
        ]

    def in_edges(self, node: int | Node) -> list[Edge]:
        """Edges into ``node``, ordered by argument position."""
        i = node.id if isinstance(node, Node) else node
        return sorted((e for e in self.edges if e.dst == i), key=lambda e: e.inp)

    def out_edges(self, node: int | Node) -> list[Edge]:
        i = node.id if isinstance(node, Node) else node
        return [e for e in self.edges if e.src == i]

    def predecessors(self, node: int | Node) -> list[Node]:
        return [self.nodes[e.src] for e in self.in_edges(node)]

    def successors(self, node: int | Node) -> list[Node]:
        return [self.nodes[e.dst] for e in self.out_edges(node)]

    def group(self, path: str) -> Group:
        for g in self.groups:
            if g.path == path:
                return g
        raise KeyError(f"no group at path {path!r}; groups: {[g.path for g in self.groups][:10]}")

    def walk(self, group: str | None) -> Iterator[Node]:
        """Nodes inside ``group`` at any depth ("" is the root; None: all nodes)."""
        if group is None or group == "":
            yield from (n for n in self.nodes if group is None or n.group is not None)
            return
        prefix = group + "."
        for n in self.nodes:
            if n.group is not None and (n.group == group or n.group.startswith(prefix)):
                yield n

    def layer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Module path -> shape of the first output tensor of its last call, for the modules
        that ran as layers: leaf-module calls, and containers that ran while none of their child
        modules did (``nn.MultiheadAttention``), in about the order they ran. What
        ``capture(model, x)`` would return, read from the trace (shapes only; ``capture`` is
        the reference: a fused path or a module whose outputs hold no tensor may differ).

        >>> trace(model, x).layer_shapes()           # doctest: +SKIP
        {'conv1': (8, 16, 32, 32), 'relu': (8, 16, 32, 32), 'fc': (8, 10)}
        """
        ran_inside: set[str] = set()
        called = [g for g in self.groups if g.calls]
        for path in [
            *(n.path for n in self.nodes if n.kind == "module"),
            *(g.path for g in called),
        ]:
            while path:
                path = path.rpartition(".")[0]
                if path in ran_inside:
                    break
                ran_inside.add(path)
        leaf_groups = {g.path: g for g in called if g.path not in ran_inside}
        out: dict[str, tuple[int, ...]] = {}
        for n in self.nodes:
            if n.kind == "module":
                if n.outputs:  # a later call keeps the place of the first (as capture's)
                    out[n.path] = tuple(n.outputs[0][0])
            elif n.group in leaf_groups and n.group not in out:
                outs = leaf_groups[n.group].calls[-1][1]
                if outs:
                    out[n.group] = tuple(outs[0][0])
        for path, g in leaf_groups.items():
            if path not in out and g.calls[-1][1]:
                out[path] = tuple(g.calls[-1][1][0][0])
        return out

    # -- JSON --

    def to_dict(self) -> dict[str, Any]:
        """The graph as plain JSON data (``json.dumps`` works); the front end's only input.

        Schema ``"layerscope.graph/1"``. Shapes are lists of ints; dtypes are torch's names
        without the prefix (``"float32"``, ``"int64"``, ``"bool"``). A *tensor* is the pair
        ``[shape, dtype]``, e.g. ``[[2, 16], "float32"]``. Strings that come from the model
        (paths, class names) are plain text: the view must escape them.

        ``{
          "schema": "layerscope.graph/1",
          "summary": {
            "model": str,            # class name of the root module
            "params": int,           # total parameters (shared ones counted once)
            "trainable_params": int,
            "nodes": int, "edges": int,
            "ops": int,              # function nodes
            "module_calls": int,     # module nodes (leaf-module calls)
            "modules": int,          # distinct leaf modules that were called
            "inputs": int, "outputs": int,
            "device": str,           # "cpu", "cuda:0", "meta"
            "training": bool         # mode the pass ran in (the model's own)
          },
          "nodes": [{                # in execution order; a node's id is its index here
            "id": int,
            "kind": "module" | "function" | "input" | "output",
            "path": str,    # module: its path from named_modules() ("" is the root)
                            # function: owning group path + ":" + op name ("layers.0:add",
                            #           ":cat" at the root)
                            # input: "input:" + argument ("input:x", "input:batch['ids']")
                            # output: "output:" + where in the result ("output:[0]",
                            #           "output:['logits']", "output:.last_hidden_state",
                            #           "output:" for a bare tensor)
            "name": str,    # module: class name ("Linear"); function: op name ("add",
                            # "getitem", "cat", "add_" for in-place); input: the argument
                            # ("x", "batch['ids']"); output: "output" + where ("output",
                            # "output[0]", "output['logits']", "output.logits")
            "group": str | null,  # path of the group holding it: for modules their parent
                            # module, for functions the module whose forward ran them;
                            # null for inputs/outputs. The root is always a group, also
                            # without children (its forward's ops are then its nodes)
            "call": int,    # module: 0 for the first call of that module, 1 for the second...
                            # function: k-th op of that name in that group (all calls);
                            # input/output: position among inputs/outputs
            "group_call": int,   # which call of its group's module it ran in (a block
                            # applied twice holds two copies of its nodes: 0 and 1); 0 for
                            # inputs/outputs
            "inputs": [tensor, ...],   # tensor arguments in argument order (lists flattened,
                                       # so cat of 3 tensors has 3 inputs); parameters and
                                       # constants count too but have no edge
            "outputs": [tensor, ...],  # tensors in the result, flattened (LSTM: 3)
            "params": int,             # module: its parameter count, tied ones included
                                       # (0 for others)
            "param_shapes": {name: shape} | null,   # module only
            "calls": int,              # module: how often the module ran in the pass (>1 is
                                       # weight sharing); 1 for others
            "inplace": bool            # function wrote into an input (x += y, relu_)
          }],
          "edges": [{"src": int, "dst": int, "out": int, "in": int,
                     "shape": [int, ...], "dtype": str}],
                    # nodes[src].outputs[out] is nodes[dst].inputs[in]; shape/dtype repeat it
                    # as the edge label. Edges follow tensor identity; after an in-place op
                    # the tensor's producer is the in-place op.
          "groups": [{        # container modules that ran or hold nodes, in named_modules order
            "path": str, "class": str,
            "parent": str | null,     # null for the root group ""
            "children": [str],        # direct child groups, in module order
            "params": int,
            "calls": [{"inputs": [tensor], "outputs": [tensor]}]   # one per call ([] for
                                      # containers never called, like ModuleList)
          }],
          "repeats": [{"parent": str, "paths": [str], "class": str, "count": int,
                       "label": "TransformerEncoderLayer x12"}],
                    # consecutive siblings with the same class, parameter shapes and
                    # internal op sequence; the view may fold them into one block
          "shared": [{"path": str, "calls": int}],   # modules that ran more than once
          "tied": [[str, ...]]        # parameter paths that are one tensor ("embed.weight",
                                      # "head.weight")
        }``

        >>> json.dumps(trace(model, x).to_dict())     # doctest: +SKIP
        """
        dtypes: dict[torch.dtype, str] = {}

        def dt(d: torch.dtype) -> str:
            s = dtypes.get(d)
            if s is None:
                s = dtypes[d] = str(d).removeprefix("torch.")
            return s

        def tensors(metas: list[TensorMeta]) -> list[list[Any]]:
            return [[list(shape), dt(dtype)] for shape, dtype in metas]

        shared = self.shared
        nodes = []
        for n in self.nodes:
            nodes.append(
                {
                    "id": n.id,
                    "kind": n.kind,
                    "path": n.path,
                    "name": n.name,
                    "group": n.group,
                    "call": n.call,
                    "group_call": n.group_call,
                    "inputs": tensors(n.inputs),
                    "outputs": tensors(n.outputs),
                    "params": n.params,
                    "param_shapes": (
                        {k: list(v) for k, v in n.param_shapes.items()}
                        if n.param_shapes is not None
                        else None
                    ),
                    "calls": shared.get(n.path, 1) if n.kind == "module" else 1,
                    "inplace": n.inplace,
                }
            )
        edges = []
        for e in self.edges:
            shape, dtype = self.nodes[e.src].outputs[e.out]
            edges.append(
                {
                    "src": e.src,
                    "dst": e.dst,
                    "out": e.out,
                    "in": e.inp,
                    "shape": list(shape),
                    "dtype": dt(dtype),
                }
            )
        groups = [
            {
                "path": g.path,
                "class": g.cls,
                "parent": g.parent,
                "children": list(g.children),
                "params": g.params,
                "calls": [{"inputs": tensors(i), "outputs": tensors(o)} for i, o in g.calls],
            }
            for g in self.groups
        ]
        repeats = [
            {
                "parent": r.parent,
                "paths": list(r.paths),
                "class": r.cls,
                "count": len(r.paths),
                "label": r.label,
            }
            for r in self.repeats
        ]
        return {
            "schema": SCHEMA,
            "summary": dict(self.summary),
            "nodes": nodes,
            "edges": edges,
            "groups": groups,
            "repeats": repeats,
            "shared": [{"path": p, "calls": c} for p, c in self.shared.items()],
            "tied": [list(t) for t in self.tied],
        }
