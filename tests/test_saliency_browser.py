"""ls.saliency in real JupyterLab and in an exported page, in headless Chromium: the overlay's
pixels where attribution is strong and weak, the opacity slider, re-targeting from the top-k list
(the kernel recomputes), tokens as text, attention thumbnails opening the matrix, a 2,048-token
context that scrolls and hovers without a long task, and the exported page offline."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
import torch

import layerscope as ls
from browser import Lab, evaluate, offline_guard, open_notebook, screenshot

pytestmark = pytest.mark.browser

TESTS = pathlib.Path(__file__).resolve().parent

# A linear "classifier" over a 16x16 RGB image: class 0 reads only the top-left quadrant, class 1
# only the bottom-right one, so the gradient is strong exactly there and zero elsewhere.
IMAGE_MODEL = """import torch, layerscope as ls
from torch import nn

def quadrant_model():
    m = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))
    with torch.no_grad():
        w = torch.zeros(3, 3, 16, 16)
        w[0, :, :8, :8] = 1.0
        w[1, :, 8:, 8:] = 1.0
        w[2, :, :, :] = 0.01
        m[1].weight.copy_(w.flatten(1))
        m[1].bias.copy_(torch.tensor([120.0, 0.0, 100.0]))
    return m.eval()

model = quadrant_model()
x = torch.linspace(0, 1, 16).expand(1, 3, 16, 16).clone()
"""

IMAGE_CELL = (
    IMAGE_MODEL
    + """view = ls.saliency(model, x, method=["gradient", "input_x_gradient"],
                  labels=["top-left <b>tl</b>", "bottom-right", "flat"])
view"""
)


def pixel(page: Any, root: str, method: str, row: int, col: int) -> tuple[int, int, int]:
    """RGB at (row, col) of the panel's canvas (canvas pixels are baked pixels)."""
    return tuple(
        page.evaluate(
            """([root, method, row, col]) => {
                const c = document.querySelector(`${root} .ls-panel[data-method="${method}"] canvas`);
                return Array.from(c.getContext('2d').getImageData(col, row, 1, 1).data.slice(0, 3));
            }""",
            [root, method, row, col],
        )
    )


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 2) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_image_overlay_opacity_and_retarget_in_lab(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "saliency_image.ipynb", [IMAGE_CELL])
    root = ".jp-OutputArea .ls-saliency"
    page.wait_for_selector(f"{root}[data-painted] .ls-panel canvas", timeout=120_000)
    assert page.locator(f"{root}").get_attribute("data-target") == "0"
    # Strong attribution (top-left, class 0) is coloured; weak (bottom-right) shows the input.
    strong = pixel(page, root, "gradient", 2, 2)
    assert not close(strong, pixel(page, root, "input", 2, 2), 20)
    assert strong[0] > strong[2], f"positive attribution should be red: {strong}"
    assert close(pixel(page, root, "gradient", 13, 13), pixel(page, root, "input", 13, 13))
    # The labels are text, never HTML.
    labels = page.locator(f"{root} .ls-topk .ls-label")
    assert labels.first.inner_text() == "top-left <b>tl</b>"
    assert page.locator(f"{root} .ls-topk b").count() == 0
    screenshot(page, "saliency_lab_image")
    # The opacity slider: at 0 the overlay panel is the input.
    slider = page.locator(f"{root} input.ls-opacity")
    slider.fill("0")
    page.wait_for_function(f"document.querySelector('{root}').dataset.opacity === '0'")
    assert close(pixel(page, root, "gradient", 2, 2), pixel(page, root, "input", 2, 2))
    slider.fill("1")
    page.wait_for_function(f"document.querySelector('{root}').dataset.opacity === '1'")
    full = pixel(page, root, "gradient", 2, 2)
    assert not close(full, strong, 5), "opacity 1 should cover more than the default 0.6"
    # Click the second class: the kernel recomputes for it and the overlay moves.
    page.click(f"{root} .ls-topk button[data-cls='1']")
    page.wait_for_function(f"document.querySelector('{root}').dataset.target === '1'")
    client = lab.kernel_client()
    assert evaluate(client, "view.target") == [1]
    assert close(pixel(page, root, "gradient", 2, 2), pixel(page, root, "input", 2, 2))
    assert not close(pixel(page, root, "gradient", 13, 13), pixel(page, root, "input", 13, 13), 20)
    assert page.locator(f"{root} .ls-topk button.ls-current").get_attribute("data-cls") == "1"
    screenshot(page, "saliency_lab_retarget")
    # A failing re-target is a readable message in the view, not a spinner.
    evaluate(client, "1", setup="view._method_kw['gradient']['bogus_option'] = 1")
    page.click(f"{root} .ls-topk button[data-cls='2']")
    err = page.locator(f"{root} .ls-error")
    err.wait_for(state="visible", timeout=60_000)
    assert "bogus_option" in err.inner_text()
    assert page.locator(f"{root} progress.ls-progress").is_hidden()
    assert evaluate(client, "view.target") == [1]
    # Methods set from Python: the panels follow (same count, new order).
    evaluate(client, "1", setup="view.methods = ['input_x_gradient', 'gradient']")
    page.wait_for_function(
        f"document.querySelectorAll('{root} .ls-panel')[1].dataset.method === 'input_x_gradient'"
    )
    assert page.locator(f"{root} .ls-panel .ls-caption").all_inner_texts() == [
        "input",
        "input_x_gradient",
        "gradient",
    ]
    client.stop_channels()
    assert page.errors == []


