"""ls.timeline, kernel side: frames for every epoch match the stored snapshots after the same
block_reduce and quantization, budgets, live pushes from Recorder.on_epoch, stored runs, the
graph's weight-change overlay and linking to GraphView.selected."""

from __future__ import annotations

import ast
import pathlib
import warnings
from typing import Any

import numpy as np
import pytest
import torch
import traitlets

import digits
import layerscope as ls
from layerscope.record import RecorderWarning
from layerscope.widgets.timeline import (
    TimelineView,
    _as_2d,
    _ranges,
    downsample,
    layer_change_overlay,
)
from layerscope.wire.codec import payload_to_json
from layerscope.wire.quantize import quantize_u8
from layerscope.wire.tiles import block_reduce


def small_data() -> tuple[torch.Tensor, ...]:
    x_tr, y_tr, x_te, y_te = digits.load()
    return x_tr[:160], y_tr[:160], x_te[:64], y_te[:64]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, torch.nn.Module, pathlib.Path]:
    torch.manual_seed(0)
    data = small_data()
    model = digits.DigitsCNN(width=4)
    path = tmp_path_factory.mktemp("tl") / "run"
    rec = ls.Recorder(model, probe=data[2][:8], store=path)
    digits.train(model, 4, rec, data=data)
    rec.flush()
    return rec, model, path


def expected_codes(rec: Any, kind: str, name: str, payload: dict[str, Any]) -> np.ndarray:
    h, w = payload["codes"].shape[1:]
    frames = []
    for e in rec.epochs:
        snap = rec.snapshot(name, e) if kind == "param" else rec.activation(name, e)
        frames.append(block_reduce(_as_2d(snap.array), (h, w)))
    q = payload["quant"]
    codes, _ = quantize_u8(np.stack(frames), q["lo"], q["hi"])
    return codes


def test_frames_of_every_epoch_match_the_stored_snapshots(run: Any) -> None:
    rec, _, _ = run
    view = ls.timeline(rec, layer="classifier.1")
    f = view.scrubber.frames
    assert f["layer"] == "classifier.1"
    assert f["epochs"].tolist() == rec.epochs == [0, 1, 2, 3]
    param, act = f["param"], f["act"]
    assert param["name"] == "classifier.1.weight" and param["shape"] == [128, 128]
    assert param["codes"].shape == (4, 128, 128)  # within the default budget: every cell
    assert param["have"].tolist() == [1, 1, 1, 1]
    np.testing.assert_array_equal(
        param["codes"], expected_codes(rec, "param", "classifier.1.weight", param)
    )
    np.testing.assert_array_equal(act["codes"], expected_codes(rec, "act", "classifier.1", act))
    # The colour range is one for all epochs, symmetric around 0 for signed weights.
    assert param["quant"]["lo"] == -param["quant"]["hi"] and param["diverging"]
    # Frames differ between epochs (training changed the weights).
    assert (param["codes"][0] != param["codes"][-1]).any()
    # Histograms on the Recorder's fixed bins, one row per epoch; curves per step.
    hist = f["hist"]
    h = rec.histograms("classifier.1.weight")
    assert hist["codes"].shape == (4, len(h.edges) - 1)
    assert (hist["lo"], hist["hi"]) == (float(h.edges[0]), float(h.edges[-1]))
    assert f["grad"]["x"].dtype == np.float32 and len(f["grad"]["y"]) == rec.num_steps
    assert f["steps"].tolist() == rec.epoch_steps().tolist()


def test_budget_bounds_the_frames_and_lowers_their_resolution(run: Any) -> None:
    rec, _, _ = run
    budget = 40_000
    view = ls.timeline(rec, layer="classifier.1", budget=budget)
    f = view.scrubber.frames
    total = f["param"]["codes"].nbytes + f["act"]["codes"].nbytes
    assert total <= budget
    h, w = f["param"]["codes"].shape[1:]
    assert h * w < 128 * 128 and abs(w / h - 1) < 0.2  # aspect kept
    np.testing.assert_array_equal(
        f["param"]["codes"], expected_codes(rec, "param", "classifier.1.weight", f["param"])
    )
    # The synced state carries the frames as binary buffers, never JSON lists.
    state = view.scrubber.get_state()
    json_frames = payload_to_json(view.scrubber.frames)
    assert isinstance(json_frames["param"]["codes"]["buffer"], memoryview)
    assert "frames" in state


