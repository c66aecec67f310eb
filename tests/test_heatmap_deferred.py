"""Big ``ls.heatmap`` views return after the strided preview and fill in from a background
thread. Small tensors force that path here with a low threshold (the 1 GiB figures are in
bench/first_display.py)."""

from __future__ import annotations

import pathlib
import threading

import numpy as np
import pytest
import torch

import layerscope as ls
from browser import page_state
from layerscope.widgets import heatmap as hm
from layerscope.wire.codec import decode_array


@pytest.fixture
def defer_small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hm.TensorView, "_defer_above", 1000)
    monkeypatch.delenv(hm.SYNC_PASSES_ENV, raising=False)


def synchronous(x: torch.Tensor) -> ls.TensorView:
    v = ls.heatmap(x)
    assert v.passes is None
    return v


def test_preview_first_then_the_same_state_as_synchronous(
    defer_small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = torch.randn(300, 700)
    x[3, 5] = float("nan")
    v = ls.heatmap(x)
    assert v.passes is not None
    first = v._meta
    assert first["stats"]["sampled"] and v._base["agg"] == "sample"
    assert first["stats"]["shape"] == [300, 700]
    v.passes.result(timeout=60)
    meta = v._meta
    assert "sampled" not in meta["stats"] and meta["token"] != first["token"]
    assert v._hist["token"] == meta["token"] and v._base["agg"] == "mean"
    assert v._error == ""
    assert v._queued is None  # the worker holds no tensor once done

    monkeypatch.setattr(hm.TensorView, "_defer_above", None)
    ref = synchronous(x)
    assert meta["stats"] == ref._meta["stats"]
    assert v._hist["counts"]["buffer"].tobytes() == ref._hist["counts"]["buffer"].tobytes()
    np.testing.assert_array_equal(decode_array(v._base["data"]), decode_array(ref._base["data"]))


def test_env_runs_the_passes_before_return(
    defer_small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(hm.SYNC_PASSES_ENV, "1")
    v = synchronous(torch.randn(300, 700))
    assert "sampled" not in v._meta["stats"] and v._hist["token"] == v._meta["token"]


def test_small_tensors_and_subclasses_stay_synchronous() -> None:
    assert ls.heatmap(torch.randn(64, 64)).passes is None
    from layerscope.widgets.activations import ActivationView
    from layerscope.widgets.saliency import SaliencyView
    from layerscope.widgets.weights import WeightsView

    for cls in (WeightsView, ActivationView, SaliencyView):
        assert cls._defer_above is None, cls


def test_error_in_a_background_pass_reaches_the_view(
    defer_small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_x: object) -> dict:
        raise MemoryError("no room for the chunk")

    monkeypatch.setattr(hm, "_full_stats", broken)
    v = ls.heatmap(torch.randn(300, 700))
    v.passes.result(timeout=60)
    assert "MemoryError: no room for the chunk" in v._error
    assert v._meta["stats"]["sampled"]  # still the preview, marked as such


def test_reassignment_while_pending_publishes_only_the_latest(defer_small: None) -> None:
    gate = threading.Event()
    hm._passes.submit(gate.wait, 30)  # hold the worker
    try:
        v = ls.heatmap(torch.zeros(300, 700))
        v.data = torch.ones(200, 900)
        assert v._meta["stats"]["sampled"]
        assert v._queued is not None and v._queued[1].shape == (200, 900)
    finally:
        gate.set()
    v.passes.result(timeout=60)
    assert v._meta["shape"] == [200, 900] and "sampled" not in v._meta["stats"]
    assert v._meta["stats"]["mean"] == 1.0 and v._hist["token"] == v._meta["token"]


def test_agg_changed_while_pending_is_honoured(defer_small: None) -> None:
    gate = threading.Event()
    hm._passes.submit(gate.wait, 30)
    try:
        v = ls.heatmap(torch.randn(300, 700))
        v.agg = "maxabs"
    finally:
        gate.set()
    v.passes.result(timeout=60)
    assert v._base["agg"] == "maxabs"


def test_export_right_after_construction_saves_the_full_overview(
    defer_small: None, tmp_path: pathlib.Path
) -> None:
    gate = threading.Event()
    hm._passes.submit(gate.wait, 30)
    v = ls.heatmap(torch.randn(300, 700))
    assert v._meta["stats"]["sampled"]
    threading.Timer(0.2, gate.set).start()
    state = page_state(ls.export_html(v, tmp_path / "page.html").read_text())
    assert '"sampled"' not in state and '"agg": "mean"' in state


def test_slice_changed_while_pending_is_honoured(defer_small: None) -> None:
    gate = threading.Event()
    hm._passes.submit(gate.wait, 30)
    x = torch.arange(2 * 300 * 700, dtype=torch.float32).reshape(2, 300, 700)
    try:
        v = ls.heatmap(x)
        v.index = [1, 0, 0]
    finally:
        gate.set()
    v.passes.result(timeout=60)
    arr = decode_array(v._base["data"])
    assert arr.min() >= 300 * 700  # the second slice, not the first
    assert "sampled" not in v._meta["stats"]