SLOW_CELL = (
    IMAGE_MODEL
    + """import time

class Slow(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        time.sleep(0.03 * x.shape[0])  # a slow model: about 3 s for IG below
        return self.inner(x)

view = ls.saliency(Slow(model), x, method="integrated_gradients", n_steps=4, internal_batch_size=1)
view"""
)


def test_sample_box_applies_on_enter_and_refuses_out_of_range(page: Any, kernels: Lab) -> None:
    lab = kernels
    cell = (
        IMAGE_MODEL
        + """x = torch.cat([x, x.flip(-1), x.flip(-2), x * 0.5])
view = ls.saliency(model, x, method="gradient")
view"""
    )
    open_notebook(page, lab, "saliency_samples.ipynb", [cell])
    root = ".jp-OutputArea .ls-saliency"
    page.wait_for_selector(f"{root}[data-painted] .ls-panel canvas", timeout=120_000)
    box = page.locator(f"{root} input.ls-batch")
    client = lab.kernel_client()
    # Enter applies at once (no blur): the drawing, the box and the trait agree.
    box.fill("2")
    box.press("Enter")
    page.wait_for_function(f"document.querySelector('{root}').dataset.batch === '2'", timeout=5_000)
    assert box.input_value() == "2"
    assert evaluate(client, "view.batch") == 2
    assert box.evaluate("e => document.activeElement === e"), "Enter must not leave the box"
    # Out of range: refused with a message; the box goes back to the sample drawn.
    box.fill("7")
    box.press("Enter")
    page.wait_for_selector(f"{root} .ls-error:text('sample 7 is outside 0..3')", timeout=5_000)
    assert box.input_value() == "2"
    assert page.locator(root).get_attribute("data-batch") == "2"
    assert evaluate(client, "view.batch") == 2
    box.fill("3")
    box.press("Enter")
    page.wait_for_function(f"document.querySelector('{root}').dataset.batch === '3'", timeout=5_000)
    assert page.locator(f"{root} .ls-error").is_hidden()
    assert evaluate(client, "view.batch") == 3
    screenshot(page, "saliency_lab_sample_box")
    assert page.errors == []


