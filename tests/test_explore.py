"""ls.explore: one call, linked views; selecting a layer in the graph moves every panel."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import torch
import traitlets
from torch import nn

import layerscope as ls
from browser import offline_guard, screenshot
from layerscope.widgets.explore import first_parameter


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU()),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def test_selecting_a_layer_moves_every_panel() -> None:
    model = small_cnn()
    view = ls.explore(model, torch.randn(2, 1, 8, 8))
    view.selected = "4"
    assert (view.weights.selected, view.activations.layer) == ("4.weight", "4")
    view.selected = "2.0"
    assert (view.weights.selected, view.activations.layer) == ("2.0.weight", "2.0")
    assert view.activations._act["kind"] == "conv" and view.activations._act["shape"] == [
        2,
        4,
        4,
        4,
    ]


def test_first_parameter_prefers_the_module_own_weight() -> None:
    model = small_cnn()
    assert first_parameter(model, "2") == "2.0.weight"  # container: first descendant
    assert first_parameter(model, "0") == "0.weight"
    assert first_parameter(model, "1") is None  # ReLU has none
    assert first_parameter(model, "") == "0.weight"


def test_explore_rejects_a_non_module() -> None:
    with pytest.raises(TypeError, match=r"must be a torch\.nn\.Module"):
        ls.explore("resnet", torch.randn(1))


@pytest.mark.browser
def test_explore_exports_offline(page: Any, tmp_path: pathlib.Path) -> None:
    view = ls.explore(small_cnn(), torch.randn(2, 1, 8, 8))
    path = ls.export_html(view, tmp_path / "explore.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(".ls-view canvas", timeout=30_000)
        page.wait_for_timeout(1000)
        assert page.locator(".ls-view").count() >= 3  # graph, weights, activations
        screenshot(page, "explore_export_offline")
    assert attempted == []
    assert page.errors == []


# -- the workspace as one widget: traits, links, bad inputs, the bake -----------------------------


def test_explore_is_one_anywidget_with_synced_selection_traits() -> None:
    import anywidget
    import ipywidgets
    import traitlets

    model = small_cnn()
    ex = ls.explore(model, torch.randn(2, 1, 8, 8))
    assert isinstance(ex, anywidget.AnyWidget) and not isinstance(ex, ipywidgets.Box)
    seen: list[str] = []
    ex.observe(lambda c: seen.append(c["new"]), "selected")
    # A click in the view arrives as a state update from the front end.
    ex.set_state({"selected": "2.0"})
    assert seen == ["2.0"] and ex.weights.selected == "2.0.weight"
    other = ls.graph(model, torch.randn(2, 1, 8, 8))
    link = traitlets.link((ex, "selected"), (other, "selected"))
    ex.selected = "4"
    assert other.selected == "4"
    other.selected = "0"
    assert ex.selected == "0" and ex.activations.layer == "0"
    link.unlink()
    ipywidgets.jslink((ex, "selected"), (other, "selected"))  # a front-end link is accepted


def test_a_path_that_does_not_exist_is_refused_and_the_view_keeps_its_state() -> None:
    ex = ls.explore(small_cnn(), torch.randn(2, 1, 8, 8))
    ex.selected = "2.0"
    with pytest.raises(KeyError, match=r"no module at path '2\.O'\. Did you mean: .*'2\.0'"):
        ex.selected = "2.O"
    assert ex.selected == "2.0" and ex.weights.selected == "2.0.weight"
    with pytest.raises(KeyError, match="no module at path 'nope'"):
        ls.explore(small_cnn(), torch.randn(2, 1, 8, 8), selected="nope")


def test_after_training_the_saliency_panel_is_the_trained_models() -> None:
    """A workspace made before training: once the cell that recorded epochs ends (refresh), the
    saliency panel's predictions and maps are the trained model's, not the initial ones."""
    torch.manual_seed(0)
    model = small_cnn()
    x = torch.randn(4, 1, 8, 8)
    rec = ls.Recorder(model, probe=x[:2])
    ex = ls.explore(model, x, recorder=rec, saliency={"method": "gradient"})
    before = [s["topk"]["probs"][0] for s in ex.saliency._samples]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    y = torch.tensor([3, 3, 3, 3])
    for _ in range(20):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.step(loss=loss)
    rec.epoch()
    ex._after_cell()  # what IPython's post_run_cell does after the training cell
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)
    assert ex.saliency.target == [3, 3, 3, 3]
    got = [s["topk"]["probs"][0] for s in ex.saliency._samples]
    assert got == pytest.approx(probs.max(1).values.tolist(), rel=1e-5) and got != before
    want = ls.attribute(model, x, target=3, method="gradient")
    assert torch.allclose(torch.as_tensor(ex.saliency._maps["gradient"]), want.sum(1), atol=1e-6)


def test_sample_out_of_range_is_refused_and_epoch_is_clamped_and_said() -> None:
    import traitlets

    model = small_cnn()
    rec = ls.Recorder(model, probe=torch.randn(2, 1, 8, 8))
    for _ in range(2):
        rec.step(loss=1.0)
        rec.epoch()
    ex = ls.explore(model, torch.randn(3, 1, 8, 8), recorder=rec)
    ex.sample = 2
    assert ex.activations.batch == 2
    with pytest.raises(traitlets.TraitError, match=r"sample 3 is outside the inputs' batch of 3"):
        ex.sample = 3
    with pytest.warns(UserWarning, match="epoch 99 is not recorded .* showing epoch 1"):
        ex.epoch = 99
    assert ex.epoch == 1 and ex.timeline.epoch == 1
    tl = ls.timeline(rec)
    with pytest.warns(UserWarning, match="epoch 99 is not recorded"):
        tl.epoch = 99
    assert tl.epoch == 1


class KernelLoop:
    """What the workspace uses of the kernel's (tornado) event loop; ``run()`` is the kernel
    between messages, running what was queued."""

    def __init__(self) -> None:
        self.queued: list[tuple[Any, tuple[Any, ...]]] = []

    def add_callback(self, fn: Any, *args: Any) -> None:  # from any thread
        self.queued.append((fn, args))

    def call_later(self, _delay: float, fn: Any, *args: Any) -> None:
        self.queued.append((fn, args))

    def run(self) -> None:
        while self.queued:
            fn, args = self.queued.pop(0)
            fn(*args)


def test_a_followed_run_updates_the_workspace_on_the_kernels_thread(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run followed from its store hears of epochs on the poller's thread; the workspace's
    panels read the model again and run its forward pass, so they update on the kernel's
    thread (its event loop), never beside the user's code (which may be training the model)."""
    import threading
    import time

    import layerscope.widgets.explore as explore_module

    model = small_cnn()
    x = torch.randn(4, 1, 8, 8)
    rec = ls.Recorder(model, probe=x[:2], store=tmp_path / "run")
    rec.step(loss=1.0)
    rec.epoch()
    rec.flush()
    loop = KernelLoop()
    monkeypatch.setattr(explore_module, "_kernel_loop", lambda: loop)
    run = ls.Recorder.open(tmp_path / "run", follow=True, interval=0.05)
    try:
        ex = ls.explore(model, x, recorder=run)
        loop.run()  # the cell that made it ends
        heard: list[tuple[int, bool]] = []  # (newest epoch, on the main thread) per update
        reload = ex.weights.reload

        def spy() -> None:  # the weights panel reads the model again at each epoch
            heard.append((run.epochs[-1], threading.current_thread() is threading.main_thread()))
            reload()

        monkeypatch.setattr(ex.weights, "reload", spy)
        with torch.no_grad():
            model[4].weight.mul_(2.0)  # the "training" between the epochs
        rec.step(loss=0.5)
        rec.epoch()
        rec.flush()
        deadline = time.time() + 20
        while run.epochs != [0, 1] and time.time() < deadline:
            time.sleep(0.05)  # the poller loads epoch 1 and schedules the update...
        time.sleep(0.2)
        assert run.epochs == [0, 1] and heard == []  # ...which waits for the kernel's loop
        loop.run()
        assert heard == [(1, True)]
        assert ex.epoch == 1 and ex.timeline.epoch == 1
    finally:
        run.close()


