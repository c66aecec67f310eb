"""Tensor views in real JupyterLab and in exported pages (headless Chromium): wheel zoom asks
the kernel for tiles of the visible window, axis ticks follow it, feature maps, offline zoom."""

from __future__ import annotations

from typing import Any

import pytest

from browser import Lab, evaluate, open_notebook, screenshot

pytestmark = pytest.mark.browser

ROOT = ".jp-OutputArea .ls-heatmap"


def wait_painted(page: Any, root: str, timeout: float = 60_000) -> None:
    page.wait_for_selector(f"{root}[data-token]", timeout=timeout)


def wheel(page: Any, root: str, fx: float, fy: float, dy: float) -> None:
    box = page.locator(f"{root} canvas.ls-canvas").bounding_box()
    page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.mouse.wheel(0, dy)


def shown_window(page: Any, root: str) -> list[float]:
    return [float(v) for v in page.locator(root).get_attribute("data-window").split(",")]


def ticks(page: Any, root: str, axis: str) -> list[int]:
    return [
        int(t)
        for t in page.locator(f"{root} .ls-axis-{axis} .ls-tick").evaluate_all(
            "els => els.map(e => e.dataset.index)"
        )
    ]


def wait_tile(page: Any, root: str, previous: str | None, timeout: float = 60_000) -> str:
    page.wait_for_function(
        "([root, prev]) => { const e = document.querySelector(root); return e && e.dataset.tileWindow && e.dataset.tileWindow !== prev; }",
        arg=[root, previous or ""],
        timeout=timeout,
    )
    return page.locator(root).get_attribute("data-tile-window")


STRIPES = """import torch, layerscope as ls
# Columns alternate -1 / +1 and rows add nothing: any block of 2+ columns averages to ~0 (white),
# single cells are dark blue or dark red, so pixels tell which cells the canvas shows.
x = torch.ones(3000, 2048)
x[:, 0::2] = -1.0
x[0, 0] = float('nan')
view = ls.heatmap(x)
view"""


def cell_rgb(page: Any, root: str, r: float, c: float) -> tuple[int, ...]:
    """RGB near the top-left corner of tensor cell (r, c) (its centre may hold its value)."""
    return tuple(
        page.evaluate(
            """([root, r, c]) => {
                const e = document.querySelector(root);
                const [r0, r1, c0, c1] = e.dataset.window.split(',').map(Number);
                const cv = e.querySelector('canvas.ls-canvas');
                const x = Math.floor((c + 0.12 - c0) / (c1 - c0) * cv.width);
                const y = Math.floor((r + 0.12 - r0) / (r1 - r0) * cv.height);
                return Array.from(cv.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));
            }""",
            [root, r, c],
        )
    )


def test_wheel_zoom_requests_the_visible_window_and_ticks_follow(page: Any, kernels: Lab) -> None:
    lab = kernels
    lab.write_notebook("zoom.ipynb", [STRIPES])
    open_notebook(page, lab, "zoom.ipynb")
    wait_painted(page, ROOT)
    # Initial view: the whole tensor, ticks from 0 to below the shape.
    assert ticks(page, ROOT, "x")[0] == 0 and ticks(page, ROOT, "x")[-1] < 2048
    assert ticks(page, ROOT, "y")[-1] < 3000
    # The overview averages the stripes: near-white in the middle.
    mid = cell_rgb(page, ROOT, 1500, 1000)
    assert all(v > 200 for v in mid), mid
    prev = None
    for _ in range(6):  # each step zooms in by e^0.8: ~17 columns across at the end
        wheel(page, ROOT, 0.25, 0.5, -400)
        page.wait_for_timeout(60)
    prev = wait_tile(page, ROOT, prev)
    page.wait_for_timeout(500)  # let the last request of the burst land
    tile = [int(v) for v in page.locator(ROOT).get_attribute("data-tile-window").split(",")]
    win = shown_window(page, ROOT)
    # The painted tile is the integer cover of the visible window.
    assert tile[0] <= win[0] < tile[0] + 1 and tile[1] - 1 < win[1] <= tile[1], (tile, win)
    assert tile[2] <= win[2] < tile[2] + 1 and tile[3] - 1 < win[3] <= tile[3], (tile, win)
    # Zoomed around 25% across: the window is small and contains that point.
    assert win[3] - win[2] < 2048 / 20 and win[2] < 512 < win[3]
    # Ticks lie inside the window and are labelled with tensor indices.
    xt, yt = ticks(page, ROOT, "x"), ticks(page, ROOT, "y")
    assert xt and all(win[2] - 0.5 <= t <= win[3] for t in xt), (xt, win)
    assert yt and all(win[0] - 0.5 <= t <= win[1] for t in yt), (yt, win)
    # The kernel answered that window: the paint report came back with it.
    client = lab.kernel_client()
    try:
        painted = evaluate(client, "view._tile_painted")
    finally:
        client.stop_channels()
    assert painted["window"] == tile and painted["bytes"] > 0
    # Cells are drawn as cells: even columns blue, odd columns red.
    c = int(win[2]) + 2
    r = int(win[0]) + 2
    even, odd = (c, c + 1) if c % 2 == 0 else (c + 1, c)
    blue, red = cell_rgb(page, ROOT, r, even), cell_rgb(page, ROOT, r, odd)
    assert blue[2] > blue[0] + 50, blue
    assert red[0] > red[2] + 50, red
    # Hover is exact at full resolution.
    box = page.locator(f"{ROOT} canvas.ls-canvas").bounding_box()
    fx = (odd + 0.5 - win[2]) / (win[3] - win[2])
    fy = (r + 0.5 - win[0]) / (win[1] - win[0])
    page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.wait_for_function(
        f"document.querySelector('{ROOT} .ls-readout').textContent.includes('= 1')"
    )
    assert page.locator(f"{ROOT} .ls-readout").inner_text() == f"[{r}, {odd}] = 1"
    screenshot(page, "tensor_zoomed_cells")
    # Double-click resets to the whole tensor.
    page.mouse.dblclick(box["x"] + 10, box["y"] + 10)
    page.wait_for_timeout(200)
    assert shown_window(page, ROOT) == [0, 3000, 0, 2048]
    assert page.errors == []
