"""ls.explore: one call, linked views; selecting a layer in the graph moves every panel."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import torch
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