def test_a_recorder_of_another_model_is_refused_naming_both() -> None:
    rec = ls.Recorder(small_cnn(), probe=torch.randn(2, 1, 8, 8))
    with pytest.raises(
        ValueError, match=r"records another model \(Sequential at .*\) than the one given"
    ):
        ls.explore(small_cnn(), torch.randn(2, 1, 8, 8), recorder=rec)


def test_forward_keyword_arguments_reach_the_model() -> None:
    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor, *, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.proj(x) * attention_mask[..., None]

    x, mask = torch.randn(2, 5, 4), torch.ones(2, 5)
    mask[1, 3:] = 0
    ex = ls.explore(Masked(), x, attention_mask=mask)
    out = ex.activations._acts["proj"]
    assert out.shape == (2, 5, 4)
    assert ex.selected == "proj" and ex.weights.selected == "proj.weight"


def test_panels_map_module_paths_on_a_transformer_and_a_shared_module() -> None:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    ex = ls.explore(model, torch.randn(2, 5, 8))
    ex.selected = "layers.0.self_attn.out_proj"
    assert ex.weights.selected == "layers.0.self_attn.out_proj.weight"
    ex.selected = "layers.1.linear2"
    assert (ex.weights.selected, ex.activations.layer) == (
        "layers.1.linear2.weight",
        "layers.1.linear2",
    )
    assert torch.equal(ex.weights.data, model.layers[1].linear2.weight)

    shared = nn.Linear(4, 4)
    twice = nn.Sequential(shared, nn.ReLU(), shared)
    ex2 = ls.explore(twice, torch.randn(2, 4))
    ex2.selected = "0"
    assert ex2.weights.selected == "0.weight" and ex2.activations.layer == "0"


