"""``ls.explore``: the graph, weights, activations (and training history) of one model, linked.

Clicking a layer in the graph selects it everywhere: its first parameter in the weights view,
its output in the activations view, and its history in the timeline when a recorder is given.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from torch import nn

from ..inspect.modules import check_module
from .activations import ActivationView
from .graph import GraphView
from .graph import graph as make_graph
from .weights import WeightsView


def first_parameter(model: nn.Module, path: str) -> str | None:
    """The parameter (or buffer) a module path stands for in the weights view: its own first
    one (``path.weight`` before ``path.bias``), else the first of its descendants."""
    prefix = f"{path}." if path else ""
    own = [
        n
        for n, _ in model.named_parameters()
        if n.startswith(prefix) and "." not in n[len(prefix) :]
    ]
    if own:
        return own[0]
    deeper = [n for n, _ in model.named_parameters() if n.startswith(prefix)]
    return deeper[0] if deeper else None


class ExploreView(widgets.VBox):
    """A layout of linked views; ``selected`` is the module path selected in the graph."""

    def __init__(
        self,
        graph: GraphView,
        weights: WeightsView,
        activations: ActivationView | None,
        timeline: Any = None,
        model: nn.Module | None = None,
    ) -> None:
        self.graph = graph
        self.weights = weights
        self.activations = activations
        self.timeline = timeline
        self._model = model
        lower = [w for w in (weights, activations) if w is not None]
        for w in lower:
            w.layout = widgets.Layout(flex="1 1 0", min_width="360px")
        children: list[widgets.Widget] = [
            graph,
            widgets.HBox(lower, layout=widgets.Layout(width="100%", flex_flow="row wrap")),
        ]
        if timeline is not None:
            children.append(timeline)
        super().__init__(children)
        graph.observe(self._follow, names="selected")

    @property
    def selected(self) -> str:
        return self.graph.selected

    @selected.setter
    def selected(self, path: str) -> None:
        self.graph.selected = path

    def _follow(self, change: dict[str, Any]) -> None:
        path = change["new"]
        if not path or self._model is None:
            return
        param = first_parameter(self._model, path)
        if param is not None:
            self.weights.selected = param
        if self.activations is not None:
            self.activations.layer = path
        if self.timeline is not None and hasattr(self.timeline, "layer"):
            layers = getattr(self.timeline, "layers", None)
            if param is not None and (layers is None or param in layers):
                self.timeline.layer = param


def explore(model: nn.Module, *inputs: Any, recorder: Any = None, height: int = 520) -> ExploreView:
    """The graph of ``model`` on ``inputs`` with its weights and activations below, linked: click a
    layer and every panel follows. With ``recorder`` (an ``ls.Recorder`` or a stored run), the
    training timeline follows too.

    >>> view = ls.explore(model, x, recorder=rec)   # doctest: +SKIP
    >>> view.selected = "layer1.0.conv1"            # doctest: +SKIP
    """
    check_module(model)
    g = make_graph(model, *inputs, height=height)
    w = WeightsView(model, height=max(240, height // 2))
    a = ActivationView(model, *inputs, height=max(240, height // 2)) if inputs else None
    t = None
    if recorder is not None:
        from .timeline import timeline

        t = timeline(recorder)
    return ExploreView(g, w, a, t, model=model)
