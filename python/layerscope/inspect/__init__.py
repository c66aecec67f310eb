"""Kernel-side inspection of live models: torch and numpy only, never widget code.

>>> from layerscope import inspect
>>> acts = inspect.capture(model, x, layers=["layer1.0.conv1"])   # doctest: +SKIP
>>> col = inspect.collect(model, (x, y), layers=["layer1"])        # doctest: +SKIP
"""

import importlib

from .capture import capture

# imported here, not on first use: a lazy import would be undone by any later
# "from layerscope.inspect.collect import ..." (it binds the package attribute "collect" to the
# module), and ls.inspect.collect(...) after ls.units(...) would call a module.
from .collect import Collected, collect
from .modules import find_module, module_paths
from .restore import preserved
from .stats import tensor_stats

__all__ = [
    "Collected",
    "capture",
    "collect",
    "find_module",
    "module_paths",
    "preserved",
    "tensor_stats",
]


def __getattr__(name: str):
    # trace / Graph / TraceError live in their own modules, imported on first use.
    if name in ("trace", "trace_keeping", "Graph", "TraceError"):
        # import_module, not "from . import trace": that would call this __getattr__ again.
        # Importing the submodule binds the package attribute "trace" to the module, so rebind
        # it to the function afterwards.
        _trace = importlib.import_module(".trace", __name__)
        globals()["trace"] = _trace.trace
        globals()["trace_keeping"] = _trace.trace_keeping
        globals()["Graph"] = _trace.Graph
        globals()["TraceError"] = _trace.TraceError
        return globals()[name]
    raise AttributeError(f"module 'layerscope.inspect' has no attribute {name!r}")