def test_every_layer_is_baked_within_the_budget_and_what_is_left_out_is_listed() -> None:
    model = small_cnn()
    ex = ls.explore(model, torch.randn(2, 1, 8, 8))
    # The first display holds the selected layer's panels; the rest is baked once the cell ends
    # (IPython's post_run_cell) or before an export.
    assert list(ex._baked["weights"]) == ["0.weight"] and list(ex._baked["acts"]) == ["0"]
    assert ex._stale
    ex._after_cell()
    assert not ex._stale
    baked = ex._baked
    assert set(baked["weights"]) == {"0.weight", "2.0.weight", "4.weight"}
    assert {"0", "1", "2.0", "2.1", "3", "4"} <= set(baked["acts"])
    assert baked["used"] <= baked["budget"] and not any(baked["left_out"].values())
    # A baked panel holds that layer's own data: its path and its values.
    w = baked["weights"]["4.weight"]["state"]
    assert w["selected"] == "4.weight" and w["_meta"]["source_shape"] == [10, 64]
    half = baked["used"] // 2
    small = ls.explore(model, torch.randn(2, 1, 8, 8), budget=half)
    small.refresh()
    assert 0 < small._baked["used"] <= half
    assert any(small._baked["left_out"].values())


def steady(value: Any) -> Any:
    """A panel's state without what differs between two makings of it (tokens, times)."""
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k != "token" and not k.startswith("t_")}
    return value


class FakeLoop:
    """The kernel's event loop as the workspace uses it (``call_later``); the test runs what
    was scheduled, one callback at a time."""

    def __init__(self) -> None:
        self.due: list[Any] = []

    def call_later(self, delay: float, fn: Any) -> None:
        self.due.append(fn)

    def run_one(self) -> None:
        self.due.pop(0)()


