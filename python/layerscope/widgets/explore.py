"""``ls.explore``: ONE workspace anywidget whose front end links the graph, weights, activations
and training history of a model around one selection (layer, sample, epoch, class).

The links live in the front end (DESIGN.md, "The workspace"). The kernel holds headless views
(``relay.py``): a ``WeightsView``, an ``ActivationView`` and a timeline ``ScrubberView`` that talk
to the browser through this widget's comm. Clicking a layer in the graph selects it in the front
end; each panel then shows that layer at once from the baked state (``_baked``) and, with a kernel,
asks its headless view for the full-resolution data, which arrives as that view's own state
updates. The baked state holds every layer's panels at reduced resolution within ``budget`` bytes,
so an exported page stays linked; a panel whose layer was not baked says so in words.

Baking order (what fits the budget first): the selected layer, then, with a recorder, layers by
weight change over training (largest first), then the remaining layers in model order. Each layer
brings its weights overview (its first parameter, ``WEIGHT_BAKE`` bytes), its activation
(``ACT_BAKE`` bytes with thumbnails) and its timeline frames (``FRAME_BAKE`` bytes); with
``data=``, its projection and units panels (their own bake budgets). Those need the layer's pass
over the data: they are baked for every layer when the data has at most
``DATASET_BAKE_SAMPLES`` samples (or was read once for every layer, a generator), else for the
selected layer only, and the other layers' panels say why.

First display: the constructor captures the selected layer's activations alone (the layer list
comes from the trace) and lists the parameters without their statistics; the table's statistics,
every layer's capture and the bake of the other layers run once the cell that made the view has
ended, in slices on the kernel's event loop (a cell run meanwhile waits for one slice), or at
once in ``settle`` (before every export). A layer shown before then is captured on its own, so a
panel never shows another layer's data.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import traitlets
from torch import nn

from ..inspect.modules import ModulePathError, check_module, find_module, module_paths
from ..inspect.threads import model_threads
from ..record import History, parse_budget
from .activations import ActivationView
from .base import BaseView
from .bundles import bundle
from .graph import GRAPH_SYNC, _check_overlay, compact_traced, params_overlay
from .relay import RelayComm, headless, panel_state
from .weights import WeightsView

DEFAULT_BUDGET = "6MB"
# Bytes of one layer's baked panels (each a reduced overview; live views fetch full tiles).
WEIGHT_BAKE = 48 * 1024
ACT_BAKE = 32 * 1024
THUMB_BAKE = 32 * 1024
FRAME_BAKE = 192 * 1024
# Bytes of the live panels' own overviews (tiles refine them on zoom).
LIVE_BAKE = 256 * 1024

# The traits of each panel that change with the layer (baked per layer); the rest is sent once.
WEIGHT_KEYS = ["selected", "title", "arrangement", "axes", "index", "_meta", "_base", "_hist"]
ACT_KEYS = ["layer", "batch", "channel", "title", "axes", "index", "_act", "_thumbs"]
ACT_KEYS += ["_meta", "_base", "_hist"]
FRAME_KEYS = ["layer", "frames", "frames_tail"]
# What the dataset panels' state holds per layer (the rest, e.g. the selected samples, is shared).
PROJECTION_KEYS = ["layer", "_points", "_arrays", "_status", "_frames", "_thumbs", "_notes"]
UNITS_KEYS = ["layer", "unit", "_table", "_card", "_baked"]
DATASET_BAKE_SAMPLES = 20_000
# The dataset panels' saved inputs per layer: hover thumbnails, and the cards of the first units
# (with a kernel, any point's input and any unit's card come on demand).
PROJECTION_BAKE = 64 * 1024
UNITS_BAKE = 64 * 1024


def parameter_map(model: nn.Module, params: list[tuple[str, Any]] | None = None) -> dict[str, str]:
    """Module path -> the parameter it stands for in the weights panel: its own first one
    (``path.weight`` before ``path.bias``), else the first of its descendants. One pass over the
    parameters (a lookup per path would be O(paths x parameters): seconds on a 12-block GPT).
    ``params``: ``list(model.named_parameters())`` if the caller has it.

    >>> parameter_map(nn.Sequential(nn.Linear(2, 2)))
    {'0': '0.weight', '': '0.weight'}
    """
    own: dict[str, str] = {}
    out: dict[str, str] = {}
    for name, _ in params if params is not None else model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        if owner not in own or (leaf == "weight" and own[owner].rpartition(".")[2] != "weight"):
            own[owner] = name
        # the owner and its ancestors, nearest first: once one is mapped, so are the rest
        prefix = owner
        while prefix not in out:
            out[prefix] = name
            if not prefix:
                break
            prefix = prefix.rpartition(".")[0]
    out.update(own)
    return out


def first_parameter(model: nn.Module, path: str) -> str | None:
    """The parameter a module path stands for in the weights panel (see ``parameter_map``).

    >>> first_parameter(nn.Sequential(nn.Linear(2, 2)), "0")
    '0.weight'
    """
    return parameter_map(model).get(path)


def _check_saliency(options: Any, inputs: tuple[Any, ...]) -> None:
    if not isinstance(options, dict):
        raise TypeError(
            "saliency= takes the options of ls.saliency as a dict, e.g. "
            f"saliency={{'method': 'integrated_gradients'}}; got {type(options).__name__}"
        )
    if len(inputs) != 1:
        raise ValueError(
            f"saliency= attributes one input tensor; ls.explore got {len(inputs)} inputs. "
            "Pass the model's one input, or use ls.saliency(model, x, ...) on its own."
        )


class RecorderMismatch(ValueError):
    """The recorder records another model than the one given to ``ls.explore``."""


def check_recorder(
    model: nn.Module, rec: Any, params: list[tuple[str, Any]] | None = None
) -> History:
    """``rec`` if it is a run of ``model``: a live Recorder of this very model, or a stored run
    whose recorded parameters all exist in ``model`` with the same shapes. ``params``:
    ``list(model.named_parameters())`` if the caller has it."""
    if not isinstance(rec, History):
        raise TypeError(
            "recorder must be an ls.Recorder or a run from ls.Recorder.open('runs/NAME'); "
            f"got {type(rec).__name__}"
        )
    other = getattr(rec, "model", None)
    if isinstance(other, nn.Module) and other is not model:
        raise RecorderMismatch(
            f"the recorder records another model ({type(other).__name__} at {id(other):#x}) than "
            f"the one given to ls.explore ({type(model).__name__} at {id(model):#x}); pass "
            "the model the recorder was made with: ls.Recorder(model, ...)"
        )
    named = params if params is not None else model.named_parameters()
    shapes = {n: tuple(p.shape) for n, p in named}
    missing = [n for n in rec.parameters if n not in shapes]
    if missing:
        raise RecorderMismatch(
            f"the run records parameters that {type(model).__name__} does not have: "
            f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}; "
            f"{type(model).__name__} has {', '.join(list(shapes)[:5])}, ...: "
            "open the run of this model"
        )
    if rec.epochs:
        latest = rec.epochs[-1]
        held = rec.exact_shapes(latest)  # in memory: no Snapshot a parameter (3,500 at 48 blocks)
        for n in rec.parameters:
            try:
                shape = (
                    held[n] if n in held else tuple(rec.snapshot(n, latest, exact=True).array.shape)
                )
            except Exception:  # thinned or reduced: the names agree, which is what we can check
                continue
            if shape != shapes[n]:
                raise RecorderMismatch(
                    f"the run's {n} has shape {shape}, the model's {shapes[n]}: "
                    "this run was recorded from a different model"
                )
    return rec


_END = object()
# Workspaces that baked in slices after a cell (``settle_all``).
_SLICED: weakref.WeakSet[ExploreView] = weakref.WeakSet()
_BORN = itertools.count(1)  # workspaces in the order they were made


def settle_all() -> None:
    """Finish the bake under way of every workspace that bakes in slices after its cells, and
    send its whole state again: an executed export's last cell runs this (nbclient keeps only
    what a cell sends while it runs, and a bake's slices run between cells)."""
    for view in list(_SLICED):
        if view.comm is not None:
            view.settle()
            view.send_state()