def test_epoch_and_layer_traits_are_synced_and_validated(run: Any) -> None:
    rec, _, _ = run
    view = ls.timeline(rec)
    assert view.epoch == 3 and view.scrubber.epoch == 3
    assert view.layer == "features.0" and view.scrubber.layers == [
        "features.0",
        "features.2",
        "classifier.1",
        "classifier.3",
    ]
    view.scrubber.epoch = 1  # the browser moved the slider
    assert view.epoch == 1
    view.layer = "features.2"
    assert view.scrubber.layer == "features.2"
    assert view.scrubber.frames["param"]["name"] == "features.2.weight"
    # A layer without recorded parameters (a ReLU selected in the graph) shows nothing, no error.
    view.layer = "features.1"
    assert view.scrubber.frames["param"] is None and view.scrubber.frames["layer"] == "features.1"
    with pytest.raises(ValueError, match="recorded layers"):
        ls.timeline(rec, layer="nope")
    with pytest.raises(TypeError, match=r"ls\.Recorder"):
        ls.timeline(torch.zeros(3))  # type: ignore[arg-type]
    assert isinstance(view, TimelineView)


def test_clicking_an_epoch_point_jumps_there(run: Any) -> None:
    rec, _, _ = run
    view = ls.timeline(rec)
    view._clicked(view._loss_pts, {"event": "element_click", "data": {"index": 1}})
    assert view.epoch == 1
    view._clicked(view._metric_pts, {"event": "element_click", "data": {"index": 2}})
    assert view.epoch == 2
    assert view._loss_marker.x.tolist() == [rec.epoch_steps()[2] - 1] * 2
    view.log_y = True
    assert type(view.loss_fig.axes[1].scale).__name__ == "LogScale"


def test_graph_overlay_and_link_to_graph_selection(run: Any) -> None:
    rec, model, _ = run
    overlay = layer_change_overlay(rec, 0, 3)
    assert overlay == rec.layer_change(0, 3)
    assert set(overlay) == {"features.0", "features.2", "classifier.1", "classifier.3"}
    assert all(v > 0 for v in overlay.values())
    view = ls.timeline(rec)
    assert view.overlay(0, 3) == overlay
    g = ls.graph(model, torch.zeros(1, 1, 8, 8))
    g.overlay = view.overlay(0, 3)
    assert g.overlay == pytest.approx(overlay)
    traitlets.link((g, "selected"), (view, "layer"))
    g.selected = "classifier.3"
    assert view.layer == "classifier.3"
    assert view.scrubber.frames["param"]["name"] == "classifier.3.weight"
    with pytest.raises(TypeError, match="Recorder"):
        layer_change_overlay({}, 0, 1)  # type: ignore[arg-type]