def test_the_bake_after_the_cell_runs_in_slices_between_cells(monkeypatch: Any) -> None:
    """In a kernel the bake after the cell runs in slices on the event loop (a cell run meanwhile
    waits for one slice); between slices every panel shows the selection, a click between them
    is followed live, and the saved state at the end is the one a bake at once makes."""
    import layerscope.widgets.explore as explore_module

    model, x = small_cnn(), torch.randn(2, 1, 8, 8)
    at_once = ls.explore(model, x)
    at_once.selected = "4"
    at_once.settle()
    loop = FakeLoop()
    monkeypatch.setattr(explore_module, "_kernel_loop", lambda: loop)
    ex = ls.explore(model, x)
    ex.BAKE_SLICE_S = 0.0  # a slice a layer
    # The table's statistics follow after the cell too: the first display lists the parameters.
    rows = ex._panels["weights"]["state"]["_rows"]
    assert rows["pending"] and rows["path"][0] == "0.weight" and "norm" not in rows
    ex._after_cell()
    assert ex.baking and len(loop.due) == 1 and list(ex._baked["weights"]) == ["0.weight"]
    sent: list[Any] = []
    ex.send = lambda msg, buffers=None: sent.append(msg)  # type: ignore[method-assign]
    slices = 0
    while loop.due:
        loop.run_one()
        slices += 1
        if ex._baking is not None:  # between two slices: the panels show the selection
            assert ex.weights.selected == first_parameter(model, ex.selected)
            assert ex.activations.layer == ex.selected
            assert ex.activations._act["layer"] == ex.selected
        if slices == 2:
            ex.selected = "4"  # a click between slices: the panels follow at once
            assert ex.weights.selected == "4.weight" and ex.activations.layer == "4"
            assert {"ls_followed": "4"} in sent
    assert slices > 3 and not ex.baking
    rows = ex._panels["weights"]["state"]["_rows"]
    assert "pending" not in rows and rows == at_once._panels["weights"]["state"]["_rows"]
    assert rows["norm"][0] == pytest.approx(float(model[0].weight.norm()))
    assert ex.weights.selected == "4.weight" and ex.activations.layer == "4"
    for kind in ("weights", "acts"):
        assert set(ex._baked[kind]) == set(at_once._baked[kind])  # baked from "0" first
        for key, panel in ex._baked[kind].items():
            other = at_once._baked[kind][key]
            assert steady(panel["state"]) == steady(other["state"]), (kind, key)
            assert [bytes(b) for b in panel["buffers"]] == [bytes(b) for b in other["buffers"]]
    # settle() (an export) finishes a bake under way at once; a new epoch's bake starts again
    ex._stale = True
    ex._after_cell()
    loop.run_one()
    assert ex._baking is not None
    ex.settle()
    assert not ex.baking and set(ex._baked["acts"]) == set(at_once._baked["acts"])
    loop.run_one()  # the slice that was due finds nothing to do
    assert not loop.due


def test_the_weight_change_overlay_follows_the_first_display_in_a_kernel(monkeypatch: Any) -> None:
    """In a kernel the graph's weight-change overlay is the first step of the bake after the
    cell (its label says it is coming meanwhile); in a plain process it is there at once. Both
    are the recorder's change from the first to the last epoch."""
    import layerscope.widgets.explore as explore_module

    model = small_cnn()
    x = torch.randn(2, 1, 8, 8)
    rec = ls.Recorder(model, probe=x)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.step(loss=loss.item())
        rec.epoch()
    want = rec.layer_change(0, 2)
    assert want and all(v > 0 for v in want.values())
    at_once = ls.explore(model, x, recorder=rec)
    assert at_once.overlay == want and at_once.overlay_label == "weight change, epoch 0 to 2"
    loop = FakeLoop()
    monkeypatch.setattr(explore_module, "_kernel_loop", lambda: loop)
    ex = ls.explore(model, x, recorder=rec)
    assert ex.overlay == {} and ex.overlay_label == "weight change, epoch 0 to 2: computing…"
    ex.BAKE_SLICE_S = 0.0  # a slice a step: the overlay is the first
    ex._after_cell()
    loop.run_one()
    assert ex.overlay == want and ex.overlay_label == "weight change, epoch 0 to 2"
    assert ex.baking  # the rest of the bake follows
    ex.settle()
    assert ex.overlay == want and not ex.baking
    # an overlay the user sets before the bake is theirs: the bake leaves it
    mine = ls.explore(model, x, recorder=rec)
    mine.overlay = {"0": 1.0}
    mine.settle()
    assert mine.overlay == {"0": 1.0}