def _kernel_loop() -> Any:
    """The running ipykernel's event loop when called on its main thread, else None (a plain
    process, a terminal IPython, a cell in a subshell thread)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    ip = get_ipython()
    loop = getattr(getattr(ip, "kernel", None), "io_loop", None)
    if loop is None or threading.current_thread() is not threading.main_thread():
        return None
    return loop


def _nbytes(state: dict[str, Any]) -> int:
    return sum(memoryview(b).nbytes for b in state["buffers"]) + len(str(state["state"]))


class ExploreView(BaseView):
    """The workspace: graph, weights (table + heatmap), activations and timeline of one model,
    linked in the front end around one selection.

    Synced traits (observe them, set them, ``traitlets.link``/``jslink`` them): ``selected``
    (module path; "" is the root), ``sample`` (index into the inputs' batch), ``epoch`` (a
    recorded epoch), ``target`` (a class index, or None). Setting a path that does not exist
    raises ``ModulePathError`` listing close matches; an epoch that was not recorded is clamped
    to the nearest with a warning.

    >>> ex = ls.explore(model, x, recorder=rec)       # doctest: +SKIP
    >>> ex.selected = "conv2"                          # doctest: +SKIP
    """

    _esm = bundle("explore")

    selected = traitlets.Unicode("").tag(sync=True)
    sample = traitlets.Int(0).tag(sync=True)
    epoch = traitlets.Int(0).tag(sync=True)
    target = traitlets.Int(None, allow_none=True).tag(sync=True)
    # The dataset sample (an index into data=) picked in the projection panel, or None: the
    # saliency panel shows that sample's input while it is set, else inputs[sample].
    data_sample = traitlets.Int(None, allow_none=True).tag(sync=True)
    height = traitlets.Int(520).tag(sync=True)
    # The graph's colouring: module path -> number (default: weight change over training with a
    # recorder, else parameter count), and its legend's label.
    overlay = traitlets.Dict().tag(sync=True)
    overlay_label = traitlets.Unicode("").tag(sync=True)

    _graph = traitlets.Dict().tag(**GRAPH_SYNC)
    # module path -> {"param": its weights-panel parameter or None, "recorded": bool (has
    # recorded parameters), "act": bool (has a captured output)}
    _layers = traitlets.Dict().tag(sync=True)
    # panel name -> {"channel", "state", "buffer_paths", "buffers"}: what does not change with
    # the layer (the table, the layer lists), sent once.
    _panels = traitlets.Dict().tag(sync=True)
    # {"weights": {param: panel state}, "acts": {layer: ...}, "frames": {layer: ...},
    #  "budget", "used", "left_out": {"weights": [...], ...}}
    _baked = traitlets.Dict().tag(sync=True)
    # The recorded epochs (the front end clamps with them too).
    _epochs = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(
        self,
        model: nn.Module,
        *inputs: Any,
        recorder: Any = None,
        budget: int | str = DEFAULT_BUDGET,
        height: int = 520,
        selected: str | None = None,
        saliency: dict[str, Any] | None = None,
        data: Any = None,
        labels: Any = None,
        **forward_kwargs: Any,
    ) -> None:
        t0 = time.perf_counter()
        # The build allocates ~10 small objects per traced op and frees few: a collection of
        # the oldest generation, walking every object of the kernel, fell inside it at random
        # (+0.1-0.4 s at 48 blocks). Tensors are freed by reference counting either way; the
        # cyclic GC runs again after (as in ``trace``).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with model_threads(check_module(model)):
                self._make(
                    model,
                    inputs,
                    recorder=recorder,
                    budget=budget,
                    height=height,
                    selected=selected,
                    saliency=saliency,
                    data=data,
                    labels=labels,
                    forward_kwargs=forward_kwargs,
                )
        finally:
            if gc_was_enabled:
                gc.enable()
        self.build_ms = (time.perf_counter() - t0) * 1000.0

    def _make(
        self,
        model: nn.Module,
        inputs: tuple[Any, ...],
        *,
        recorder: Any,
        budget: int | str,
        height: int,
        selected: str | None,
        saliency: dict[str, Any] | None,
        data: Any,
        labels: Any,
        forward_kwargs: dict[str, Any],
    ) -> None:
        self._model = check_module(model)
        if saliency is not None:
            _check_saliency(saliency, inputs)
        params = list(model.named_parameters())  # one walk of the modules serves two uses
        self._rec = check_recorder(model, recorder, params) if recorder is not None else None
        self.budget = parse_budget(budget)
        # Through the package's lazy attribute (see ls.graph): importing the submodule
        # layerscope.inspect.trace directly would rebind ls.inspect.trace to that module.
        from ..inspect import trace_keeping

        # once: a walk of 4,400 modules is ~3-10 ms
        named = list(model.named_modules(remove_duplicate=False))
        paths = [p for p, _ in named]
        if selected is not None and selected not in paths:
            find_module(model, selected)  # a ModulePathError naming close matches
        first = selected if selected is not None else self._default_layer(named)
        # The trace keeps the first layer's output: in eval mode (as capture runs) it is the
        # activation the panel shows first, without a forward of its own.
        evaluating = not any(m.training for _, m in named)
        keep = (first,) if inputs and evaluating else ()
        traced, kept = trace_keeping(model, inputs, forward_kwargs, keep)
        graph = compact_traced(traced)
        self.graph = traced
        self._paths = set(paths)
        self._param_of = parameter_map(model, params)
        super().__init__(height=height)
        self._relays: dict[str, RelayComm] = {}
        self._live = False  # forward panel messages only once the initial state is taken
        self._unsubscribe: Callable[[], None] | None = None
        self._unhook: Callable[[], None] | None = None
        panel_h = max(240, height // 2)
        with headless(self._forward, "weights", self._listening) as made:
            # The table's statistics (3,500 parameters at 48 blocks: ~0.1 s) follow after the
            # cell, with the bake; the first display lists the parameters.
            self.weights = WeightsView(model, height=panel_h, bake_budget=LIVE_BAKE, stats=False)
        self._relays["weights"] = made[-1]
        self.activations: ActivationView | None = None
        if inputs:
            # The first display captures the selected layer alone; every layer's activations
            # follow after the cell (``settle``), listed meanwhile from the trace.
            listed = [{"path": p, "shape": list(s)} for p, s in traced.layer_shapes().items()]
            with headless(self._forward, "acts", self._listening) as made:
                self.activations = ActivationView(
                    model,
                    *inputs,
                    layer=first,
                    listed=listed,
                    captured=kept,
                    height=panel_h,
                    bake_budget=LIVE_BAKE,
                    forward_kwargs=forward_kwargs,
                )
            self._relays["acts"] = made[-1]
        self.saliency: Any = None
        if saliency is not None:
            self._make_saliency(inputs, saliency)
        self.timeline: Any = None
        if self._rec is not None:
            from .timeline import TimelineView

            with headless(self._forward, "timeline", self._listening) as made:
                self.timeline = TimelineView(self._rec, curves=False)
            self._relays["scrub"] = self.timeline.scrubber.comm
            self._unsubscribe = self._watch_recorder()
        self.projection: Any = None
        self.units: Any = None
        if data is not None:
            self._make_dataset_panels(data, labels, first)
        self._graph = graph
        self._params_overlay = params_overlay(traced)
        # in a kernel the bake after the cell follows at once (in slices), else settle() does
        self._update_overlay(later=_kernel_loop() is not None)
        self._layers = self._layer_map(paths)
        self._epochs = list(self._rec.epochs) if self._rec is not None else []
        # The first display needs the selected layer's panels only: the rest of the bake runs
        # once the cell that made the view has ended (its output is on screen by then), or before
        # an export.
        self._bake(first, only_first=True)
        self._stale = True
        self._born = next(_BORN)
        self._unhook = self._hook_cells()
        with self.hold_trait_notifications():
            self.selected = first
            if self._epochs:
                self.epoch = self._epochs[-1]
        self._select_panels(first)
        self._panels = {name: self._static_state(name) for name in self._relays}
        self._live = True

    def _make_saliency(self, inputs: tuple[Any, ...], options: dict[str, Any]) -> None:
        """The saliency panel: ``ls.saliency(model, inputs[0], **options)`` made headless; its
        sample follows ``sample`` and its class ``target`` (both ways)."""
        from .saliency import saliency as make_saliency

        with headless(self._forward, "saliency", self._listening):
            self.saliency = make_saliency(self._model, inputs[0], **options)
        self._relays["saliency"] = self.saliency.comm  # its own comm, not a Layout's
        self.saliency.observe(self._saliency_retargeted, names="target")

    def _make_dataset_panels(self, data: Any, labels: Any, layer: str) -> None:
        """The dataset panels (issue 13's views) at ``layer``, made headless: a projection of
        the layer's per-sample representations and its per-unit statistics over ``data``. They
        follow the selected layer in the kernel (a pass over the data for each new layer, kept
        per layer); an exported page holds them for the layer selected when it was saved."""
        from ..inspect.batches import is_one_shot
        from ..inspect.collect import collect_every_layer
        from .projection import ProjectionView
        from .units import UnitsView

        if is_one_shot(data):
            # a generator is read once: one pass collects every leaf layer for both panels
            data, labels = collect_every_layer(self._model, data, layer, labels=labels), None
        # Each panel's relay is its view's own comm (the first widget made inside can be a
        # Layout: messages from the panel then went to the Layout, and clicks never arrived).
        with headless(self._forward, "projection", self._listening):
            self.projection = ProjectionView(
                self._model, data, layer=layer, labels=labels, bake_budget=PROJECTION_BAKE
            )
        self._relays["projection"] = self.projection.comm
        with headless(self._forward, "units", self._listening):
            self.units = UnitsView(
                self._model, data, layer=layer, labels=labels, bake_budget=UNITS_BAKE
            )
        self._relays["units"] = self.units.comm

    def _saliency_retargeted(self, change: Any) -> None:
        targets, row = change["new"], self.saliency.batch
        if 0 <= row < len(targets) and isinstance(targets[row], int):
            self.target = targets[row]

    @traitlets.observe("target")
    def _on_target(self, change: Any) -> None:
        sal = self.saliency
        value = change["new"]
        if sal is None or value is None:
            return
        # the row shown: inputs[sample], or a picked dataset sample (see data_sample)
        row = sal.batch
        current = sal.target[row] if row < len(sal.target) else None
        if current != value:
            sal.handle_request("retarget", {"batch": row, "target": int(value)})

    # -- validation ------------------------------------------------------------------------------

    @traitlets.validate("overlay")
    def _valid_overlay(self, proposal: Any) -> dict[str, float]:
        return _check_overlay(proposal["value"])

    _overlay_pending = False  # the weight change is left to the bake after the cell
    _overlay_updating = False

    @traitlets.observe("overlay", "overlay_label")
    def _overlay_set(self, _change: Any) -> None:
        if not self._overlay_updating:  # the user's overlay: the bake leaves it alone
            self._overlay_pending = False

    def _update_overlay(self, *, later: bool = False) -> None:
        """Weight change over training (first to last epoch) with two or more recorded epochs,
        else parameter count. ``later`` (the first display in a kernel): the weight change is
        the bake's first step after the cell, its label says "computing…" until then (reading
        two epochs' parameters took ~45 ms of a 48-block transformer's first display)."""
        self._overlay_updating = True
        try:
            self._set_overlay(later)
        finally:
            self._overlay_updating = False

    def _set_overlay(self, later: bool) -> None:
        rec = self._rec
        if rec is not None and len(rec.epochs) > 1:
            if getattr(rec, "axis", "epoch") == "step":  # epoch() every N steps: say the steps
                steps = rec.epoch_steps()
                label = f"weight change, step {steps[0]} to {steps[-1]}"
            else:
                label = f"weight change, epoch {rec.epochs[0]} to {rec.epochs[-1]}"
            if later:
                self.overlay = {}
                self.overlay_label = f"{label}: computing…"
                self._overlay_pending = True
                return
            self.overlay = dict(rec.layer_change(rec.epochs[0], rec.epochs[-1]))
            self.overlay_label = label
        else:
            self.overlay = self._params_overlay
            self.overlay_label = "parameters"
        self._overlay_pending = False

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: Any) -> str:
        path = proposal["value"]
        if path not in self._paths:
            find_module(self._model, path)  # ModulePathError with close matches
        return path

    @traitlets.validate("sample")
    def _valid_sample(self, proposal: Any) -> int:
        n = self._batch_size()
        value = int(proposal["value"])
        if n and not 0 <= value < n:
            raise traitlets.TraitError(
                f"sample {value} is outside the inputs' batch of {n} (0..{n - 1})"
            )
        return value

    @traitlets.validate("epoch")
    def _valid_epoch(self, proposal: Any) -> int:
        from .timeline import clamp_epoch

        return clamp_epoch(self._epochs, int(proposal["value"]))

    def _batch_size(self) -> int:
        a = self.activations
        return int(a._act.get("n", 0)) if a is not None and a._act else 0

    # -- the kernel follows the selection: its headless panels send full-resolution data ------

    @traitlets.observe("selected")
    def _on_selected(self, change: Any) -> None:
        if self._live:
            self._select_panels(change["new"])
            self._moved = True
            # Every panel's data for it has gone out: the front end can tell (and time) it.
            self.send({"ls_followed": change["new"]})

    @traitlets.validate("data_sample")
    def _valid_data_sample(self, proposal: Any) -> int | None:
        value = proposal["value"]
        if value is None:
            return None
        if self.projection is None:
            raise traitlets.TraitError(
                "data_sample picks a sample of data=: make the workspace with "
                "ls.explore(model, x, data=..., saliency={...})"
            )
        n = self.projection.collected().n
        if not 0 <= int(value) < n:
            raise traitlets.TraitError(f"data_sample {value} is outside the data's 0..{n - 1}")
        return int(value)

    @traitlets.observe("data_sample")
    def _on_data_sample(self, change: Any) -> None:
        """The saliency panel follows the picked dataset sample (its input from data=)."""
        sal, i = self.saliency, change["new"]
        if sal is None:
            return
        if i is None:
            sal.batch = self.sample
            return
        try:
            x = self.projection.collected().sample(i)
            if x is None:
                raise ValueError(
                    f"dataset sample {i}'s input cannot be fetched again: the data is an "
                    "iterable; pass a tensor, (inputs, labels) or a DataLoader over a Dataset"
                )
            row = sal.show_input(x, label=f"dataset sample {i}")
            if isinstance(sal.target[row], int):
                self.target = sal.target[row]
        except (TypeError, ValueError, RuntimeError, IndexError) as exc:
            sal._error = f"saliency of dataset sample {i}: {exc}"

    @traitlets.observe("sample")
    def _on_sample(self, change: Any) -> None:
        self.data_sample = None  # a sample of the inputs replaces a picked dataset sample
        if self.activations is not None:
            self.activations.batch = change["new"]
        if self.saliency is not None:
            self.saliency.batch = change["new"]
            targets = self.saliency.target
            if change["new"] < len(targets) and isinstance(targets[change["new"]], int):
                self.target = targets[change["new"]]

    @traitlets.observe("epoch")
    def _on_epoch(self, change: Any) -> None:
        if self.timeline is not None:
            self.timeline.epoch = change["new"]

    def _select_panels(self, path: str) -> None:
        param = self._param_of.get(path)
        if param is not None:
            self.weights.selected = param
        if self.activations is not None:
            self.activations.layer = path
        if self.timeline is not None:
            self.timeline.layer = path
        for view in (self.projection, self.units):
            if view is not None and view.layer != path:
                try:
                    view.layer = path
                except Exception as exc:  # a layer the data cannot reach: said in the panel
                    view._error = f"{path or '(root)'}: {exc}"

    # -- the layer map and the bake --------------------------------------------------------------

    def _default_layer(self, named: list[tuple[str, nn.Module]] | None = None) -> str:
        """The first leaf module with parameters in model order (what a user clicks first),
        else the first module. ``named``: ``named_modules(remove_duplicate=False)``, if made."""
        seen: set[int] = set()
        fallback = ""
        # In module_paths order, stopping at the first: a module listed again under a second
        # path counts under its first only.
        if named is None:
            named = list(self._model.named_modules(remove_duplicate=False))
        for path, m in named:
            if path and not fallback:
                fallback = path
            if id(m) in seen:
                continue
            seen.add(id(m))
            leaf = next(m.children(), None) is None
            if path and leaf and next(m.parameters(recurse=False), None) is not None:
                return path
        return fallback

    def _order(self) -> list[str]:
        """Module paths in baking order: by weight change (largest first) with a recorder,
        then the rest in model order (leaves before their containers' siblings)."""
        paths = [p for p in module_paths(self._model) if p]
        if self._rec is not None and len(self._rec.epochs) > 1:
            change = self._rec.layer_change()
            ranked = sorted((p for p in paths if p in change), key=lambda p: -change[p])
            return list(dict.fromkeys([*ranked, *paths]))
        return paths

    def _layer_map(self, paths: list[str] | None = None) -> dict[str, list[Any]]:
        """What the page needs to route a click on each module without the kernel, as columns
        (a dict per module was ~440 KB of the 48-block workspace's first state, these ~250 KB):
        ``paths``; ``param``, the index in ``params`` of the parameter its weights panel shows
        first (-1: none); ``recorded``, 1 if the recorder keeps its frames."""
        recorded = set(self.timeline.scrubber.layers) if self.timeline is not None else set()
        paths = paths if paths is not None else module_paths(self._model)
        params: dict[str, int] = {}
        param = []
        for p in paths:
            name = self._param_of.get(p)
            param.append(-1 if name is None else params.setdefault(name, len(params)))
        return {
            "paths": paths,
            "params": list(params),
            "param": param,
            "recorded": [int(p in recorded) for p in paths],
        }

    def _bake(self, first: str, *, only_first: bool = False) -> None:
        """Every layer's panels at reduced resolution, in baking order, within the budget
        (``only_first``: the panels of ``first`` alone)."""
        for _ in self._bake_steps(first, only_first=only_first):
            pass

    def _bake_steps(self, first: str, *, only_first: bool = False) -> Iterator[None]:
        """``_bake`` in slices: it yields when the slice's time is up (``_slice_over``), with
        every panel back on the current selection, and sets ``_baked`` once every layer is
        done."""
        kinds = ["weights", "acts", "frames", "projection", "units"]
        baked: dict[str, dict[str, Any]] = {k: {} for k in kinds}
        left: dict[str, list[str]] = {k: [] for k in kinds}
        skipped: dict[str, set[str]] = {k: set() for k in kinds}  # left's keys, looked up
        failed: dict[str, dict[str, str]] = {"projection": {}, "units": {}}
        used = 0
        order = [first] if only_first else list(dict.fromkeys([first, *self._order()]))
        w, a, t = self.weights, self.activations, self.timeline
        captured = {d["path"] for d in a._layers} if a is not None else set()
        recorded = set(t.scrubber.layers) if t is not None else set()
        # The selected layer's dataset panels are always saved (over the budget if need be).
        dataset = self._dataset_layers(first, only_first)
        i = 0
        while True:
            saved = (w.bake_budget, a.bake_budget if a else 0, t.budget if t else 0)
            w.bake_budget = WEIGHT_BAKE
            if a is not None:
                a.bake_budget, a.thumb_budget = ACT_BAKE, THUMB_BAKE
            if t is not None:
                t.budget = FRAME_BAKE
            try:
                while i < len(order):
                    path = order[i]
                    i += 1
                    jobs = [
                        ("weights", self._param_of.get(path)),
                        ("acts", path if path in captured else None),
                        ("frames", path if path in recorded else None),
                        ("projection", path if path in dataset else None),
                        ("units", path if path in dataset else None),
                    ]
                    for kind, key in jobs:
                        if key is None or key in baked[kind] or key in skipped[kind]:
                            continue
                        forced = path == first and kind in ("projection", "units")
                        if used >= self.budget and not forced:
                            left[kind].append(key)
                            skipped[kind].add(key)
                            continue
                        state = self._snap(kind, key)
                        if state is None:  # the layer's dataset panel failed: said, not baked
                            failed[kind][key] = self._panel_widget(kind)._error
                            continue
                        size = _nbytes(state)
                        if forced:
                            baked[kind][key] = state
                            used += size
                            continue
                        if used + size > self.budget:
                            left[kind].append(key)
                            skipped[kind].add(key)
                            continue
                        baked[kind][key] = state
                        used += size
                    if self._slice_over():
                        break
            finally:
                w.bake_budget = saved[0]
                if a is not None:
                    a.bake_budget, a.thumb_budget = saved[1], ActivationView.thumb_budget
                if t is not None:
                    t.budget = saved[2]
                for view in (self.projection, self.units):
                    if dataset and view is not None:
                        view.layer = first  # computed once per layer: read from its cache
            if i >= len(order):
                break
            self._select_panels(self.selected)  # the live panels show the selection again
            yield
        note = self._dataset_note if self.projection is not None and not only_first else ""
        self._baked = {
            **baked,
            "budget": self.budget,
            "used": used,
            "left_out": left,
            "failed": failed,
            "dataset_note": note,
        }

    _dataset_note = ""

    def _bake_selected(self) -> None:
        """Add the selected layer's dataset panels to the saved state when a click or Python
        moved the selection to a layer the bake left out (they are always saved)."""
        path, baked = self.selected, dict(self._baked)
        for kind in ("projection", "units"):
            view = self._panel_widget(kind)
            if view is None or path in baked.get(kind, {}) or path in baked["failed"][kind]:
                continue
            state = self._snap(kind, path)
            if state is None:
                baked["failed"] = {
                    **baked["failed"],
                    kind: {**baked["failed"][kind], path: view._error},
                }
                continue
            baked[kind] = {**baked[kind], path: state}
            baked["used"] += _nbytes(state)
            baked["left_out"] = {
                **baked["left_out"],
                kind: [k for k in baked["left_out"][kind] if k != path],
            }
        self._baked = baked

    def _dataset_layers(self, first: str, only_first: bool) -> set[str]:
        """The layers whose dataset panels the bake may hold: ``first``, and every layer the
        data was read for (one-shot data), else every captured layer when the data is small
        enough for a pass per layer (``DATASET_BAKE_SAMPLES``; ``_dataset_note`` says why
        not)."""
        self._dataset_note = ""
        if self.projection is None or self.activations is None:
            return set()
        if only_first:
            return {first}
        captured = {d["path"] for d in self.activations._layers}
        try:
            col = self.projection.collected(first)
        except Exception:  # the selected layer's own panel shows its error
            return set()
        if len(col.layers) > 1:
            return {first} | (captured & set(col.layers))
        if col.n > DATASET_BAKE_SAMPLES:
            self._dataset_note = (
                f"the dataset panels of other layers are saved for data of at most "
                f"{DATASET_BAKE_SAMPLES:,} samples (a pass over the data each); this data has "
                f"{col.n:,}"
            )
            return {first}
        layers = [first, *sorted(captured - {first})]
        for view in (self.projection, self.units):
            view.prefetch(layers)  # one pass over the data for every layer, not one each
        return {first} | captured

    def _snap(self, kind: str, key: str) -> dict[str, Any] | None:
        """One panel's state with ``key`` (a parameter, or a module path) selected; None when a
        dataset panel could not show that layer (its ``_error`` says why)."""
        if kind in ("projection", "units"):
            view = self._panel_widget(kind)
            try:
                view.layer = key
            except Exception as exc:
                view._error = f"{key}: {exc}"
            if view._error or view.layer != key:
                return None
            return panel_state(view, PROJECTION_KEYS if kind == "projection" else UNITS_KEYS)
        if kind == "weights":
            self.weights.selected = key
            return panel_state(self.weights, WEIGHT_KEYS)
        if kind == "acts":
            assert self.activations is not None
            self.activations.layer = key
            return panel_state(self.activations, ACT_KEYS)
        self.timeline.layer = key
        return panel_state(self.timeline.scrubber, FRAME_KEYS)

    def _static_state(self, name: str) -> dict[str, Any]:
        widget = self._panel_widget(name)
        per_layer = {
            "weights": WEIGHT_KEYS,
            "acts": ACT_KEYS,
            "scrub": FRAME_KEYS,
            "projection": PROJECTION_KEYS,
            "units": UNITS_KEYS,
        }.get(name, [])
        keys = [k for k in widget.keys if k not in per_layer]
        return {"channel": self._relays[name].channel, **panel_state(widget, keys)}

    def _panel_widget(self, name: str) -> Any:
        return {
            "weights": self.weights,
            "acts": self.activations,
            "scrub": self.timeline.scrubber if self.timeline is not None else None,
            "saliency": self.saliency,
            "projection": self.projection,
            "units": self.units,
        }[name]

    # -- the relay -------------------------------------------------------------------------------

    def _listening(self) -> bool:
        return self._live

    def _forward(self, channel: str, data: dict[str, Any], buffers: list[Any]) -> None:
        if not self._live:
            return
        name = next((n for n, r in self._relays.items() if r.channel == channel), None)
        if name is None:
            return  # a part no panel shows (the timeline's own container)
        self.send({"ls_panel": name, "data": data}, buffers=buffers)

    def _on_custom_message(self, widget: Any, content: Any, buffers: list[Any]) -> None:
        if isinstance(content, dict) and "ls_panel" in content:
            relay = self._relays.get(str(content["ls_panel"]))
            data = content.get("data")
            if relay is not None and isinstance(data, dict):
                relay.receive(data, buffers)
            return
        super()._on_custom_message(widget, content, buffers)

    # -- training --------------------------------------------------------------------------------

    def _watch_recorder(self) -> Callable[[], None] | None:
        on_epoch = getattr(self._rec, "on_epoch", None)
        if not callable(on_epoch):
            return None
        # A followed run (``Recorder.open(path, follow=True)``) hears of epochs on its poller's
        # thread: the workspace then updates on the kernel's thread, between messages, as a
        # click does (its panels read the model again and run its forward pass: never beside
        # the user's own code, which may be training that model). A Recorder called in the
        # kernel's thread updates it at once, as before.
        loop, here = _kernel_loop(), threading.current_thread()

        def heard(epoch: int) -> None:
            if loop is not None and threading.current_thread() is not here:
                loop.add_callback(self._on_recorded, epoch)
            else:
                self._on_recorded(epoch)

        return on_epoch(heard)

    def _on_recorded(self, epoch: int) -> None:
        """A live Recorder finished an epoch: the live panels follow the model at once; the baked
        state (what a saved or exported page holds) is re-made once the running cell ends."""
        rec = self._rec
        assert rec is not None
        follow = not self._epochs or self.epoch == self._epochs[-1]
        self._epochs = list(rec.epochs)
        self._layers = self._layer_map()
        self._update_overlay()
        self.weights.reload()
        if self.activations is not None:
            self.activations.recapture()
        if follow:
            self.epoch = epoch
        self._stale = self._changed = True

    _stale = False  # the baked state lags the model (or holds the first layer only)
    _changed = False  # the model changed since the activations were captured
    _moved = False  # the selection moved since the panels' saved state was taken

    # The bake after a cell runs in slices of this many seconds on the kernel's event loop: a
    # cell run meanwhile waits for one slice at most (the whole bake of a 48-block transformer
    # takes seconds). The first slice waits BAKE_DELAY_S, so the page draws the view first.
    BAKE_SLICE_S = 0.1
    BAKE_DELAY_S = 0.3
    _baking: Iterator[None] | None = None  # the bake in slices under way, if any
    _born = 0  # creation order: the newest workspace bakes in slices first
    _recapturing = False  # the bake under way has still to read the model again
    _slice_end: float | None = None  # when the running slice yields (None: run to the end)

    def _slice_over(self) -> bool:
        return self._slice_end is not None and time.perf_counter() >= self._slice_end

    def _after_cell(self, *_args: Any) -> None:
        """After each cell (IPython's post_run_cell): the bake in slices on the kernel's event
        loop, or at once where there is none."""
        loop = _kernel_loop()
        if loop is None:
            self.settle()
        elif self._stale:
            # One workspace bakes in slices at a time, the newest first: a cell run again makes
            # a new workspace, whose bake would otherwise share the slices with the old one's.
            # An older one waits (its bake starts again after a later cell, or in settle()).
            others = [v for v in _SLICED if v is not self and v._baking is not None]
            if any(v._born > self._born for v in others):
                return
            for v in others:
                v._pause_baking()
            # New, or the model changed since the bake under way started: from the start (and
            # with the capture a stopped bake had still to make).
            recapture = self._changed or self._recapturing
            self._stop_baking()
            self._recapturing = recapture
            self._baking = self._refresh_steps(recapture=recapture)
            _SLICED.add(self)
            loop.call_later(self.BAKE_DELAY_S, self._bake_slice)
        elif self._moved and self._baking is None:
            self.settle()

    def _bake_slice(self) -> None:
        steps = self._baking
        if steps is None:
            return  # finished by settle(), or stopped
        loop = _kernel_loop()
        self._slice_end = time.perf_counter() + self.BAKE_SLICE_S if loop is not None else None
        try:
            done = self._run_steps(steps)
        except Exception as exc:  # no cell to raise in: say it, and let settle() try again
            self._stale = True
            warnings.warn(
                f"ls.explore: the saved state's bake after the cell failed ({exc!r}); "
                "ex.refresh() runs it again",
                stacklevel=1,
            )
            return
        if done:
            self._baking = None
        elif loop is not None:
            loop.call_later(0.001, self._bake_slice)

    def _run_steps(self, steps: Iterator[None]) -> bool:
        """Run ``steps`` to their next yield (True: to their end) with the panels' messages
        dropped; the panels send their whole state once the end is reached."""
        self._live = False
        done = False
        try:
            with model_threads(self._model):
                done = next(steps, _END) is _END
        except BaseException:
            self._baking = None
            raise
        finally:
            self._slice_end = None
            self._live = True
        if done:
            for name in self._relays:
                self._panel_widget(name).send_state()
        return done

    def _stop_baking(self) -> None:
        steps, self._baking = self._baking, None
        if steps is not None:
            steps.close()  # type: ignore[attr-defined]

    def _pause_baking(self) -> None:
        """Stop the bake under way for a newer workspace's: it runs again from the start (with
        the capture, if the stopped one had still to make it) after a later cell or in
        ``settle()``."""
        self._changed = self._changed or self._recapturing
        self._stop_baking()
        self._stale = True

    def settle(self) -> None:
        """Bring the saved state (what a saved notebook or exported page holds) up to the model
        and the selection; runs after each cell (in slices) and before ``ls.export_html``."""
        if self._stale:
            self.refresh(recapture=self._changed)
        elif self._baking is not None:
            steps = self._baking
            while not self._run_steps(steps):
                pass
            self._baking = None
        elif self._moved:
            self._moved = False
            self._live = False
            try:
                self._bake_selected()
                self._panels = {name: self._static_state(name) for name in self._relays}
            finally:
                self._live = True

    @property
    def baking(self) -> bool:
        """Whether the bake after the cell is still under way (``settle()`` finishes it)."""
        return self._baking is not None or self._stale

    def refresh(self, *, recapture: bool = True) -> None:
        """Read the model again and re-make the baked state (every layer's panels within the
        budget) that a saved notebook or exported page holds. Runs by itself after the cell
        that made the view, and after a cell that recorded epochs, ends (and before
        ``ls.export_html``); call it after changing the model some other way."""
        self._stop_baking()
        steps = self._refresh_steps(recapture=recapture)
        while not self._run_steps(steps):
            pass

    def _refresh_steps(self, *, recapture: bool) -> Iterator[None]:
        """``refresh`` as steps (see ``_bake_steps``); the model counts as read from now."""
        self._stale = self._changed = self._moved = False
        return self._refresh_body(recapture, self.selected)

    def _refresh_body(self, recapture: bool, path: str) -> Iterator[None]:
        if self._overlay_pending:  # the first display's graph waits for the weight change
            self._update_overlay()
            if self._slice_over():
                self._select_panels(self.selected)
                yield
        # the first display captured the selected layer alone: every layer now
        pending = self.activations is not None and self.activations.pending
        if pending and not recapture:
            self.activations.complete()  # type: ignore[union-attr]
        if recapture or self.weights.rows_pending:
            self.weights.refresh_rows()
            if self._slice_over():  # the capture below is a slice of its own
                self._select_panels(self.selected)
                yield
        if recapture:
            if self.activations is not None:
                self.activations.recapture()
            if self.saliency is not None:
                self.saliency.recompute()
            for view in (self.projection, self.units):
                if view is not None:
                    view.recollect()
        self._recapturing = False
        if pending:
            self._layers = self._layer_map()
        if self._slice_over():
            self._select_panels(self.selected)
            yield
        yield from self._bake_steps(path)
        if self._moved:  # a click during the bake: the new layer's dataset panels too
            self._moved = False
            self._bake_selected()
        self._panels = {name: self._static_state(name) for name in self._relays}
        self._select_panels(self.selected)

    def _hook_cells(self) -> Callable[[], None] | None:
        """Re-bake after each cell (IPython's post_run_cell) when epochs were recorded in it."""
        try:
            from IPython import get_ipython
        except ImportError:
            return None
        ip = get_ipython()
        if ip is None or not hasattr(ip, "events"):
            return None
        ip.events.register("post_run_cell", self._after_cell)
        return lambda: ip.events.unregister("post_run_cell", self._after_cell)

    def close(self) -> None:
        self._stop_baking()
        _SLICED.discard(self)
        for name in ("_unsubscribe", "_unhook"):
            undo = getattr(self, name, None)
            if undo is not None:
                undo()
                setattr(self, name, None)
        for name in ("weights", "activations", "timeline", "saliency", "projection", "units"):
            w = getattr(self, name, None)
            if w is not None:
                w.close()
        super().close()

    def __repr__(self) -> str:
        n = len(self._paths) if hasattr(self, "_paths") else 0
        return (
            f"ExploreView({type(self._model).__name__}, {n} modules, selected={self.selected!r}"
            f"{', recorder' if self._rec is not None else ''})"
        )


def explore(
    model: nn.Module,
    *inputs: Any,
    recorder: Any = None,
    budget: int | str = DEFAULT_BUDGET,
    height: int = 520,
    selected: str | None = None,
    saliency: dict[str, Any] | None = None,
    data: Any = None,
    labels: Any = None,
    **forward_kwargs: Any,
) -> ExploreView:
    """One workspace: the graph of ``model(*inputs, **forward_kwargs)`` with the selected layer's
    weights (table and heatmap), activations and, with ``recorder`` (an ``ls.Recorder`` or a
    stored run), its training history. Click a layer and every panel follows; the links live in
    the front end, so they also work in an exported page (``budget`` bytes of every layer's panels
    at reduced resolution are saved with the view: default 6 MB). ``saliency``: the options of
    ``ls.saliency`` (e.g. ``{"method": "integrated_gradients", "labels": names}``) add its panel,
    which follows the selected sample; ``target`` is its class. ``data`` (a tensor, a DataLoader
    or batches; ``labels`` optional) adds the dataset panels of ``ls.projection`` and ``ls.units``
    for the selected layer.

    >>> ex = ls.explore(model, x, recorder=rec)     # doctest: +SKIP
    >>> ex.selected = "conv2"; ex.epoch = 3          # doctest: +SKIP
    """
    return ExploreView(
        model,
        *inputs,
        recorder=recorder,
        budget=budget,
        height=height,
        selected=selected,
        saliency=saliency,
        data=data,
        labels=labels,
        **forward_kwargs,
    )


__all__ = ["ExploreView", "ModulePathError", "RecorderMismatch", "explore", "first_parameter"]