def test_live_recorder_pushes_each_new_epoch(tmp_path: pathlib.Path) -> None:
    torch.manual_seed(1)
    data = small_data()
    model = digits.DigitsCNN(width=4)
    rec = ls.Recorder(model, probe=data[2][:8])
    view = ls.timeline(rec)  # before any epoch: an empty view, no error
    assert view.scrubber.epochs == [] and view.scrubber.frames["param"] is None
    sent: list[list[int]] = []

    def shown(_change: Any) -> None:  # the epochs the view shows, once per push
        epochs = view.scrubber.frames_now()["epochs"].tolist()
        if not sent or sent[-1] != epochs:
            sent.append(epochs)

    view.scrubber.observe(shown, names=["frames", "frames_tail"])
    run = digits.Training(model, data)
    with warnings.catch_warnings():
        # A failing view callback only warns inside Recorder.epoch: make it fail the test.
        warnings.simplefilter("error", RecorderWarning)
        for _ in range(3):
            run.epoch(rec)
    assert sent == [[0], [0, 1], [0, 1, 2]]  # one push per recorded epoch
    # The epochs after the first went as a tail: their rows only, joined to the first payload.
    tail = view.scrubber.frames_tail
    assert view.scrubber.frames["epochs"].tolist() == [0]
    assert tail["base"] == view.scrubber.frames["rev"]
    assert tail["param"]["codes"].shape[0] == 2 and tail["epochs"].tolist() == [0, 1, 2]
    assert tail["hist"]["codes"].shape[0] == 2 and tail["hist"]["epochs"].tolist() == [0, 1, 2]
    f = view.scrubber.frames_now()
    assert view.layer == "features.0" and view.epoch == 2  # follows the newest epoch
    np.testing.assert_array_equal(
        f["param"]["codes"], expected_codes(rec, "param", "features.0.weight", f["param"])
    )
    # A user looking at an older epoch stays there while new ones arrive.
    view.epoch = 0
    assert view.scrubber.follow is False  # the browser's "follow latest" box unticks
    run.epoch(rec)
    assert view.epoch == 0 and view.scrubber.epochs == [0, 1, 2, 3]
    view.scrubber.follow = True  # ticked again: the newest now and each new one
    run.epoch(rec)
    assert view.epoch == 4
    view.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.epoch(rec)  # unsubscribed: nothing pushed, nothing fails
    assert len(sent) == 5
    # A layer chosen before the first epoch is taken on trust and shown once recorded.
    rec2 = ls.Recorder(model, probe=data[2][:8])
    early = ls.timeline(rec2, layer="features.2")
    digits.Training(model, data).epoch(rec2)
    assert early.scrubber.frames["param"]["name"] == "features.2.weight"


