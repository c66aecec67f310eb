"""Exported pages (``ls.export_html`` and the whole-notebook export) opened offline in headless
Chromium: the numbers written in cells, and no failed load of any kind."""

from __future__ import annotations

import math
import pathlib
from typing import Any

import pytest
import torch

import layerscope as ls
from browser import offline_guard, screenshot, write_notebook

pytestmark = pytest.mark.browser

ROOT = ".ls-heatmap"


def weight() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.nn.Linear(64, 32).weight.detach()


def zoom_and_read_cells(page: Any, at: tuple[float, float]) -> tuple[list[dict], float]:
    """Wheel-zoom at a fractional point of the canvas until values are written in the cells;
    returns the cells' texts (the view's lsCellTexts hook) and the canvas width."""
    box = page.locator(f"{ROOT} canvas.ls-canvas").bounding_box()
    page.mouse.move(box["x"] + at[0] * box["width"], box["y"] + at[1] * box["height"])
    for _ in range(12):
        cells = page.evaluate(f"document.querySelector('{ROOT}').lsCellTexts || []")
        if len(cells) >= 6:
            break
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(120)
    width = page.evaluate(f"document.querySelector('{ROOT} canvas.ls-canvas').width")
    return cells, width


def assert_cells_match(cells: list[dict], width: float, w: torch.Tensor) -> None:
    assert cells, "no values were written in the cells"
    decimals = 4 - 1 - math.floor(math.log10(w.abs().max().item()))
    for cell in cells:
        true = w[cell["r"], cell["c"]].item()
        assert cell["text"] == f"{true:.{decimals}f}", (cell, true)
        # The whole text lies on the canvas: no minus sign (or digit) cut off at an edge.
        assert cell["x0"] >= 0 and cell["x1"] <= width, cell
    assert any(w[c["r"], c["c"]] < 0 for c in cells), "no negative value was shown"


def check_page(page: Any, path: pathlib.Path, w: torch.Tensor, name: str) -> None:
    console: list[str] = []
    page.on(
        "console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("requestfailed", lambda r: console.append(f"failed: {r.url}"))
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(f"{ROOT}[data-token]", timeout=60_000)
        # Zoom at the left edge, and at a point between cells: cells cut by the canvas edges.
        for at in [(0.004, 0.3), (0.37, 0.61)]:
            page.click(f"{ROOT} button:text('reset zoom')")
            cells, width = zoom_and_read_cells(page, at)
            assert_cells_match(cells, width, w)
            win = [float(v) for v in page.locator(ROOT).get_attribute("data-window").split(",")]
            assert win[2] % 1 or win[3] % 1, win  # an edge cuts a cell
        screenshot(page, name)
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert console == [] and page.errors == []


def test_export_html_cells_keep_their_minus_sign(page: Any, tmp_path: pathlib.Path) -> None:
    w = weight()
    path = ls.export_html(ls.heatmap(w), tmp_path / "cells.html")
    check_page(page, path, w, "export_html_cells")


def test_exported_notebook_cells_keep_their_minus_sign(page: Any, tmp_path: pathlib.Path) -> None:

    from layerscope.export import export_notebook

    src = write_notebook(
        tmp_path / "cells.ipynb",
        [
            "import torch, layerscope as ls\ntorch.manual_seed(0)\n"
            "ls.heatmap(torch.nn.Linear(64, 32).weight.detach())"
        ],
    )
    path = export_notebook(src, tmp_path / "cells_nb.html", execute=True)
    check_page(page, path, weight(), "export_notebook_cells")


def test_exported_timeline_loads_its_fonts_and_makes_no_failed_request(
    page: Any, tmp_path: pathlib.Path
) -> None:
    # bqplot's toolbar uses the html-manager's Font Awesome faces: inlined, not file:// misses.
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    rec = ls.Recorder(model, probe=torch.randn(2, 4))
    for epoch in range(2):
        rec.step(loss=1.0 / (epoch + 1))
        rec.epoch(acc=0.5 + epoch / 10)
    path = ls.export_html(ls.timeline(rec), tmp_path / "timeline.html")
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(".bqplot", timeout=60_000)
        page.wait_for_timeout(1500)
        loaded = page.evaluate(
            """async () => { await document.fonts.ready;
                return [...document.fonts].filter(f => /awesome/i.test(f.family)).map(f => f.status); }"""
        )
        screenshot(page, "export_timeline_fonts")
    assert attempted == [] and failed == [], failed or attempted
    assert "loaded" in loaded, loaded


def test_page_with_ipywidgets_inflates_its_scripts_and_reacts(
    page: Any, tmp_path: pathlib.Path
) -> None:
    # Not all anywidgets: the full widget stack, packed, inflated in the page in order.
    import ipywidgets

    w = weight()
    box = ipywidgets.VBox([ipywidgets.HTML("<b>packed</b>"), ls.heatmap(w)])
    path = ls.export_html(box, tmp_path / "packed.html")
    check_page(page, path, w, "export_packed_full_stack")
    assert page.locator(".widget-html b").inner_text() == "packed"
