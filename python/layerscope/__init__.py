"""layerscope: look inside a live PyTorch model from a notebook cell.

>>> import layerscope as ls
>>> view = ls.heatmap(model.fc.weight)      # doctest: +SKIP

Public names are imported lazily, so ``import layerscope`` stays cheap and the kernel-side
modules (``layerscope.inspect``, ``layerscope.record``, ``layerscope.attribution``) never pull in
widget code.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> "module:attribute" (attribute "" means the module itself)
_LAZY = {
    "inspect": "layerscope.inspect:",
    "wire": "layerscope.wire:",
    "attribute": "layerscope.attribution:attribute",
    "Recorder": "layerscope.record:Recorder",
    "heatmap": "layerscope.widgets.heatmap:heatmap",
    "TensorView": "layerscope.widgets.heatmap:TensorView",
    "graph": "layerscope.widgets.graph:graph",
    "GraphView": "layerscope.widgets.graph:GraphView",
    "weights": "layerscope.widgets.weights:weights",
    "activations": "layerscope.widgets.activations:activations",
    "saliency": "layerscope.widgets.saliency:saliency",
    "timeline": "layerscope.widgets.timeline:timeline",
    "projection": "layerscope.widgets.projection:projection",
    "ProjectionView": "layerscope.widgets.projection:ProjectionView",
    "units": "layerscope.widgets.units:units",
    "UnitsView": "layerscope.widgets.units:UnitsView",
    "explore": "layerscope.widgets.explore:explore",
    "export_html": "layerscope.export:export_html",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'layerscope' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