def test_reopened_run_and_thinned_epochs(run: Any) -> None:
    _, _, path = run
    opened = ls.Recorder.open(path)
    view = ls.timeline(opened, layer="features.2")
    f = view.scrubber.frames
    assert f["param"]["codes"].shape[0] == 4
    np.testing.assert_array_equal(
        f["param"]["codes"], expected_codes(opened, "param", "features.2.weight", f["param"])
    )
    # A run thinned in memory (no store): dropped epochs are marked, never painted as data.
    torch.manual_seed(2)
    data = small_data()
    model = digits.DigitsCNN(width=4)
    rec = ls.Recorder(model, probe=data[2][:8], budget=200_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        digits.train(model, 4, rec, data=data)
    view = ls.timeline(rec, layer="classifier.1")
    have = view.scrubber.frames["param"]["have"].tolist()
    assert have[0] == 1 and have[-1] == 1 and len(have) == 4
    assert rec.thinned  # the budget did thin it


def test_downsample_keeps_bucket_means() -> None:
    y = np.arange(10_000, dtype=np.float64)
    y[5] = np.nan
    x, ys = downsample(y, 100)
    assert len(x) == len(ys) == 100
    assert ys[1] == pytest.approx(np.arange(100, 200).mean())
    assert np.isfinite(ys).all()


def test_training_notebook_runs() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    root = pathlib.Path(__file__).resolve().parents[1]
    nb = nbformat.read(root / "notebooks" / "training.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(root / "notebooks")}},
    )
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    accs = ast.literal_eval(code[1].outputs[-1]["data"]["text/plain"])
    assert len(accs) == 6 and accs[-1] > accs[0] and accs[-1] > 0.8
    assert code[-1].outputs[-1]["data"]["text/plain"] == "('classifier.1', 0, 6)"
    # The views rendered as widgets (timeline: a VBox; graph: an anywidget).
    for i in (0, 2):
        assert "application/vnd.jupyter.widget-view+json" in code[i].outputs[-1]["data"]


def test_charts_say_what_is_missing_and_label_what_they_draw() -> None:
    from layerscope.widgets.timeline import NO_LOSS, NO_METRICS

    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    rec = ls.Recorder(model, probe=torch.randn(2, 4))
    view = ls.timeline(rec)
    # Before training: no made-up point at (0, 0), no "C1" legend, words instead.
    assert view.loss_fig.title == NO_LOSS and view.metric_fig.title == NO_METRICS
    for mark in (view._loss, view._loss_pts, view._metric_lines, view._metric_pts):
        assert len(mark.y) == 0
    assert not view._metric_lines.display_legend and not view._loss_pts.display_legend
    assert not any(a.visible for a in [*view._loss_axes, view._epoch_axis, view._metric_axis])
    rec.epoch()  # an epoch with no steps and no metrics: still nothing to draw
    assert view.metric_fig.title == NO_METRICS and view.loss_fig.title == NO_LOSS
    assert not view._epoch_axis.visible and len(view._loss_pts.y) == 0
    for epoch in range(1, 13):
        for k in range(7):
            rec.step(loss=2.0 / epoch + 0.01 * k)
        rec.epoch(val_acc=0.5 + epoch / 40)
    assert view.loss_fig.title == "loss" and view.metric_fig.title == "metrics"
    ticks = view._epoch_axis.tick_values
    assert ticks.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    steps = view._loss_axes[0].tick_values
    assert all(float(t).is_integer() for t in steps) and 2 <= len(steps) <= 10
    # One format per axis: fixed decimals from the range.
    assert view._loss_axes[1].tick_format == ".1f"
    assert view._metric_axis.tick_format == ".2f"
    # Epoch means are labelled and sit in the middle of their epoch's steps.
    assert view._loss_pts.labels == ["epoch mean"] and view._loss_pts.display_legend
    assert view._loss.labels == ["loss (per step)"]
    means_x = np.asarray(view._loss_pts.x, dtype=float)
    assert means_x[1] == pytest.approx(3.0)  # epoch 1: steps 0..6
    view.close()


def test_a_scrub_overtaken_by_a_newer_epoch_while_following_keeps_the_newest() -> None:
    """The browser sent "epoch 3" (then the newest, following on); it reached the kernel after
    epoch 4 was recorded, behind the training cell: the view stays on the newest."""
    import torch as _torch

    model = _torch.nn.Linear(3, 2)
    rec = ls.Recorder(model, probe=_torch.randn(2, 3))
    for _ in range(5):
        rec.step(loss=1.0)
        rec.epoch()
    view = ls.timeline(rec)
    assert view.epoch == 4 and view.scrubber.follow
    view.scrubber.set_state({"epoch": 3})  # as the browser's late message arrives
    assert view.epoch == 4 and view.scrubber.epoch == 4
    view.scrubber.set_state({"follow": False})  # a real scrub turns following off first
    view.scrubber.set_state({"epoch": 2})
    assert view.epoch == 2


def _same_payload(live: dict[str, Any], fresh: dict[str, Any], where: str) -> None:
    assert live.keys() - {"rev"} == fresh.keys() - {"rev"}, where
    for key, value in fresh.items():
        if key == "rev":  # which whole payload the view holds: a count of its own
            continue
        got = live[key]
        if isinstance(value, dict):
            _same_payload(got, value, f"{where}/{key}")
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got, value, err_msg=f"{where}/{key}")
        else:
            assert got == value, f"{where}/{key}: {got!r} != {fresh!r}"