def test_a_cell_run_again_bakes_its_new_workspace_first(monkeypatch: Any) -> None:
    """One workspace bakes in slices at a time, the newest first: the cell run again makes a
    new workspace, and the old one's bake waits instead of sharing the slices; it runs after a
    later cell, and settle() (an export) finishes it at once."""
    import layerscope.widgets.explore as explore_module

    loop = FakeLoop()
    monkeypatch.setattr(explore_module, "_kernel_loop", lambda: loop)
    model, x = small_cnn(), torch.randn(2, 1, 8, 8)
    old = ls.explore(model, x)
    old.BAKE_SLICE_S = 0.0  # a slice a layer
    old._after_cell()
    loop.run_one()
    assert old._baking is not None
    new = ls.explore(model, x)  # the cell run again
    new.BAKE_SLICE_S = 0.0
    for view in (old, new):  # the post_run_cell hooks of both, after that cell
        view._after_cell()
    assert old._baking is None and old.baking  # paused: to do again
    while loop.due:
        loop.run_one()
        assert old._baking is None  # the old one's slices never run meanwhile
    assert not new.baking
    old._after_cell()  # a later cell: now the old one bakes
    assert old._baking is not None
    old.settle()
    assert not old.baking and set(old._baked["acts"]) == set(new._baked["acts"])
    assert old._baked["weights"].keys() == new._baked["weights"].keys()


def test_first_display_captures_the_selected_layer_and_every_layer_after_the_cell() -> None:
    """Before the view shows, only the selected layer's activations are captured (the layer
    list comes from the trace); a layer selected before the capture of every layer lands gets
    its own data, and the cell's end captures every layer and bakes each its own panel."""
    model = small_cnn()
    x = torch.randn(2, 1, 8, 8)
    every = ls.inspect.capture(model, x)
    ex = ls.explore(model, x)
    a = ex.activations
    assert a.pending and list(a._acts) == ["0"] and ex.selected == "0"
    assert torch.equal(a._acts["0"], every["0"])  # kept from the trace's pass
    assert [(d["path"], d["shape"]) for d in a._layers] == [
        (p, list(t.shape)) for p, t in every.items()
    ]
    ex.selected = "2.0"  # a click while the cell has not ended yet
    assert a._act["layer"] == "2.0" and torch.equal(a.data, every["2.0"][0, 0])
    assert set(a._acts) == {"0", "2.0"} and len(a._layers) == len(every)
    ex._after_cell()
    assert not a.pending and list(a._acts) == list(every)
    assert a._act["layer"] == "2.0" and torch.equal(a.data, every["2.0"][0, 0])
    baked = ex._baked["acts"]
    assert set(baked) == set(every)
    for path, panel in baked.items():
        assert panel["state"]["layer"] == path and panel["state"]["_act"]["layer"] == path
    assert {d["path"] for d in a._layers} == set(every)

    # A layer that returns no tensor (a container never called), selected before the cell
    # ends: its panel says so, then and after the capture of every layer.
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.unused = nn.ModuleList([nn.ReLU()])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    ex = ls.explore(Holder(), torch.randn(2, 4))
    ex.selected = "unused"
    assert "returned no tensor" in ex.activations._error
    ex._after_cell()
    assert "returned no tensor" in ex.activations._error and not ex.activations.pending
    # A model in training mode: the trace runs in that mode, the panels show eval-mode outputs
    # (as capture gives them), so the first layer is not taken from the trace.
    torch.manual_seed(0)
    bn = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)).train()
    xb = torch.randn(6, 4) * 3 + 1
    ex = ls.explore(bn, xb)
    assert ex.activations.pending and bn.training
    assert torch.equal(ex.activations._acts["0"], ls.inspect.capture(bn, xb)["0"])


