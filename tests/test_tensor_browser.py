"""Tensor views in real JupyterLab and in exported pages (headless Chromium): wheel zoom asks
the kernel for tiles of the visible window, axis ticks follow it, feature maps, offline zoom."""

from __future__ import annotations

import pathlib
import re
import time
from typing import Any

import pytest
import torch

import layerscope as ls
from browser import (
    Lab,
    evaluate,
    offline_guard,
    open_notebook,
    pick_from_lazy_picker,
    screenshot,
)

pytestmark = pytest.mark.browser

ROOT = ".jp-OutputArea .ls-heatmap"


def wait_painted(page: Any, root: str, timeout: float = 60_000) -> None:
    """The full overview painted (a big tensor's strided preview comes first)."""
    page.wait_for_selector(f"{root}[data-token]:not([data-preview])", timeout=timeout)


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
    open_notebook(page, lab, "zoom.ipynb", [STRIPES])
    wait_painted(page, ROOT)
    # Initial view: the whole tensor, ticks from 0 to below the shape.
    assert ticks(page, ROOT, "x")[0] == 0 and ticks(page, ROOT, "x")[-1] < 2048
    assert ticks(page, ROOT, "y")[-1] < 3000
    # The overview averages the stripes (blocks of k columns: 0 for even k, +-1/3 for k = 3),
    # and its colours span those block means, not the cells' +-1.
    assert page.locator(f"{ROOT} .ls-cbar-note").inner_text() == (
        "range of the shown block mean values (1-99%)"
    )
    assert float(page.locator(f"{ROOT} .ls-cbar-hi").inner_text()) < 0.5
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


CNN = """import torch, layerscope as ls
from torch import nn
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 96, 3, padding=1), nn.ReLU(), nn.Conv2d(96, 8, 3, padding=1))
x = torch.randn(2, 3, 20, 24)
view = ls.activations(net, x, layer='0')
view"""


def test_feature_map_grid_on_a_small_cnn(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "fmap.ipynb", [CNN])
    root = ".jp-OutputArea .ls-activations"
    wait_painted(page, root)
    cells = page.locator(f"{root} .ls-fmap")
    assert cells.count() == 96
    # The first channels are baked; channels scrolled into view are asked for, and only those.
    page.wait_for_selector(f"{root} .ls-fmap[data-channel='0'][data-loaded]")
    grid = page.locator(f"{root} .ls-fmap-grid")
    grid.evaluate("g => { g.scrollTop = g.scrollHeight; }")
    page.wait_for_selector(f"{root} .ls-fmap[data-channel='95'][data-loaded]", timeout=30_000)
    # Thumbnail pixels: painted, not the empty background.
    rgb = page.evaluate(
        f"""() => {{ const c = document.querySelector("{root} .ls-fmap[data-channel='95'] canvas");
        return [c.width, c.height, ...c.getContext('2d').getImageData(0, 0, 1, 1).data]; }}"""
    )
    assert rgb[0] == 24 and rgb[1] == 20 and rgb[5] == 255
    # Click a channel: the zoomable view shows it, and the kernel knows.
    page.locator(f"{root} .ls-fmap[data-channel='90']").click()
    page.wait_for_function(
        f"document.querySelector('{root} .ls-title').textContent.includes('[0, 90]')"
    )
    client = lab.kernel_client()
    try:
        got = evaluate(client, "[view.channel, view._meta['shape'], view.layer]")
    finally:
        client.stop_channels()
    assert got == [90, [20, 24], "0"]
    # Pick the second conv in the layer picker: (N, 8, H, W) maps.
    page.locator(f"{root} select.ls-layer").select_option("2")
    page.wait_for_function(f"document.querySelectorAll('{root} .ls-fmap').length === 8")
    screenshot(page, "tensor_feature_maps")
    assert page.errors == []


