"""``ls.graph``: the traced layer graph of a live model as an interactive view (``GraphView``).

The kernel traces once (``layerscope.inspect.trace``) and bakes the whole graph into one synced
trait in a compact columnar form (``compact_graph``), so the view lays it out, folds, searches
and selects without asking the kernel, also in an exported offline page. ``selected`` is the one
piece of state both sides write: a click in the view sets it, and setting it from Python selects,
reveals and centres that node.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

import torch
import traitlets
from torch import nn

from ..inspect.graph import Graph
from ..inspect.modules import check_module, join_path
from .base import BaseView
from .bundles import bundle

COMPACT_SCHEMA = "layerscope.graphview/1"
KINDS = ("module", "function", "input", "output")
BUILTIN_OVERLAYS = ("params",)


def compact_graph(d: dict[str, Any]) -> dict[str, Any]:
    """``Graph.to_dict()`` in a columnar form about 5x smaller, for the view's synced state.

    Tensors (``[shape, dtype]``) are interned in ``tensors`` and nodes refer to them by index;
    node columns are lists of equal length; edges are one flat ``[src, dst, out, in, ...]`` list
    (their shapes are the source node's outputs). Paths are stored only where the view cannot
    derive them: a module node stores its name within its group, a function none (it is
    ``group + ":" + name``), inputs and outputs their whole path; ``path_fix`` holds any node whose
    path differs from the derived one. Group parents are indices into ``groups.path``.

    >>> compact_graph(trace(model, x).to_dict())["schema"]   # doctest: +SKIP
    'layerscope.graphview/1'
    """
    tensors: list[list[Any]] = []
    tensor_ids: dict[tuple[tuple[int, ...], str], int] = {}

    def tid(t: list[Any]) -> int:
        key = (tuple(t[0]), t[1])
        i = tensor_ids.get(key)
        if i is None:
            i = tensor_ids[key] = len(tensors)
            tensors.append([list(t[0]), t[1]])
        return i

    groups = d["groups"]
    group_index = {g["path"]: i for i, g in enumerate(groups)}
    names: list[str] = []
    name_ids: dict[str, int] = {}

    def nid(s: str) -> int:
        i = name_ids.get(s)
        if i is None:
            i = name_ids[s] = len(names)
            names.append(s)
        return i

    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "kind",
            "name",
            "group",
            "p",
            "call",
            "gcall",
            "ins",
            "outs",
            "params",
            "calls",
            "inplace",
        )
    }
    path_fix: dict[str, str] = {}
    pshapes: dict[str, Any] = {}
    for n in d["nodes"]:
        kind = n["kind"]
        group = n["group"]
        gi = group_index.get(group, -1) if group is not None else -1
        if group is not None and gi < 0:  # a group the trace did not list: keep the path whole
            path_fix[str(n["id"])] = n["path"]
        if kind == "module":
            g = group or ""
            local = n["path"][len(g) + 1 :] if g and n["path"].startswith(g + ".") else n["path"]
            if join_path(g, local) != n["path"]:
                path_fix[str(n["id"])] = n["path"]
            p = local
        elif kind == "function":
            p = ""
            if f"{group or ''}:{n['name']}" != n["path"]:
                path_fix[str(n["id"])] = n["path"]
        else:
            p = n["path"]
        cols["kind"].append(KINDS.index(kind))
        cols["name"].append(nid(n["name"]))
        cols["group"].append(gi)
        cols["p"].append(p)
        cols["call"].append(n["call"])
        cols["gcall"].append(n.get("group_call", 0))
        cols["ins"].append([tid(t) for t in n["inputs"]])
        cols["outs"].append([tid(t) for t in n["outputs"]])
        cols["params"].append(n["params"])
        cols["calls"].append(n["calls"])
        cols["inplace"].append(1 if n["inplace"] else 0)
        if n.get("param_shapes"):
            pshapes[str(n["id"])] = n["param_shapes"]
    edges: list[int] = []
    for e in d["edges"]:
        edges += (e["src"], e["dst"], e["out"], e["in"])
    return {
        "schema": COMPACT_SCHEMA,
        "summary": d["summary"],
        "tensors": tensors,
        "names": names,
        "nodes": {**cols, "pshapes": pshapes, "path_fix": path_fix},
        "edges": edges,
        "groups": {
            "path": [g["path"] for g in groups],
            "class": [g["class"] for g in groups],
            "parent": [
                group_index.get(g["parent"], -1) if g["parent"] is not None else -1 for g in groups
            ],
            "params": [g["params"] for g in groups],
            "calls": [
                [
                    [[tid(t) for t in c["inputs"]], [tid(t) for t in c["outputs"]]]
                    for c in g["calls"]
                ]
                for g in groups
            ],
        },
        "repeats": [
            {"parent": r["parent"], "paths": r["paths"], "class": r["class"], "label": r["label"]}
            for r in d["repeats"]
        ],
        "shared": d.get("shared", []),
        "tied": d.get("tied", []),
    }


def compact_traced(g: Graph) -> dict[str, Any]:
    """``compact_graph(g.to_dict())`` made straight from the :class:`Graph`, without the
    intermediate dicts: at 48 transformer blocks (9,800 nodes) ``to_dict`` alone took 0.2-0.3 s
    of ``ls.explore``'s first display, the compaction from it another 20 ms; this takes ~30 ms.

    >>> compact_traced(trace(model, x)) == compact_graph(trace(model, x).to_dict())  # doctest: +SKIP
    True
    """
    dtypes: dict[torch.dtype, str] = {}
    tensors: list[list[Any]] = []
    # keyed by the (torch.Size, dtype) pairs themselves: a torch.Size hashes as its tuple
    tensor_ids: dict[tuple[Any, ...], int] = {}

    def tid(meta: tuple[Any, ...]) -> int:
        i = tensor_ids.get(meta)
        if i is None:
            shape, dtype = meta
            name = dtypes.get(dtype)
            if name is None:
                name = dtypes[dtype] = str(dtype).removeprefix("torch.")
            i = tensor_ids[meta] = len(tensors)
            tensors.append([list(shape), name])
        return i

    group_index = {grp.path: i for i, grp in enumerate(g.groups)}
    names: list[str] = []
    name_ids: dict[str, int] = {}
    kinds = {k: i for i, k in enumerate(KINDS)}
    kind_col: list[int] = []
    name_col: list[int] = []
    group_col: list[int] = []
    p_col: list[str] = []
    call_col: list[int] = []
    gcall_col: list[int] = []
    ins_col: list[list[int]] = []
    outs_col: list[list[int]] = []
    params_col: list[int] = []
    calls_col: list[int] = []
    inplace_col: list[int] = []
    path_fix: dict[str, str] = {}
    pshapes: dict[str, Any] = {}
    shared = g.shared
    for n in g.nodes:
        kind, group, path = n.kind, n.group, n.path
        gi = group_index.get(group, -1) if group is not None else -1
        if group is not None and gi < 0:  # a group the trace did not list: keep the path whole
            path_fix[str(n.id)] = path
        if kind == "module":
            grp = group or ""
            local = path[len(grp) + 1 :] if grp and path.startswith(grp + ".") else path
            if join_path(grp, local) != path:
                path_fix[str(n.id)] = path
            p = local
        elif kind == "function":
            p = ""
            if f"{group or ''}:{n.name}" != path:
                path_fix[str(n.id)] = path
        else:
            p = path
        ni = name_ids.get(n.name)
        if ni is None:
            ni = name_ids[n.name] = len(names)
            names.append(n.name)
        kind_col.append(kinds[kind])
        name_col.append(ni)
        group_col.append(gi)
        p_col.append(p)
        call_col.append(n.call)
        gcall_col.append(n.group_call)
        ins_col.append([tid(t) for t in n.inputs])
        outs_col.append([tid(t) for t in n.outputs])
        params_col.append(n.params)
        calls_col.append(shared.get(path, 1) if kind == "module" else 1)
        inplace_col.append(1 if n.inplace else 0)
        if n.param_shapes:
            pshapes[str(n.id)] = {k: list(v) for k, v in n.param_shapes.items()}
    edges: list[int] = []
    for e in g.edges:
        edges += (e.src, e.dst, e.out, e.inp)
    return {
        "schema": COMPACT_SCHEMA,
        "summary": dict(g.summary),
        "tensors": tensors,
        "names": names,
        "nodes": {
            "kind": kind_col,
            "name": name_col,
            "group": group_col,
            "p": p_col,
            "call": call_col,
            "gcall": gcall_col,
            "ins": ins_col,
            "outs": outs_col,
            "params": params_col,
            "calls": calls_col,
            "inplace": inplace_col,
            "pshapes": pshapes,
            "path_fix": path_fix,
        },
        "edges": edges,
        "groups": {
            "path": [grp.path for grp in g.groups],
            "class": [grp.cls for grp in g.groups],
            "parent": [
                group_index.get(grp.parent, -1) if grp.parent is not None else -1
                for grp in g.groups
            ],
            "params": [grp.params for grp in g.groups],
            "calls": [
                [[[tid(t) for t in i], [tid(t) for t in o]] for i, o in grp.calls]
                for grp in g.groups
            ],
        },
        "repeats": [
            {"parent": r.parent, "paths": list(r.paths), "class": r.cls, "label": r.label}
            for r in g.repeats
        ],
        "shared": [{"path": p, "calls": c} for p, c in g.shared.items()],
        "tied": [list(t) for t in g.tied],
    }


def graph_to_json(value: dict[str, Any], _widget: Any) -> str:
    """The synced form of a ``_graph`` trait: its JSON text. ipywidgets walks every list and dict
    of a state for binary buffers before sending it (38 ms for the 9,800-node graph of a 48-block
    transformer, on the first display); a string it passes over. The view parses it once."""
    return json.dumps(value, separators=(",", ":"))


def graph_from_json(value: Any, _widget: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


GRAPH_SYNC = {"sync": True, "to_json": graph_to_json, "from_json": graph_from_json}


def params_overlay(d: dict[str, Any] | Graph) -> dict[str, float]:
    """Parameter count of every module that has parameters: leaf modules and groups (from a
    :class:`Graph` or its ``to_dict()``)."""
    out: dict[str, float] = {}
    if isinstance(d, Graph):
        for n in d.nodes:
            if n.kind == "module" and n.params:
                out[n.path] = float(n.params)
        for grp in d.groups:
            if grp.params:
                out[grp.path] = float(grp.params)
        return out
    for n in d["nodes"]:
        if n["kind"] == "module" and n["params"]:
            out[n["path"]] = float(n["params"])
    for g in d["groups"]:
        if g["params"]:
            out[g["path"]] = float(g["params"])
    return out


def _check_overlay(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise TypeError(
            f"overlay must be a dict of module path -> number (e.g. {{'layer1.0.conv1': 0.5}}) or one of "
            f"{list(BUILTIN_OVERLAYS)}; got {type(value).__name__}"
        )
    out: dict[str, float] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise TypeError(
                f"overlay keys must be module paths (str); got {k!r} ({type(k).__name__})"
            )
        if hasattr(v, "item") and callable(v.item):  # 0-d tensors and numpy scalars
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"overlay[{k!r}] must be a number; got {v!r} ({type(v).__name__})")
        f = float(v)
        # JSON has no NaN/Inf: keep them as strings the view shows as such.
        out[k] = f if math.isfinite(f) else str(f)  # type: ignore[assignment]
    return out


class GraphView(BaseView):
    """The layer graph of one traced forward pass: collapsible module groups, search, selection.

    Traits: ``selected`` (module path of the selected node; set it to select, reveal and centre
    a node), ``search`` (the search box: substring, or ``/regex/``), ``overlay`` (module path ->
    number, coloured with a legend), ``overlay_label``, ``expanded`` (paths of open groups, and
    ``"*" + first member path`` for each repeat shown as its members instead of one "x N" block;
    ``None`` lets the view choose the deepest start that draws at most 60 nodes), ``height``.

    A function node's path is ``group + ":" + op`` (``"layer1.0:add"``), with ``"#k"`` added for
    its k-th call after the first (``"layer1.0:add#1"``); a module called twice is one path.

    >>> g = ls.graph(model, x)                                   # doctest: +SKIP
    >>> g.observe(lambda c: print(c["new"]), names="selected")   # doctest: +SKIP
    >>> g.selected = "layer1.0.conv1"                            # doctest: +SKIP
    """

    _esm = bundle("graph")

    _graph = traitlets.Dict().tag(**GRAPH_SYNC)
    selected = traitlets.Unicode("").tag(sync=True)
    search = traitlets.Unicode("").tag(sync=True)
    overlay = traitlets.Dict().tag(sync=True)
    overlay_label = traitlets.Unicode("").tag(sync=True)
    expanded = traitlets.List(traitlets.Unicode(), allow_none=True, default_value=None).tag(
        sync=True
    )
    height = traitlets.Int(600).tag(sync=True)
    # Set by the view after its first paint: {"ms": render() to painted, "nodes": drawn}.
    _rendered = traitlets.Dict().tag(sync=True)

    graph: Any = None  # the traced layerscope.inspect.Graph

    @traitlets.validate("overlay")
    def _valid_overlay(self, proposal: Any) -> dict[str, float]:
        return _check_overlay(proposal["value"])

    @traitlets.validate("height")
    def _valid_height(self, proposal: Any) -> int:
        h = proposal["value"]
        if h < 150:
            raise traitlets.TraitError(f"height must be at least 150 pixels; got {h}")
        return h

    def _describe(self) -> list[str]:
        s = self._graph.get("summary", {})
        if not s:
            return super()._describe()
        return [f"model {s['model']}", f"{s['nodes']} nodes", f"{s['params']:,} parameters"]

    def paths(self) -> list[str]:
        """Every selectable path: module and group paths, and function nodes' paths."""
        g = self._graph
        return list(dict.fromkeys([*(g.get("groups", {}).get("path", [])), *_node_paths(g)]))


def _node_paths(g: dict[str, Any]) -> list[str]:
    nodes = g.get("nodes")
    if not nodes:
        return []
    gpaths = g["groups"]["path"]
    out = []
    for i, kind in enumerate(nodes["kind"]):
        fix = nodes["path_fix"].get(str(i))
        if fix is not None:
            out.append(fix)
            continue
        grp = gpaths[nodes["group"][i]] if nodes["group"][i] >= 0 else ""
        if KINDS[kind] == "module":
            out.append(join_path(grp, nodes["p"][i]))
        elif KINDS[kind] == "function":
            out.append(f"{grp}:{g['names'][nodes['name'][i]]}")
        else:
            out.append(nodes["p"][i])
    return out


def graph(
    model: nn.Module,
    *inputs: Any,
    overlay: str | dict[str, Any] | None = None,
    depth: int | None = None,
    height: int = 600,
    **kwargs: Any,
) -> GraphView:
    """Trace ``model(*inputs, **kwargs)`` once and show its layer graph.

    ``overlay``: ``"params"`` colours modules by parameter count, or a dict module path ->
    number (gradient norm, latency...). ``depth``: how many levels of modules start open (1: the
    model's direct children; None: the deepest level that shows at most about 60 nodes).

    >>> g = ls.graph(model, torch.randn(1, 3, 32, 32), overlay="params")   # doctest: +SKIP
    >>> g.selected                                                         # doctest: +SKIP
    'layer1.0.conv1'
    """
    check_module(model)
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 1):
        raise ValueError(
            f"depth must be a positive int (1: the model's direct children) or None; got {depth!r}"
        )
    if isinstance(overlay, str) and overlay not in BUILTIN_OVERLAYS:
        raise ValueError(
            f"overlay={overlay!r} is not built in; use one of {list(BUILTIN_OVERLAYS)} or pass a dict path -> number"
        )
    # Through the package's lazy attribute: importing the submodule layerscope.inspect.trace
    # directly would rebind ls.inspect.trace to that module for everyone.
    from ..inspect import trace

    traced = trace(model, *inputs, **kwargs)  # type: ignore[operator]
    overlay_values: dict[str, Any] = {}
    label = ""
    if overlay == "params":
        overlay_values, label = params_overlay(traced), "parameters"
    elif overlay is not None:
        overlay_values, label = _check_overlay(overlay), "overlay"
    expanded = None
    if depth is not None:
        expanded = [
            g.path for g in traced.groups if (0 if g.path == "" else g.path.count(".") + 1) < depth
        ]
    view = GraphView(
        _graph=compact_traced(traced),
        overlay=overlay_values,
        overlay_label=label,
        expanded=expanded,
        height=height,
    )
    view.graph = traced
    return view
