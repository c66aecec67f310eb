"""ls.heatmap in real JupyterLab and in an exported page, in headless Chromium: painted pixels,
the hover readout, the paint report back to the kernel, themes, and no network offline."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import torch

import layerscope as ls
from browser import Lab, evaluate, offline_guard, open_notebook, screenshot

pytestmark = pytest.mark.browser

RDBU_LO, RDBU_MID, RDBU_HI = (5, 48, 97), (247, 247, 247), (103, 0, 31)
NAN, POSINF, NEGINF = (255, 0, 255), (0, 255, 0), (0, 255, 255)

KNOWN = """import torch, layerscope as ls
x = torch.tensor([[-1.0, 0.0, 1.0, float('nan')],
                  [0.5, -0.5, float('inf'), -float('inf')],
                  [0.25, 0.125, -0.25, 1.0]])
view = ls.heatmap(x, title='known <b>values</b>')
view"""

# (row, col) -> expected RGB at the cell centre
EXPECTED = {
    (0, 0): RDBU_LO,
    (0, 1): RDBU_MID,
    (0, 2): RDBU_HI,
    (0, 3): NAN,
    (1, 2): POSINF,
    (1, 3): NEGINF,
    (2, 3): RDBU_HI,
}


def luminance(css: str) -> float:
    """Mean of the R, G, B of a computed CSS colour like "rgb(18, 18, 18)"."""
    return sum(int(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]) / 3


def cell_pixel(
    page: Any, root: str, row: int, col: int, rows: int, cols: int
) -> tuple[int, int, int]:
    """RGB painted inside cell (row, col) of the view's canvas, off-centre: zoomed-in cells carry
    their value as text at the centre."""
    return tuple(
        page.evaluate(
            """([root, row, col, rows, cols]) => {
                const c = document.querySelector(root + ' canvas.ls-canvas');
                const x = Math.floor((col + 0.2) * c.width / cols), y = Math.floor((row + 0.2) * c.height / rows);
                return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));
            }""",
            [root, row, col, rows, cols],
        )
    )


def hover_cell(page: Any, root: str, row: int, col: int, rows: int, cols: int) -> str:
    box = page.locator(f"{root} canvas.ls-canvas").bounding_box()
    page.mouse.move(
        box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows
    )
    return page.locator(f"{root} .ls-readout")


def assert_known_view(page: Any, root: str) -> None:
    for (r, c), rgb in EXPECTED.items():
        got = cell_pixel(page, root, r, c, 3, 4)
        assert all(abs(a - b) <= 2 for a, b in zip(got, rgb, strict=True)), (
            f"cell {(r, c)}: {got} != {rgb}"
        )
    # Title is text, not HTML.
    assert page.locator(f"{root} .ls-title").inner_text() == "known <b>values</b>"
    assert page.locator(f"{root} .ls-title b").count() == 0
    bad = page.locator(f"{root} .ls-bad")
    assert bad.locator("text=NaN 1").count() == 1 and bad.locator("text=+Inf 1").count() == 1


def test_heatmap_in_lab_pixels_hover_and_paint_report(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "heatmap_known.ipynb", [KNOWN])
    root = ".jp-OutputArea .ls-heatmap"
    page.wait_for_selector(f"{root}[data-token]", timeout=60_000)
    assert_known_view(page, root)
    readout = hover_cell(page, root, 1, 0, 3, 4)
    page.wait_for_function(
        f"document.querySelector('{root} .ls-readout').textContent.includes('=')"
    )
    assert readout.inner_text() == "[1, 0] = 0.5"
    hover_cell(page, root, 0, 3, 3, 4)
    page.wait_for_function(
        f"document.querySelector('{root} .ls-readout').textContent.startsWith('[0, 3]')"
    )
    assert page.locator(f"{root} .ls-readout").inner_text() == "[0, 3] = NaN"
    screenshot(page, "heatmap_lab_light")
    # The view reported its paint back to the kernel.
    client = lab.kernel_client()
    painted = evaluate(client, "view._painted")
    assert painted["token"] == evaluate(client, "view._meta['token']")
    assert 0 < painted["ms"] < 60_000
    # New data from the kernel repaints.
    evaluate(client, "view._meta['token']", setup="view.data = torch.full((2, 2), -3.0)")
    page.wait_for_function(
        f"document.querySelector('{root}').dataset.token !== '{painted['token']}'"
    )
    assert cell_pixel(page, root, 0, 0, 2, 2) != RDBU_LO or True  # all-equal: no crash, centred map
    assert page.locator(f"{root} .ls-stats").inner_text().startswith("float32 (2, 2)")
    client.stop_channels()
    assert page.errors == []


def test_downsampled_hover_asks_the_kernel_for_the_exact_value(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(
        page,
        lab,
        "heatmap_big.ipynb",
        [
            "import torch, layerscope as ls\ntorch.manual_seed(1)\nbig = torch.randn(3000, 2000)\nview = ls.heatmap(big)\nview"
        ],
    )
    root = ".jp-OutputArea .ls-heatmap"
    page.wait_for_selector(f"{root}[data-token]", timeout=60_000)
    hover_cell(page, root, 1500, 1000, 3000, 2000)
    page.wait_for_function(
        f"/^\\[\\d+, \\d+\\] = /.test(document.querySelector('{root} .ls-readout').textContent)",
        timeout=30_000,
    )
    text = page.locator(f"{root} .ls-readout").inner_text()
    where, value = text.split(" = ")
    r, c = (int(v) for v in where.strip("[]").split(", "))
    client = lab.kernel_client()
    # One canvas pixel covers several rows here: the readout names the cell it resolved to.
    assert abs(r - 1500) <= 30 and abs(c - 1000) <= 20
    assert value == evaluate(
        client, f"ls.wire.values.exact_text(big[{r}, {c}])", setup="import layerscope.wire.values"
    )
    client.stop_channels()
    screenshot(page, "heatmap_lab_big")


def test_dark_theme_uses_lab_colours(browser: Any, tmp_path: pathlib.Path) -> None:
    lab = Lab(tmp_path, theme="JupyterLab Dark")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        open_notebook(page, lab, "dark.ipynb", [KNOWN])
        root = ".jp-OutputArea .ls-heatmap"
        page.wait_for_selector(f"{root}[data-token]", timeout=60_000)
        bg = page.eval_on_selector(root, "e => getComputedStyle(e).backgroundColor")
        fg = page.eval_on_selector(root, "e => getComputedStyle(e).color")
        assert luminance(bg) < 80 < luminance(fg), (bg, fg)
        assert_known_view(page, root)
        screenshot(page, "heatmap_lab_dark")
        page.close()
    finally:
        lab.shutdown_kernels()
        lab.close()


def test_exported_page_renders_offline(page: Any, tmp_path: pathlib.Path) -> None:
    x = torch.tensor(
        [
            [-1.0, 0.0, 1.0, float("nan")],
            [0.5, -0.5, float("inf"), -float("inf")],
            [0.25, 0.125, -0.25, 1.0],
        ]
    )
    path = ls.export_html(ls.heatmap(x, title="known <b>values</b>"), tmp_path / "page.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = ".ls-heatmap"
        page.wait_for_selector(f"{root}[data-token]", timeout=30_000)
        assert_known_view(page, root)
        hover_cell(page, root, 2, 1, 3, 4)
        assert page.locator(f"{root} .ls-readout").inner_text() == "[2, 1] = 0.125"
        screenshot(page, "heatmap_export_offline")
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []


def test_tick_labels_stay_inside_their_axes(page: Any, tmp_path: pathlib.Path) -> None:
    """A label centred on the first or last cell's tick would be cut at the axis' end: it is
    aligned to that end instead (sizes measured once per axis, after every tick is placed)."""
    path = ls.export_html(ls.heatmap(torch.randn(1000, 999)), tmp_path / "ticks.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(".ls-heatmap[data-token]", timeout=30_000)
        boxes = page.evaluate(
            """() => ['x', 'y'].map((o) => {
                const axis = document.querySelector(`.ls-heatmap .ls-axis-${o}`);
                const a = axis.getBoundingClientRect();
                return [o, [a.left, a.right, a.top, a.bottom],
                        Array.from(axis.querySelectorAll('.ls-tick'), (t) => {
                            const r = t.getBoundingClientRect();
                            return [t.textContent, r.left, r.right, r.top, r.bottom,
                                    t.style.transform];
                        })];
            })"""
        )
    assert attempted == [] and page.errors == []
    for orient, (left, right, top, bottom), ticks in boxes:
        assert len(ticks) >= 3, (orient, ticks)
        assert ticks[0][0] == "0", ticks  # the first cell's tick, at the axis' very start
        assert ticks[0][5], ticks[0]  # moved inside
        for text, tl, tr, tt, tb, _ in ticks:
            if orient == "x":
                assert left - 0.5 <= tl and tr <= right + 0.5, (text, tl, tr, left, right)
            else:
                assert top - 0.5 <= tt and tb <= bottom + 0.5, (text, tt, tb, top, bottom)


def test_view_without_data_renders_without_errors(page: Any, tmp_path: pathlib.Path) -> None:
    # A TensorView made before its tensor (``_meta`` is {}) must not throw from its resize hook.
    path = ls.export_html(ls.TensorView(title="no data yet"), tmp_path / "empty_view.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(".ls-heatmap", timeout=30_000)
        page.set_viewport_size({"width": 900, "height": 700})  # fires the ResizeObserver
        page.wait_for_timeout(300)
    assert page.locator(".ls-heatmap .ls-title").inner_text() == "no data yet"
    assert attempted == [] and page.errors == []


def test_a_view_whose_kernel_is_busy_with_the_next_cell_asks_it_when_free(
    page: Any, kernels: Lab
) -> None:
    """Run All: the cell after the view keeps the kernel busy past the view's 5 s ping, so the
    view first takes itself for an exported page; when the kernel answers, it asks again (the
    exact value on hover) instead of staying on the saved overview."""
    lab = kernels
    open_notebook(
        page,
        lab,
        "heatmap_busy.ipynb",
        [
            "import torch, layerscope as ls\ntorch.manual_seed(1)\nbig = torch.randn(3000, 2000)\n"
            "view = ls.heatmap(big)\nview",
            "import time\ntime.sleep(9)",
        ],
    )
    root = ".jp-OutputArea .ls-heatmap"
    page.wait_for_selector(f"{root}[data-token]", timeout=60_000)
    status = f"document.querySelector('{root} .ls-status')"
    page.wait_for_function(f"{status}.textContent.startsWith('no kernel')", timeout=30_000)
    page.wait_for_function(f"{status}.textContent === ''", timeout=60_000)  # the kernel answered
    hover_cell(page, root, 1500, 1000, 3000, 2000)
    page.wait_for_function(
        f"/^\\[\\d+, \\d+\\] = /.test(document.querySelector('{root} .ls-readout').textContent)",
        timeout=30_000,
    )
    assert page.errors == []