def test_retarget_shows_progress_for_slow_methods(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "saliency_slow.ipynb", [SLOW_CELL])
    root = ".jp-OutputArea .ls-saliency"
    page.wait_for_selector(f"{root}[data-painted] .ls-panel canvas", timeout=120_000)
    # More steps for the re-target: about 3 s in the slow model, one row a chunk.
    client = lab.kernel_client()
    evaluate(client, "1", setup="view._method_kw['integrated_gradients']['n_steps'] = 100")
    page.click(f"{root} .ls-topk button[data-cls='1']")
    page.wait_for_function(
        f"""(() => {{ const p = document.querySelector('{root} progress.ls-progress');
            return !p.hidden && p.value > 0 && p.value < 1; }})()""",
        timeout=60_000,
    )
    status = page.locator(f"{root} .ls-status").inner_text()
    assert status.startswith("integrated_gradients ") and status.endswith("%"), status
    screenshot(page, "saliency_lab_progress")
    page.wait_for_function(
        f"document.querySelector('{root}').dataset.target === '1'", timeout=120_000
    )
    page.wait_for_selector(f"{root} progress.ls-progress", state="hidden", timeout=30_000)
    assert evaluate(client, "view.target") == [1]
    client.stop_channels()
    assert page.errors == []


TEXT_CELL = """import sys, torch, layerscope as ls
sys.path.insert(0, {tests!r})
from attribution_models import TinyTransformer
torch.manual_seed(0)
model = TinyTransformer(vocab=50, length={length}).eval()
ids = torch.randint(0, 50, (1, {length}))
tokens = ["<b>x</b>"] + [f"tok{{i}} " for i in range(1, {length})]
view = ls.saliency(model, ids, method=["gradient", "input_x_gradient"], tokens=tokens,
                   labels=["neg", "neu", "pos"])
view"""


