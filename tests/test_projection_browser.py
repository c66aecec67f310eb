"""ls.projection in real JupyterLab and in an exported page, in headless Chromium: points are
painted in their class colours, the legend hides classes, hovering shows that sample's input and
label, a click and a lasso set ``selected`` in Python, Python's ``selected`` is highlighted, and
the exported page draws and hovers with every non-file request failing."""

from __future__ import annotations

import io
import pathlib
import time
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import digits
import layerscope as ls
from browser import Lab, evaluate, offline_guard, open_notebook, screenshot
from dataset_models import trained_digits
from layerscope.wire.codec import decode_array

pytestmark = pytest.mark.browser

TESTS = pathlib.Path(__file__).resolve().parent
SETUP = f"""import sys
sys.path.insert(0, {str(TESTS)!r})
import layerscope as ls
from dataset_models import trained_digits
model, (x, y, _, _) = trained_digits()
view = ls.projection(model, (x[:300], y[:300]), layer="classifier.2",
                     class_names=[f"digit {{i}}" for i in range(10)], progress=False)
view"""
PLOT = ".ls-proj-plot"
PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
]


def rgb(hexcode: str) -> tuple[int, int, int]:
    return tuple(int(hexcode[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def plot_image(page: Any) -> Image.Image:
    return Image.open(io.BytesIO(page.locator(PLOT).screenshot())).convert("RGB")


def screen_of(page: Any, sample: int) -> tuple[float, float]:
    return tuple(
        page.evaluate(  # type: ignore[return-value]
            "([s]) => document.querySelector('.ls-proj').parentElement.__lsProjection.screenOf(s)",
            [sample],
        )
    )


def isolated_samples(page: Any, k: int) -> list[int]:
    """Samples whose point is the one picked at its own position (no other point on top)."""
    return page.evaluate(
        """([k]) => {
          const p = document.querySelector('.ls-proj').parentElement.__lsProjection;
          const out = [];
          for (let s = 0; s < 300 && out.length < k; s++) {
            const xy = p.screenOf(s);
            if (!xy || xy[0] < 20 || xy[1] < 20 || xy[0] > p.renderer.canvas.clientWidth - 20) continue;
            let alone = true;
            for (let o = 0; o < 300 && alone; o++) {
              const q = p.screenOf(o);
              if (o !== s && q && Math.hypot(q[0] - xy[0], q[1] - xy[1]) < 16) alone = false;
            }
            if (alone && p.pick(xy[0], xy[1]) === p.slotOfSample(s)) out.push(s);
          }
          return out;
        }""",
        [k],
    )


def near(a: tuple[int, ...], b: tuple[int, ...], tol: int) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def check_colours(page: Any, labels: list[int], samples: list[int]) -> None:
    img = plot_image(page)
    for s in samples:
        x, y = screen_of(page, s)
        got = img.getpixel((round(x), round(y)))
        want = rgb(PALETTE[labels[s]])
        # alpha 0.9 over white, or denser where points overlap
        blended = tuple(round(0.9 * c + 0.1 * 255) for c in want)
        assert near(got, want, 30) or near(got, blended, 30), (s, labels[s], got, want)


def hover_card(page: Any, sample: int) -> str:
    box = page.locator(PLOT).bounding_box()
    x, y = screen_of(page, sample)
    page.mouse.move(box["x"] + x, box["y"] + y)
    card = page.locator(f".ls-proj-card[data-sample='{sample}']")
    card.wait_for(state="visible", timeout=10_000)
    page.wait_for_function(
        f"() => document.querySelector(\".ls-proj-card[data-sample='{sample}']\").textContent.includes('label')",
        timeout=10_000,
    )
    return card.inner_text()


def test_projection_in_lab(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "projection.ipynb", [SETUP])
    try:
        page.wait_for_selector(".jp-OutputArea .ls-proj-canvas", timeout=120_000)
    except Exception:
        screenshot(page, "projection_lab_failed")
        raise
    page.wait_for_timeout(500)
    client = lab.kernel_client()
    labels = evaluate(client, "y[:300].tolist()")
    preds = evaluate(client, "view.collected().predictions.tolist()")
    samples = isolated_samples(page, 12)
    assert len(samples) >= 6
    check_colours(page, labels, samples)
    screenshot(page, "projection_lab")

    # Hover: the card shows that sample's label, prediction and its 8x8 image from the kernel.
    s = samples[0]
    text = hover_card(page, s)
    assert f"sample {s}" in text and f"label: digit {labels[s]}" in text, text
    assert f"prediction: digit {preds[s]}" in text
    assert page.locator(f".ls-proj-card[data-sample='{s}'] canvas").count() == 1
    screenshot(page, "projection_hover")

    # Click selects that one sample, in Python.
    box = page.locator(PLOT).bounding_box()
    x, y = screen_of(page, samples[1])
    page.mouse.click(box["x"] + x, box["y"] + y)
    deadline = time.time() + 10
    while evaluate(client, "view.selected") != [samples[1]] and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "view.selected") == [samples[1]]

    # Lasso: a rectangle around the left third of the plot selects exactly the points inside.
    page.click(".ls-proj-lasso")
    w, h = box["width"], box["height"]
    corners = [(0.05, 0.05), (0.4, 0.05), (0.4, 0.95), (0.05, 0.95)]
    page.mouse.move(box["x"] + corners[0][0] * w, box["y"] + corners[0][1] * h)
    page.mouse.down()
    for cx, cy in [*corners[1:], corners[0]]:
        page.mouse.move(box["x"] + cx * w, box["y"] + cy * h, steps=8)
    page.mouse.up()
    want = sorted(
        s
        for s in range(300)
        if (p := screen_of(page, s)) and 0.05 * w < p[0] < 0.4 * w and 0.05 * h < p[1] < 0.95 * h
    )
    assert len(want) > 5
    deadline = time.time() + 10
    while sorted(evaluate(client, "view.selected")) != want and time.time() < deadline:
        time.sleep(0.2)
    assert sorted(evaluate(client, "view.selected")) == want
    screenshot(page, "projection_lasso")

    # Python sets the selection: the page highlights it.
    evaluate(client, "0", setup="view.selected = [1, 2, 3]")
    page.wait_for_selector(".ls-proj-selinfo:text('3 selected')", timeout=10_000)

    # The legend hides a class: its points are not drawn, Python hears it.
    page.click(".ls-proj-clear")
    page.click(".ls-proj-legend .ls-item[data-cls='digit 0']")
    deadline = time.time() + 10
    while evaluate(client, "view.hidden") != ["digit 0"] and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "view.hidden") == ["digit 0"]
    page.wait_for_timeout(300)
    img = plot_image(page)
    zero = [s for s in samples if labels[s] == 0]
    for s in zero:
        x, y = screen_of(page, s)
        assert not near(img.getpixel((round(x), round(y))), rgb(PALETTE[0]), 30)
    screenshot(page, "projection_legend_hidden")
    assert page.errors == []


@pytest.mark.parametrize("renderer", ["auto", "webgl"])
def test_exported_projection_works_offline(
    page: Any, tmp_path: pathlib.Path, renderer: str
) -> None:
    """The exported page offline; "auto" here (software WebGL) draws the points on the CPU,
    "webgl" forces the WebGL path that hardware GPUs take, so both are checked for colours."""
    model, (x, y, _, _) = trained_digits()
    view = ls.projection(model, (x[:300], y[:300]), layer="classifier.2", progress=False)
    path = ls.export_html(view, tmp_path / "projection.html")
    labels = y[:300].tolist()
    if renderer == "webgl":
        page.add_init_script("globalThis.__lsPoints = 'webgl'")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(".ls-proj-canvas", timeout=30_000)
        page.wait_for_timeout(800)
        uses_gl = page.evaluate(
            "document.querySelector('.ls-proj').parentElement.__lsProjection.renderer.webgl"
        )
        assert uses_gl == (renderer == "webgl")
        samples = isolated_samples(page, 8)
        assert len(samples) >= 4
        check_colours(page, labels, samples)
        text = hover_card(page, samples[0])
        assert f"label: {labels[samples[0]]}" in text, text
        assert page.locator(f".ls-proj-card[data-sample='{samples[0]}'] canvas").count() == 1
        screenshot(page, f"projection_export_offline_{renderer}")
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []


def test_exported_page_scrubs_aligned_tsne_epochs_without_a_kernel(
    page: Any, tmp_path: pathlib.Path
) -> None:
    """Over training with method="tsne": the aligned frames of every epoch are in the page, so
    the epoch slider moves the points to that epoch's positions with no kernel at all."""
    torch.manual_seed(0)
    x_tr, y_tr, x_te, y_te = digits.load()
    model = digits.DigitsCNN(width=4)
    rec = ls.Recorder(model, probe=x_te[:120], layers=["classifier.2"])
    run = digits.Training(model, (x_tr[:400], y_tr[:400], x_te[:64], y_te[:64]))
    for _ in range(3):
        run.epoch(rec)
    view = ls.projection(
        model,
        recorder=rec,
        layer="classifier.2",
        labels=y_te[:120],
        method="tsne",
        wait=True,
        progress=False,
    )
    assert view._frames["method"].startswith("tsne") and view._frames["epochs"] == [0, 1, 2]
    frames = decode_array(view._frames["xy"])
    path = ls.export_html(view, tmp_path / "projection_epochs.html")
    shown = "Array.from(document.querySelector('.ls-proj').parentElement.__lsProjection.shown)"
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(".ls-proj-canvas", timeout=30_000)
        page.wait_for_timeout(500)
        np.testing.assert_allclose(page.evaluate(shown), frames[2].ravel(), rtol=1e-6)
        page.evaluate(
            """() => { const s = document.querySelector('.ls-proj-epoch');
                       s.value = '0'; s.dispatchEvent(new Event('input')); }"""
        )
        page.wait_for_timeout(600)  # the points glide for 180 ms
        np.testing.assert_allclose(page.evaluate(shown), frames[0].ravel(), rtol=1e-6)
        assert "0 (1 of 3)" in page.locator(".ls-proj-scrub").inner_text()
        screenshot(page, "projection_offline_tsne_epoch0")
    assert attempted == []
    assert page.errors == []