MANY = """import torch, layerscope as ls
from torch import nn
torch.manual_seed(0)
many = nn.Sequential(*[nn.Linear(4, 4) for _ in range(600)])
view = ls.activations(many, torch.randn(2, 4), layer='0')
view"""


def test_a_picker_of_hundreds_of_layers_lists_them_when_used(page: Any, kernels: Lab) -> None:
    """Past 500 layers the picker holds the shown layer alone at first (the first display of a
    48-block transformer's 8,800 options cost tens of ms); used, it lists every layer."""
    lab = kernels
    open_notebook(page, lab, "many_layers.ipynb", [MANY])
    root = ".jp-OutputArea .ls-activations"
    wait_painted(page, root)
    picker = pick_from_lazy_picker(page, f"{root} select.ls-layer", 600, "0", "599")
    page.wait_for_function(
        f"document.querySelector('{root} .ls-title').textContent.startsWith('599')"
    )
    client = lab.kernel_client()
    try:
        assert evaluate(client, "view.layer") == "599"
    finally:
        client.stop_channels()
    assert picker.evaluate("s => s.options.length") == 600
    assert page.errors == []


WEIGHTS = """import torch, layerscope as ls
from torch import nn
torch.manual_seed(0)
big = nn.Sequential(*[nn.Linear(8, 8) for _ in range(1500)], nn.Conv2d(3, 16, 3))
view = ls.weights(big)
view"""


def test_weights_table_scrolls_sorts_and_selects(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "weights.ipynb", [WEIGHTS])
    root = ".jp-OutputArea .ls-weights"
    wait_painted(page, root)
    table = f"{root} .ls-weights-table"
    assert page.locator(table).get_attribute("data-rows") == "3002"
    # Virtualized: a screenful of rows in the DOM, not 3002.
    assert 5 < page.locator(f"{table} .ls-tr").count() < 60
    # Sort by norm (descending first): the largest norm is on top.
    page.locator(f"{table} .ls-th[data-key='norm']").click()
    client = lab.kernel_client()
    try:
        top = evaluate(client, "max(zip(view._rows['norm'], view._rows['path']))[1]")
    finally:
        client.stop_channels()
    first = page.locator(f"{table} .ls-tr").first
    assert first.locator(".ls-td").first.inner_text() == top
    # Scroll to the bottom and select a row: the heatmap shows that tensor.
    page.locator(f"{table} .ls-table-body").evaluate("b => { b.scrollTop = b.scrollHeight; }")
    page.wait_for_timeout(100)
    last = page.locator(f"{table} .ls-tr").last
    path = last.locator(".ls-td").first.inner_text()
    last.click()
    page.wait_for_function(f"document.querySelector('{root} .ls-title').textContent === {path!r}")
    screenshot(page, "tensor_weights")
    assert page.errors == []


