"""Make the README's pictures: each view exported offline, opened in headless Chromium, and
photographed. ``.venv/bin/python docs/screenshots.py`` (needs Debian's chromium)."""

from __future__ import annotations

import pathlib
import sys
import tempfile

import torch
from torch import nn

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
        "explore": ls.explore(
            nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)),
            torch.randn(2, 1, 8, 8),
        ),
    }


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
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
