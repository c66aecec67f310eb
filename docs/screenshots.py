"""Make the README's pictures, photographed in headless Chromium from offline pages: the workspace
and the dataset, saliency and big-tensor views from ``demo.html`` (what ``make demo`` writes from
``notebooks/quickstart.ipynb``; executed here when it is missing or older than the notebook), the
rest from single views exported here. ``.venv/bin/python docs/screenshots.py`` (needs Debian's
chromium)."""

from __future__ import annotations

import pathlib
import sys
import tempfile

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

import digits  # noqa: E402
import layerscope as ls  # noqa: E402
import zoo  # noqa: E402
from browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

OUT = ROOT / "docs" / "img"


def views() -> dict[str, object]:
    torch.manual_seed(0)
    resnet, (x,) = zoo.make_resnet()
    x_tr, y_tr, x_te, y_te = digits.load()
    model = digits.DigitsCNN(width=8)
    rec = ls.Recorder(model, probe=x_te[:16])
    run = digits.Training(model, (x_tr[:600], y_tr[:600], x_te[:200], y_te[:200]))
    for _ in range(6):
        run.epoch(rec)
    w = torch.randn(256, 512) * torch.linspace(0.1, 2, 512)
    w[10:14, 100:140] = float("nan")
    return {
        "graph": ls.graph(resnet, x, overlay="params"),
        "tensor": ls.heatmap(w, title="a 256 x 512 weight with NaNs"),
        "weights": ls.weights(resnet),
        "activations": ls.activations(resnet, x),
        "timeline": ls.timeline(rec),
    }


# The demo page's widget outputs in notebook order, and the picture each one makes.
DEMO_SHOTS = ["workspace", "saliency", None, "projection", "units", "tensor_big", "saliency_tokens"]


def demo_page(tmp: pathlib.Path) -> pathlib.Path:
    """``demo.html``, made from the quickstart notebook if it is missing or stale."""
    from layerscope.export import export_notebook

    demo, notebook = ROOT / "demo.html", ROOT / "notebooks" / "quickstart.ipynb"
    if demo.exists() and demo.stat().st_mtime >= notebook.stat().st_mtime:
        return demo
    return export_notebook(notebook, tmp / "demo.html", execute=True)


def demo_shots(page: object, demo: pathlib.Path) -> None:
    """Photograph each widget output of the demo page (scrolled into view and painted)."""
    page.goto(demo.as_uri())  # type: ignore[attr-defined]
    page.wait_for_selector(".ls-explore", timeout=60_000)  # type: ignore[attr-defined]
    outputs = page.locator(".jupyter-widgets.jp-OutputArea-output")  # type: ignore[attr-defined]
    assert outputs.count() == len(DEMO_SHOTS), f"{outputs.count()} widget outputs in {demo}"
    for i, name in enumerate(DEMO_SHOTS):
        if name is None:
            continue
        out = outputs.nth(i)
        out.scroll_into_view_if_needed()
        page.wait_for_timeout(1500)  # type: ignore[attr-defined]
        out.screenshot(path=str(OUT / f"{name}.png"))
        print("wrote", OUT / f"{name}.png")


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        demo_shots(page, demo_page(pathlib.Path(tmp)))
        for name, view in views().items():
            path = ls.export_html(view, pathlib.Path(tmp) / f"{name}.html", title=name)
            page.goto(path.as_uri())
            page.wait_for_selector("canvas", timeout=30_000)
            page.wait_for_timeout(1500)
            page.locator(".widget-subarea").first.screenshot(path=str(OUT / f"{name}.png"))
            print("wrote", OUT / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