def test_exported_page_zooms_offline(page: Any, tmp_path: pathlib.Path) -> None:
    x = torch.ones(3000, 2000)
    x[:, 0::2] = -1.0
    x[:1500] *= 0.5  # top half pale, bottom half dark at the overview's resolution
    path = ls.export_html(ls.heatmap(x, agg="maxabs"), tmp_path / "zoom.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = ".ls-heatmap"
        wait_painted(page, root, timeout=30_000)
        page.wait_for_selector(f"{root} .ls-status:text('no kernel')", timeout=15_000)
        for _ in range(4):
            wheel(page, root, 0.5, 0.9, -400)
            page.wait_for_timeout(50)
        win = shown_window(page, root)
        assert win[1] - win[0] < 3000 / 10 and win[0] < 2700 < win[1]
        xt = ticks(page, root, "x")
        assert xt and all(win[2] - 0.5 <= t <= win[3] for t in xt)
        # Never blank: the baked overview is drawn scaled into the window.
        rgb = cell_rgb(page, root, (win[0] + win[1]) / 2, (win[2] + win[3]) / 2)
        assert rgb != (0, 0, 0) and rgb != (255, 255, 255), rgb
        screenshot(page, "tensor_export_zoomed")
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []


CANVAS_SPREAD = """(root) => {
  // Mean and spread of (red - blue) over the canvas: ~0 and ~0 for a uniform grey view.
  const cv = document.querySelector(root + ' canvas.ls-canvas');
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  let n = 0, s = 0, s2 = 0;
  for (let i = 0; i < d.length; i += 4 * 7) { const v = d[i] - d[i + 2]; n++; s += v; s2 += v * v; }
  return Math.sqrt(s2 / n - (s / n) ** 2);
}"""


def region_rgb(page: Any, root: str, r0: float, r1: float, c0: float, c1: float) -> list[float]:
    """Mean RGB over the tensor region rows r0..r1, cols c0..c1 (fractions of the shape)."""
    return page.evaluate(
        """([root, r0, r1, c0, c1]) => {
            const cv = document.querySelector(root + ' canvas.ls-canvas');
            const x0 = Math.floor(c0 * cv.width), x1 = Math.floor(c1 * cv.width);
            const y0 = Math.floor(r0 * cv.height), y1 = Math.floor(r1 * cv.height);
            const d = cv.getContext('2d').getImageData(x0, y0, x1 - x0, y1 - y0).data;
            const m = [0, 0, 0];
            for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) m[k] += d[i + k];
            return m.map((v) => v / (d.length / 4));
        }""",
        [root, r0, r1, c0, c1],
    )


def ticks_cut(page: Any, root: str) -> list[str]:
    """Axis tick labels that reach outside their axis (and so are cut by it)."""
    return page.evaluate(
        """(root) => [...document.querySelectorAll(root + ' .ls-axis-x .ls-tick, ' + root + ' .ls-axis-y .ls-tick')]
            .filter((t) => { const a = t.parentElement.getBoundingClientRect(), b = t.getBoundingClientRect();
                return b.left < a.left - 0.5 || b.right > a.right + 0.5 || b.top < a.top - 0.5 || b.bottom > a.bottom + 0.5; })
            .map((t) => t.parentElement.className + ':' + t.textContent)""",
        root,
    )


def test_big_random_tensor_shows_its_structure_not_grey(page: Any, tmp_path: pathlib.Path) -> None:
    # Block means of N(0, 1) cells are ~0 within the tensor's +/-5 range: one grey, unless the
    # colours follow the shown block values. A shifted square must stand out.
    torch.manual_seed(0)
    x = torch.randn(4096, 4096)
    x[1024:2048, 1024:2048] += 0.5
    path = ls.export_html(ls.heatmap(x), tmp_path / "big.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = ".ls-heatmap"
        wait_painted(page, root, timeout=60_000)
        spread = page.evaluate(CANVAS_SPREAD, root)
        square = region_rgb(page, root, 0.27, 0.48, 0.27, 0.48)
        outside = region_rgb(page, root, 0.6, 0.9, 0.6, 0.9)
        note = page.locator(f"{root} .ls-pixel-note").inner_text()
        cbar = page.locator(f"{root} .ls-cbar-note").inner_text()
        cut = ticks_cut(page, root)
        screenshot(page, "tensor_big_random")
    assert attempted == [] and page.errors == []
    assert cut == [], f"axis labels cut off: {cut}"  # the first cell's "0" on both axes
    assert spread > 25, f"the view is one colour (spread {spread:.1f})"
    assert square[0] - square[2] > 60, f"the +0.5 square is not red: {square} vs {outside}"
    assert abs(outside[0] - outside[2]) < 30, outside
    assert re.fullmatch(r"each block: mean of \d+(\.\d)? x \d+(\.\d)? cells", note), note
    assert cbar == "range of the shown block mean values (1-99%)", cbar


def test_histogram_bar_click_highlights_cells(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(
        page,
        lab,
        "hist.ipynb",
        [
            "import torch, layerscope as ls\nx = torch.zeros(8, 8)\nx[:4] = 1.0\nview = ls.heatmap(x, colormap='gray')\nview"
        ],
    )
    wait_painted(page, ROOT)
    page.wait_for_selector(f"{ROOT} .ls-hist[data-ready='1']")
    before_top = cell_rgb(page, ROOT, 6, 3)  # a 0 cell: black in gray
    bars = page.locator(f"{ROOT} .ls-hist canvas")
    bars.scroll_into_view_if_needed()
    box = bars.bounding_box()
    bars.click(position={"x": box["width"] - 2, "y": box["height"] / 2})  # the bar of 1.0
    page.wait_for_selector(f"{ROOT} .ls-hist[data-selected='63']")
    assert "32 values" in page.locator(f"{ROOT} .ls-hist-sel").inner_text()
    after_top = cell_rgb(page, ROOT, 6, 3)
    assert after_top[0] > before_top[0] + 100  # dimmed towards light grey: not in range
    assert cell_rgb(page, ROOT, 1, 3)[0] > 240  # a 1.0 cell stays white
    assert page.errors == []


@pytest.mark.slow
def test_16384_squared_float32_opens_and_zooms(page: Any, kernels: Lab) -> None:
    lab = kernels
    lab.write_notebook(
        "huge.ipynb",
        [
            "import torch, layerscope as ls\ntorch.manual_seed(0)\nx = torch.randn(16384, 16384)\nx[8000:8003, 9000:9003] = 50.0\nview = ls.heatmap(x)\nview"
        ],
    )
    t0 = time.time()
    open_notebook(page, lab, "huge.ipynb", timeout=180_000)
    wait_painted(page, ROOT, timeout=180_000)
    prev = None
    for _ in range(5):
        wheel(page, ROOT, 9001 / 16384, 8001 / 16384, -400)
        page.wait_for_timeout(100)
    prev = wait_tile(page, ROOT, prev, timeout=60_000)
    page.wait_for_timeout(1000)
    tile = [int(v) for v in page.locator(ROOT).get_attribute("data-tile-window").split(",")]
    win = shown_window(page, ROOT)
    assert tile[0] <= win[0] and tile[1] >= win[1] and tile[2] <= win[2] and tile[3] >= win[3]
    assert win[0] < 8001 < win[1] and win[2] < 9001 < win[3]
    assert int(page.locator(ROOT).get_attribute("data-tile-bytes")) <= 2 * 1280 * 900
    screenshot(page, "tensor_16384")
    assert time.time() - t0 < 170
    assert page.errors == []


def test_n_d_axis_pickers_and_sliders(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(
        page,
        lab,
        "nd.ipynb",
        [
            "import torch, layerscope as ls\nx = torch.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)\nview = ls.heatmap(x)\nview"
        ],
    )
    wait_painted(page, ROOT)
    assert page.locator(f"{ROOT} .ls-nd .ls-slider").count() == 2
    token = page.locator(ROOT).get_attribute("data-token")
    slider = page.locator(f"{ROOT} .ls-slider[data-axis='1']")
    slider.evaluate("s => { s.value = '2'; s.dispatchEvent(new Event('change')); }")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.token !== '{token}'")
    hover = page.locator(f"{ROOT} canvas.ls-canvas").bounding_box()
    page.mouse.move(hover["x"] + 2.5 * hover["width"] / 5, hover["y"] + 1.5 * hover["height"] / 4)
    page.wait_for_function(
        f"document.querySelector('{ROOT} .ls-readout').textContent.includes('=')"
    )
    assert page.locator(f"{ROOT} .ls-readout").inner_text() == "[0, 2, 1, 2] = 47"
    # Show axes (0, 3): rows are the first axis now.
    token = page.locator(ROOT).get_attribute("data-token")
    page.locator(f"{ROOT} select.ls-axis-row").select_option("0")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.token !== '{token}'")
    client = lab.kernel_client()
    try:
        got = evaluate(client, "[view.axes, view.index, view._meta['shape']]")
    finally:
        client.stop_channels()
    assert got == [[0, 3], [0, 2, 0, 0], [2, 5]]
    screenshot(page, "tensor_nd")
    assert page.errors == []


def test_exported_activations_and_weights_render_offline(page: Any, tmp_path: pathlib.Path) -> None:
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU())
    acts = ls.export_html(ls.activations(net, torch.randn(1, 3, 16, 16)), tmp_path / "acts.html")
    weights = ls.export_html(ls.weights(net), tmp_path / "weights.html")
    with offline_guard(page) as attempted:
        page.goto(acts.as_uri())
        wait_painted(page, ".ls-activations", timeout=30_000)
        # The baked thumbnails show without a kernel.
        page.wait_for_selector(".ls-fmap[data-channel='11'][data-loaded]", timeout=15_000)
        screenshot(page, "tensor_activations_export")
        page.goto(weights.as_uri())
        wait_painted(page, ".ls-weights", timeout=30_000)
        assert page.locator(".ls-weights-table .ls-tr").count() == 2
        assert page.locator(".ls-weights .ls-title").inner_text() == "0.weight"
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []


def test_conv_kernels_are_square_with_gaps(page: Any, tmp_path: pathlib.Path) -> None:
    # A (16, 1, 3, 3) conv weight: a 16 x 1 grid of square 3 x 3 kernels with gaps between them.
    torch.manual_seed(0)
    w = torch.randn(16, 1, 3, 3).abs() + 0.5  # no cell is near white
    path = ls.export_html(ls.heatmap(w, arrangement="kernels"), tmp_path / "kernels.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = ".ls-heatmap"
        wait_painted(page, root, timeout=30_000)
        box = page.locator(f"{root} canvas.ls-canvas").bounding_box()
        colours = page.evaluate(
            """(root) => {
                const cv = document.querySelector(root + ' canvas.ls-canvas');
                const ctx = cv.getContext('2d');
                const at = (r, c) => Array.from(ctx.getImageData(
                    Math.floor(c / 3 * cv.width), Math.floor(r / 48 * cv.height), 1, 1).data.slice(0, 3));
                // On the border between kernels k-1 and k (row 3k), and in kernel centres.
                const gaps = [1, 5, 9, 15].map((k) => at(3 * k, 1.5));
                const centres = [0, 5, 9, 15].map((k) => at(3 * k + 1.5, 1.5));
                return { gaps, centres };
            }""",
            root,
        )
        screenshot(page, "tensor_kernels_grid")
    assert attempted == [] and page.errors == []
    # Square cells: the canvas is 3 cells wide for 48 tall (not stretched to the page width).
    assert abs(box["width"] / box["height"] - 3 / 48) < 0.02, box
    assert box["height"] >= 360
    assert all(c == [255, 255, 255] for c in colours["gaps"]), colours
    assert all(c != [255, 255, 255] for c in colours["centres"]), colours


def test_weights_table_is_readable_at_half_width(page: Any, tmp_path: pathlib.Path) -> None:
    # A transformer: every path starts "layers.0.self_attn..." or "layers.1...."; at half width
    # the rows must still be told apart, and no header or value may be cut off.
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    path = ls.export_html(ls.weights(model), tmp_path / "weights.html")
    names = [n for n, _ in model.named_parameters()]
    table = ".ls-weights-table"
    with offline_guard(page) as attempted:
        for width, name in [(560, "weights_table_narrow"), (1200, "weights_table_wide")]:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_selector(f"{table} .ls-tr", timeout=30_000)
            page.wait_for_timeout(200)
            # Styled (the view's stylesheets reached its element): the header is a grid row.
            assert (
                page.eval_on_selector(f"{table} .ls-table-head", "e => getComputedStyle(e).display")
                == "grid"
            )
            shown = page.locator(table).get_attribute("data-columns").split(",")
            cells = page.locator(f"{table} .ls-tr").first.locator(".ls-td")
            cut = page.evaluate(
                """(t) => [...document.querySelectorAll(t + ' .ls-td, ' + t + ' .ls-th')]
                    .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent)""",
                table,
            )
            rows = page.evaluate(
                """(t) => [...document.querySelectorAll(t + ' .ls-tr')].map((r) => {
                    const c = r.querySelector('.ls-td'); return [c.textContent, c.title]; })""",
                table,
            )
            screenshot(page, name)
            assert cut == [], f"text cut off at {width} px: {cut}"
            assert shown[:3] == ["path", "shape", "norm"], shown
            texts = [t for t, _ in rows]
            assert len(set(texts)) == len(texts), f"rows cannot be told apart: {texts}"
            for text, full in rows:
                assert full in names
                if text != full:  # parts left out in the middle; the last segment is kept
                    parts = text.split("…")
                    assert full.endswith(parts[-1]) and full.split(".")[-1] in parts[-1], text
                    at = 0
                    for part in parts:
                        at = full.index(part, at) + len(part)
            assert cells.count() == len(shown)
            if width == 560:
                assert "kind" not in shown and any("…" in t for t in texts)
            else:
                assert set(shown) == {
                    "path",
                    "shape",
                    "norm",
                    "nan",
                    "inf",
                    "mean",
                    "std",
                    "count",
                    "dtype",
                    "kind",
                }
    assert attempted == [] and page.errors == []


def test_axes_show_names_elided_with_the_index_on_hover(page: Any, tmp_path: pathlib.Path) -> None:
    # An attention matrix over 12 tokens: the axes name the tokens, long ones elided.
    tokens = [
        "<s>",
        "The",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "extraordinarily_long_token",
        "dog",
        ".",
        "</s>",
    ]
    view = ls.heatmap(torch.rand(12, 12))
    view.axis_labels = {"rows": tokens, "cols": tokens}
    path = ls.export_html(view, tmp_path / "names.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = ".ls-heatmap"
        wait_painted(page, root, timeout=30_000)
        ticks = {}
        for axis in ("x", "y"):
            ticks[axis] = page.locator(f"{root} .ls-axis-{axis} .ls-tick").evaluate_all(
                "els => els.map(e => [Number(e.dataset.index), e.textContent, e.title, e.scrollWidth <= e.parentElement.clientWidth])"
            )
        screenshot(page, "tensor_axis_names")
    assert attempted == [] and page.errors == []
    for axis in ("x", "y"):
        assert len(ticks[axis]) >= 6, ticks[axis]
        for index, text, title, _ in ticks[axis]:
            assert title == f"[{index}] {tokens[index]}"
            assert text == tokens[index] or ("…" in text and len(text) < len(tokens[index])), text
    assert all(t[1] == tokens[t[0]] for t in ticks["x"] if len(tokens[t[0]]) <= 5)
    assert any("…" in t[1] for t in ticks["x"] + ticks["y"] if t[0] == 8)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours."""

    def lum(css: str) -> float:
        r, g, b = (int(float(v)) / 255 for v in re.findall(r"[\d.]+", css)[:3])
        f = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * f[0] + 0.7152 * f[1] + 0.0722 * f[2]

    hi, lo = sorted([lum(a), lum(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_selected_weights_row_is_readable(browser: Any, tmp_path: pathlib.Path, theme: str) -> None:
    lab = Lab(tmp_path, theme=theme)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        cell = "import torch, layerscope as ls\nls.weights(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)))"
        open_notebook(page, lab, "rows.ipynb", [cell])
        row = ".jp-OutputArea .ls-weights-table .ls-tr.ls-selected"
        page.wait_for_selector(row, timeout=60_000)
        colours = page.eval_on_selector(
            row,
            "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e.querySelector('.ls-td')).color]",
        )
        screenshot(page, f"weights_selected_{theme.split()[-1].lower()}")
        page.close()
    finally:
        lab.shutdown_kernels()
        lab.close()
    assert contrast(*colours) >= 4.5, colours