def test_a_live_view_shows_what_a_new_view_of_the_run_shows_while_it_is_thinned() -> None:
    """The live push keeps what it built (shapes, frames, names, sorted records, the step log's
    segments) between epochs; epoch() every step, NaN losses, a parameter that appears mid-run
    and a budget that reduces and lets go of old epochs must not leave it showing anything a
    new view of the same run would not."""
    torch.manual_seed(3)

    class Growing(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(12, 12)
            self.b = torch.nn.Linear(12, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.relu(self.a(x)))

    model = Growing()
    rec = ls.Recorder(
        model, axis="step", probe=torch.randn(4, 12), budget=30_000, reduced_elements=36
    )
    live = ls.timeline(rec, layer="a")
    other = ls.timeline(rec, layer="b", curves=False)  # the curves as data in _curves
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(16, 12)
    losses: list[float] = []
    tails = 0  # pushes that sent the new rows only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecorderWarning)  # the NaN losses, the thinning
        for s in range(36):
            if s == 12:  # a new parameter: recorded from the next epoch on
                model.extra = torch.nn.Parameter(torch.randn(3, 5))
            opt.zero_grad()
            loss = model(x).square().mean()
            loss.backward()
            opt.step()
            value = float("nan") if s % 7 == 3 else float(loss)
            losses.append(value)
            rec.step(loss=value)
            if s % 5 == 1:
                rec.step(loss=float(loss) / 2)  # two steps in this epoch
                losses.append(float(loss) / 2)
            rec.epoch()
            fresh = TimelineView(rec, layer="a")
            tails += bool(live.scrubber.frames_tail)
            _same_payload(live.scrubber.frames_now(), fresh.scrubber.frames, f"epoch {s}, a")
            if s % 5 == 0:  # built again with no new epoch: the same
                _same_payload(live.frames_payload(), fresh.scrubber.frames, f"again {s}")
            fresh_b = TimelineView(rec, layer="b", curves=False)
            _same_payload(other.scrubber.frames_now(), fresh_b.scrubber.frames, f"epoch {s}, b")
            _same_payload(other.scrubber._curves, fresh_b.scrubber._curves, f"epoch {s}")
            for mark in ("_loss", "_loss_pts"):
                for axis in ("x", "y"):
                    np.testing.assert_array_equal(
                        getattr(getattr(live, mark), axis), getattr(getattr(fresh, mark), axis)
                    )
            assert live.scrubber.layers == fresh.scrubber.layers
            fresh.close()
            fresh_b.close()
    assert {a["action"] for a in rec.thinned} >= {"reduced", "dropped"}  # it was thinned
    assert 0 < tails < 36, tails  # some pushes sent the new rows only, some everything again
    assert "extra" in rec.parameters and live.scrubber.layers == ["a", "b", ""]
    assert rec.parameters == list(
        dict.fromkeys(n for e in rec.epochs for n in rec.stats(e)["params"])
    )
    # The epoch points are the means of each epoch's finite losses, in the middle of its steps.
    ends = rec.epoch_steps().tolist()
    starts = [0, *ends[:-1]]
    want_y, want_x = [], []
    for a, b in zip(starts, ends, strict=True):
        seg = [v for v in losses[a:b] if np.isfinite(v)]
        want_y.append(float(np.mean(seg)) if seg else np.nan)
        want_x.append((a + max(b, a + 1) - 1) / 2)
    np.testing.assert_allclose(np.asarray(live._loss_pts.x), want_x)
    np.testing.assert_allclose(np.asarray(live._loss_pts.y), want_y, rtol=1e-6)
    live.close()
    other.close()


def test_a_live_push_sends_the_new_rows_only_while_the_colour_range_holds() -> None:
    """Weights that grow a little each epoch: the pushes send only the new rows (the tail) while
    they fit the rounded colour range, everything again once the range must grow (the rows
    sent before would otherwise be read in the wrong range), and the view always shows what a
    new view of the run shows."""
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(16, 16))
    with torch.no_grad():
        model[0].weight.uniform_(-0.31, 0.31)
    rec = ls.Recorder(model, probe=torch.randn(4, 16))
    live = ls.timeline(rec, layer="0")
    whole = []  # the colour range of each push that sent everything
    live.scrubber.observe(lambda c: whole.append(c["new"]["param"]["quant"]["hi"]), names="frames")
    tails = 0
    for _ in range(30):
        with torch.no_grad():
            model[0].weight.mul_(1.04)
        rec.epoch()
        fresh = TimelineView(rec, layer="0", curves=False)
        shown = live.scrubber.frames_now()
        _same_payload(shown, fresh.scrubber.frames, f"epoch {rec.epochs[-1]}")
        tails += bool(live.scrubber.frames_tail)
        fresh.close()
    # 0.31 x 1.04^k passes 0.4, 0.5, 0.6, 0.7, 0.8 and 1.0 (the range +-m rounded: multiples
    # of 0.1, of 0.25 once the span passes 1.6): one whole push each, and one each time the
    # tail reached its length (9 rows, then an eighth of the rows, at least 8).
    assert whole == sorted(whole) and set(whole) == {0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25}, whole
    assert len(whole) <= 13 and tails == 30 - len(whole), (whole, tails)
    live.close()