def test_the_relay_carries_panel_requests_and_state_both_ways() -> None:
    ex = ls.explore(small_cnn(), torch.randn(2, 1, 8, 8))
    sent: list[tuple[dict, list]] = []
    ex.send = lambda content, buffers=None: sent.append((content, buffers or []))  # type: ignore[method-assign]
    # The front end sets the activations panel's channel: the headless view follows and its new
    # state comes back tagged with the panel's name.
    ex._on_custom_message(
        ex,
        {
            "ls_panel": "acts",
            "data": {"method": "update", "state": {"channel": 2}, "buffer_paths": []},
        },
        [],
    )
    assert ex.activations.channel == 2
    assert any(c["ls_panel"] == "acts" and "_meta" in c["data"].get("state", {}) for c, _ in sent)
    # A tile request to the weights panel is answered by the weights view, through the relay.
    sent.clear()
    msg = {"ls": 1, "id": "r1", "kind": "tile", "args": {"window": [0, 4, 0, 4], "out": [4, 4]}}
    ex._on_custom_message(
        ex, {"ls_panel": "weights", "data": {"method": "custom", "content": msg}}, []
    )
    ((content, buffers),) = sent
    assert content["ls_panel"] == "weights" and content["data"]["content"]["id"] == "r1"
    assert content["data"]["content"]["ok"] and len(buffers) == 1


def test_saliency_panel_follows_the_sample_and_its_class_is_the_target() -> None:
    torch.manual_seed(0)
    model = small_cnn()
    x = torch.randn(3, 1, 8, 8)
    ex = ls.explore(model, x, saliency={"method": "gradient"})
    ex.sample = 1
    assert ex.saliency.batch == 1 and ex.target == ex.saliency.target[1]
    new = (ex.target + 3) % 10
    ex.target = new
    assert ex.saliency.target[1] == new
    # The panel's map of sample 1 is the attribution at the new class.
    want = ls.attribute(model, x[1:2], target=new, method="gradient")[0]
    assert torch.allclose(torch.as_tensor(ex.saliency._maps["gradient"][1]), want, atol=1e-6)
    with pytest.raises(
        ValueError, match=r"saliency= attributes one input tensor; ls\.explore got 2"
    ):
        ls.explore(model, x, torch.randn(1), saliency={})


def test_dataset_panels_follow_the_selected_layer() -> None:
    torch.manual_seed(0)
    model = small_cnn()
    data = torch.randn(40, 1, 8, 8)
    labels = torch.arange(40) % 3
    ex = ls.explore(model, data[:4], data=(data, labels))
    assert ex.projection.layer == ex.units.layer == "0"
    assert set(ex._panels) >= {"projection", "units"}
    ex.selected = "4"
    assert ex.projection.layer == ex.units.layer == "4"
    # The units panel's statistics are those of the selected layer's outputs over the data.
    want = model(data).detach()
    mean = ex.units.collected("4")["4"].stats["mean"]
    assert torch.allclose(torch.as_tensor(mean, dtype=torch.float32), want.mean(0), atol=1e-5)