def test_tokens_attention_and_long_context_in_lab(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(
        page, lab, "saliency_text.ipynb", [TEXT_CELL.format(tests=str(TESTS), length=2048)]
    )
    root = ".jp-OutputArea .ls-saliency"
    page.wait_for_selector(f"{root}[data-painted] .ls-tok", timeout=180_000)
    # Tokens are text: "<b>x</b>" shows as those characters.
    first = page.locator(f"{root} .ls-tokens[data-method='gradient'] .ls-tok").first
    assert first.inner_text() == "<b>x</b>"
    assert page.locator(f"{root} .ls-tokens b").count() == 0
    assert page.locator(f"{root} .ls-tokens[data-method='gradient'] .ls-tok").count() == 2048
    # Scroll to the end of the 2,048-token list and hover a token there: no long task.
    timing = page.evaluate(
        """async (root) => {
            const longs = [];
            const obs = new PerformanceObserver((l) => longs.push(...l.getEntries().map(e => e.duration)));
            obs.observe({entryTypes: ['longtask']});
            const box = document.querySelector(root + " .ls-tokens[data-method='gradient']");
            const frame = () => new Promise(r => requestAnimationFrame(() => r()));
            const t0 = performance.now();
            for (let k = 1; k <= 10; k++) { box.scrollTop = box.scrollHeight * k / 10; await frame(); }
            const scroll = performance.now() - t0;
            const tok = box.querySelector('.ls-tok[data-i="2040"]');
            const t1 = performance.now();
            tok.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
            await frame();
            const hover = performance.now() - t1;
            const text = document.querySelector(root + ' .ls-readout').textContent;
            await new Promise(r => setTimeout(r, 100));
            obs.disconnect();
            return {scroll, hover, text, longs};
        }""",
        root,
    )
    (TESTS / "artifacts" / "saliency_long_context.json").write_text(json.dumps(timing))
    assert "[2040]" in timing["text"] and "tok2040" in timing["text"], timing
    assert timing["hover"] < 100, timing
    assert timing["scroll"] < 1000, timing  # ten scroll steps, each painted
    assert all(d < 200 for d in timing["longs"]), timing
    # The attention grid: layers x heads thumbnails; a click opens that matrix in the heatmap.
    thumbs = page.locator(f"{root} .ls-attn canvas")
    assert thumbs.count() == 4
    screenshot(page, "saliency_lab_tokens")
    thumbs.nth(3).click()
    heat = f"{root} .ls-attn-open .ls-heatmap"
    page.wait_for_selector(f"{heat}[data-token]", timeout=60_000)
    client = lab.kernel_client()
    assert evaluate(client, "view.attention_open") == [1, 1]
    assert evaluate(client, "list(view.data.shape)") == [2048, 2048]
    assert "encoder.layers.1.self_attn head 1" in page.locator(f"{heat} .ls-title").inner_text()
    # The axes name the tokens (not 0..L-1), with the index on hover.
    tick = page.locator(f"{heat} .ls-axis-x .ls-tick").nth(1)
    index = int(tick.get_attribute("data-index"))
    assert (
        tick.inner_text() == f"tok{index}"
        and tick.get_attribute("title") == f"[{index}] tok{index}"
    )
    assert page.locator(f"{heat} .ls-axis-y .ls-tick").first.inner_text().startswith("tok")
    page.locator(f"{heat}").scroll_into_view_if_needed()
    screenshot(page, "saliency_lab_attention_open")
    client.stop_channels()
    assert page.errors == []


def test_exported_page_renders_offline(page: Any, tmp_path: pathlib.Path) -> None:
    ns: dict[str, Any] = {}
    exec(IMAGE_MODEL, ns)
    view = ls.saliency(ns["model"], ns["x"], method=["gradient", "input_x_gradient"])
    path = ls.export_html(view, tmp_path / "page.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = ".ls-saliency"
        page.wait_for_selector(f"{root}[data-painted] .ls-panel canvas", timeout=30_000)
        assert not close(pixel(page, root, "gradient", 2, 2), pixel(page, root, "input", 2, 2), 20)
        assert close(pixel(page, root, "gradient", 13, 13), pixel(page, root, "input", 13, 13))
        assert page.locator(f"{root} .ls-topk button").count() == 3
        page.wait_for_function(
            f"document.querySelector('{root} .ls-status').textContent.includes('no kernel')",
            timeout=15_000,
        )
        screenshot(page, "saliency_export_offline")
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []


def test_exported_text_view_offline(page: Any, tmp_path: pathlib.Path) -> None:
    import sys

    sys.path.insert(0, str(TESTS))
    from attribution_models import TinyTransformer

    torch.manual_seed(0)
    model = TinyTransformer(vocab=50, length=64).eval()
    ids = torch.randint(0, 50, (1, 64))
    tokens = ["<b>x</b>"] + [f"t{i}" for i in range(1, 64)]
    view = ls.saliency(model, ids, method="gradient", tokens=tokens)
    path = ls.export_html(view, tmp_path / "text.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = ".ls-saliency"
        page.wait_for_selector(f"{root}[data-painted] .ls-tok", timeout=30_000)
        assert page.locator(f"{root} .ls-tok").first.inner_text() == "<b>x</b>"
        assert page.locator(f"{root} .ls-attn canvas").count() == 4
        page.wait_for_function(
            f"document.querySelector('{root} .ls-status').textContent.includes('no kernel')",
            timeout=15_000,
        )
        # No kernel: a thumbnail click shows the saved thumbnail enlarged.
        page.locator(f"{root} .ls-attn canvas").nth(1).click()
        saved = page.locator(f"{root} canvas.ls-attn-saved")
        saved.wait_for(state="visible")
        lit = page.evaluate(
            """(root) => { const c = document.querySelector(root + ' canvas.ls-attn-saved');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""",
            root,
        )
        assert lit > 0
        screenshot(page, "saliency_export_text")
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []


def test_dark_theme_uses_lab_colours(browser: Any, tmp_path: pathlib.Path) -> None:
    lab = Lab(tmp_path, theme="JupyterLab Dark")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        open_notebook(
            page, lab, "dark.ipynb", [TEXT_CELL.format(tests=str(TESTS), length=64), IMAGE_CELL]
        )
        page.wait_for_selector(".jp-OutputArea .ls-saliency[data-painted] .ls-tok", timeout=120_000)
        page.wait_for_selector(
            ".jp-OutputArea .ls-saliency[data-painted] .ls-panel canvas", timeout=120_000
        )
        root = ".jp-OutputArea .ls-saliency"
        bg = page.eval_on_selector(root, "e => getComputedStyle(e).backgroundColor")
        fg = page.eval_on_selector(root, "e => getComputedStyle(e).color")

        def lum(css: str) -> float:
            return sum(int(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]) / 3

        assert lum(bg) < 80 < lum(fg), (bg, fg)
        screenshot(page, "saliency_lab_dark")
        page.close()
    finally:
        lab.shutdown_kernels()
        lab.close()