def test_epochs_pushed_from_another_thread_while_the_user_switches_layers() -> None:
    """A followed run pushes epochs from its poller's thread (here: a training thread with a
    live Recorder) while the kernel's thread handles the user's layer picks. Before the view's
    lock, two pushes at once raised in ipywidgets ("Set changed size during iteration") and a
    push paired the newly picked layer's name with the previous layer's frames."""
    import sys
    import threading

    torch.manual_seed(0)
    data = small_data()
    model = digits.DigitsCNN(width=4)
    rec = ls.Recorder(model, probe=data[2][:4])
    run = digits.Training(model, data, batch_size=160)
    run.epoch(rec)
    view = ls.timeline(rec, layer="features.0")
    mislabelled: list[tuple[str, str]] = []

    def check(_change: Any) -> None:
        f = view.scrubber.frames_now()
        p = f.get("param")
        if p is not None and not p["name"].startswith(f["layer"] + "."):
            mislabelled.append((f["layer"], p["name"]))

    view.scrubber.observe(check, names=["frames", "frames_tail"])
    failed: list[BaseException] = []

    def train() -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RecorderWarning)  # a failed push fails the test
                for _ in range(30):
                    run.epoch(rec)
        except BaseException as exc:
            failed.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns often: the races show in every run
    try:
        thread = threading.Thread(target=train)
        thread.start()
        picks = 0
        while thread.is_alive():
            view.layer = ("features.0", "classifier.1")[picks % 2]
            picks += 1
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failed and picks > 10, (failed, picks)
    assert mislabelled == []
    view.layer = "features.2"
    f = view.scrubber.frames_now()
    assert f["param"]["name"] == "features.2.weight" and f["epochs"].tolist() == rec.epochs
    np.testing.assert_array_equal(
        f["param"]["codes"], expected_codes(rec, "param", "features.2.weight", f["param"])
    )
    view.close()


def test_a_narrow_range_far_from_zero_keeps_its_contrast() -> None:
    """A norm layer's scales (0.98 to 1.03): the rounded colour range stays about as narrow as
    the data (rounding the bounds themselves, 0.8 to 1.25, painted them all one colour)."""
    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.LayerNorm(64))
    with torch.no_grad():
        model[1].weight.copy_(torch.linspace(0.981, 1.029, 64))
    rec = ls.Recorder(model, probe=torch.randn(4, 8))
    rec.epoch()
    view = ls.timeline(rec, layer="1")
    p = view.scrubber.frames["param"]
    assert p["name"] == "1.weight" and not p["diverging"]
    assert (p["quant"]["lo"], p["quant"]["hi"]) == (0.98, 1.03)
    assert p["codes"].min() <= 10 and p["codes"].max() >= 240  # spread over the colours
    view.close()


def test_the_notes_name_thinned_snapshots_in_ranges_not_one_number_each() -> None:
    """A run recorded every step whose policy reduces every other snapshot: the note says so in
    one phrase, by the steps they were taken at (it listed every step: thousands of numbers)."""
    assert _ranges([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert _ranges([1, 3, 5, 7, 9]) == "1-9 every 2"
    assert _ranges([1, 2, 4, 6, 8]) == "1-2, 4-8 every 2"
    assert _ranges([1, 3]) == "1, 3" and _ranges([10, 20, 30, 35]) == "10-30 every 10, 35"
    model = torch.nn.Linear(3, 2)
    rec = ls.Recorder(model, axis="step", snapshot=2)
    for _ in range(41):
        model(torch.randn(2, 3)).sum().backward()
        rec.step()
        rec.epoch()
    view = ls.timeline(rec, curves=False)
    policy = {a["epoch"] for a in rec.thinned if a["action"] == "policy_reduced"}
    assert policy == set(range(1, 41, 2))  # epochs 1, 3, ..., 39: steps 2, 4, ..., 40
    assert "snapshots reduced by the snapshot policy: at steps 2-40 every 2" in view.scrubber.notes
    assert view.scrubber.notes.count(",") <= 3, view.scrubber.notes
    assert "2-40 every 2" in view.notes.value
    view.close()