def test_every_layers_dataset_panels_are_baked_each_its_own(monkeypatch: Any) -> None:
    """The page holds the projection and units of every layer (small data), each that layer's
    own; after training they are the trained model's; big data bakes the selected layer only and
    says why."""
    import layerscope.widgets.explore as explore_mod

    torch.manual_seed(0)
    model = small_cnn()
    data = torch.randn(40, 1, 8, 8)
    labels = torch.arange(40) % 3
    ex = ls.explore(model, data[:4], data=(data, labels), selected="4")
    ex.settle()
    baked = ex._baked
    others = {"0", "1", "2.0", "2.1", "3"}
    assert set(baked["projection"]) == set(baked["units"]) == others | {"4"}, baked["left_out"]
    assert not baked["failed"]["projection"] and baked["dataset_note"] == ""
    for path in others:
        proj = baked["projection"][path]["state"]
        assert proj["layer"] == proj["_points"]["layer"] == path
        table = baked["units"][path]["state"]["_table"]
        assert baked["units"][path]["state"]["layer"] == table["layer"] == path
        assert table["units"] == {"0": 4, "1": 4, "2.0": 4, "2.1": 4, "3": 64}[path]
    # the panels' shared saved state holds no layer's data (the bake does), and they are back
    # on the selected layer
    assert "layer" not in ex._panels["projection"]["state"] and ex.projection.layer == "4"
    assert "_points" not in ex._panels["projection"]["state"] and ex.units.layer == "4"
    # a selection moved to a layer left out of the bake: saved once the cell ends
    ex._baked = {**ex._baked, "projection": {}, "units": {}}
    ex.selected = "2.0"
    ex.settle()
    assert set(ex._baked["projection"]) == set(ex._baked["units"]) == {"2.0"}
    assert ex._baked["units"]["2.0"]["state"]["_table"]["layer"] == "2.0"
    # after training, the panels are recollected with the trained model
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    ex._stale = ex._changed = True
    ex.settle()
    mean = ex.units.collected("4")["4"].stats["mean"]
    with torch.no_grad():
        want = model(data).mean(0)
    assert torch.allclose(torch.as_tensor(mean, dtype=torch.float32), want, atol=1e-4)
    # data over the limit: only the selected layer, and the reason
    monkeypatch.setattr(explore_mod, "DATASET_BAKE_SAMPLES", 10)
    ex.refresh()
    assert set(ex._baked["projection"]) == {"2.0"}
    assert "at most 10 samples" in ex._baked["dataset_note"]


def test_a_dataset_sample_picked_drives_the_saliency_panel() -> None:
    torch.manual_seed(0)
    model = small_cnn()
    data = torch.randn(40, 1, 8, 8)
    labels = torch.arange(40) % 3
    x = data[:3]
    ex = ls.explore(model, x, data=(data, labels), saliency={"method": "gradient"})
    ex.sample = 1
    ex.data_sample = 17  # what a click on sample 17 in the projection panel sets
    sal = ex.saliency
    assert sal.batch == 3 and sal._info["n"] == 4  # the picked sample, after the 3 inputs
    assert sal._info["extra"] == "dataset sample 17"  # named beside the sample box, not "3"
    pred = int(model(data[17:18]).argmax())
    assert ex.target == sal.target[3] == pred
    want = ls.attribute(model, data[17:18], target=pred, method="gradient")[0]
    assert torch.allclose(torch.as_tensor(sal._maps["gradient"][3]), want.sum(0), atol=1e-6)
    # the inputs' own rows are untouched
    assert torch.allclose(
        torch.as_tensor(sal._maps["gradient"][1]),
        ls.attribute(model, x[1:2], target=sal.target[1], method="gradient")[0].sum(0),
        atol=1e-6,
    )
    # a new class for the picked sample retargets its row, not inputs[sample]
    before = sal.target[1]
    ex.target = (pred + 1) % 10
    assert sal.target[3] == (pred + 1) % 10 and sal.target[1] == before
    # another pick replaces it; choosing a sample of the inputs goes back to it
    ex.data_sample = 5
    assert sal.batch == 3 and sal._info["n"] == 4
    ex.sample = 2
    assert ex.data_sample is None and sal.batch == 2
    with pytest.raises(traitlets.TraitError, match=r"outside the data's 0\.\.39"):
        ex.data_sample = 40
    plain = ls.explore(model, x, saliency={"method": "gradient"})
    with pytest.raises(traitlets.TraitError, match=r"data_sample picks a sample of data="):
        plain.data_sample = 0
