"""Benchmark (issue 6): scrubbing the timeline in real JupyterLab + Chromium.

A run of ``--epochs`` epochs of a 1024 x 1024 linear layer (weights perturbed each epoch, so every
frame differs) is shown with ``ls.timeline``; then, in the page:

- repaint: the scrubber's own ``performance.now()`` around one epoch's repaint (weight heatmap,
  activation, markers, label), over a scrub of every epoch forth and back, one step per animation
  frame (keyboard events dispatched in the page), median and p95;
- frame interval: time between animation frames during that scrub (what a user sees; 16.7 ms is
  one frame at 60 Hz), median and p95;
- the same scrub while the kernel is busy (``time.sleep`` in a cell): the repaint needs no kernel;
- frames payload: bytes sent to the browser for the layer (one message), and the time from
  ``view.layer = ...`` in the kernel to the new layer's frames painted.

    .venv/bin/python bench/timeline.py            # 50 epochs
    .venv/bin/python bench/timeline.py --epochs 20
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from browser import CHROMIUM, CHROMIUM_ARGS, Lab, evaluate, open_notebook

ROOT = ".jp-OutputArea .ls-timeline-scrub"

SETUP = """import time, torch, layerscope as ls
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024))
rec = ls.Recorder(model, probe=torch.randn(64, 1024), budget="2GB")
for e in range({epochs}):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    rec.epoch(val_acc=e / {epochs})
view = ls.timeline(rec, layer="0")
view"""

SCRUB = """async ([root, steps]) => {
  const e = document.querySelector(root);
  e.scrollIntoView({block: 'center'});
  e.focus();
  const before = e.lsFrameTimes.length;
  const intervals = [];
  let last = await new Promise(requestAnimationFrame);
  for (let k = 0; k < steps; k++) {
    const key = k < steps / 2 ? 'ArrowRight' : 'ArrowLeft';
    e.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true, cancelable: true}));
    const now = await new Promise(requestAnimationFrame);
    intervals.push(now - last);
    last = now;
  }
  return {repaint: Array.from(e.lsFrameTimes).slice(before), intervals};
}"""


def q(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p95": q(values, 0.95),
        "max": max(values),
        "over_17ms": sum(v > 17 for v in values),
        "n": len(values),
    }


def scrub(page: Any, steps: int) -> dict[str, Any]:
    page.eval_on_selector(
        ROOT, "e => e.dispatchEvent(new KeyboardEvent('keydown', {key: 'Home', bubbles: true}))"
    )
    page.wait_for_timeout(400)  # the markers' move after Home is done before the scrub starts
    out = page.evaluate(SCRUB, [ROOT, steps])
    return {"repaint_ms": summary(out["repaint"]), "frame_interval_ms": summary(out["intervals"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=50)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {"epochs": args.epochs, "machine": platform.platform()}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        lab = Lab(pathlib.Path(tmp))
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            open_notebook(page, lab, "bench.ipynb", [SETUP.format(epochs=args.epochs)])
            page.wait_for_selector(f"{ROOT}[data-epoch='{args.epochs - 1}']", timeout=300_000)
            client = lab.kernel_client()
            shape = evaluate(client, "list(view.scrubber.frames['param']['codes'].shape)")
            nbytes = evaluate(
                client,
                "int(sum(view.scrubber.frames[k]['codes'].nbytes for k in ('param', 'act') if view.scrubber.frames[k]))",
            )
            results["frames"] = {"param_codes_shape": shape, "bytes": nbytes}
            steps = 2 * args.epochs
            scrub(page, 10)  # warm up
            results["idle_kernel"] = scrub(page, steps)
            busy = client.execute("import time; time.sleep(30)")
            time.sleep(2)
            results["busy_kernel"] = scrub(page, steps)
            done = any(m["parent_header"].get("msg_id") == busy for m in _drain(client))
            results["busy_kernel"]["cell_still_running"] = not done
            deadline = time.time() + 60
            while not done and time.time() < deadline:
                done = any(m["parent_header"].get("msg_id") == busy for m in _drain(client))
                time.sleep(0.5)
            # Layer switch: kernel sets the layer -> every epoch's frames of it painted.
            t0 = time.time()
            evaluate(client, "1", setup="view.layer = '2'")
            page.wait_for_selector(f"{ROOT}[data-layer='2']", timeout=120_000)
            results["layer_switch_s"] = time.time() - t0
            client.stop_channels()
        finally:
            browser.close()
            lab.shutdown_kernels()
            lab.close()
    print(json.dumps(results, indent=2))
    out = pathlib.Path(__file__).resolve().parent / "results" / "timeline.json"
    out.write_text(json.dumps(results, indent=2))


def _drain(client: Any) -> list[dict[str, Any]]:
    import queue

    msgs = []
    while True:
        try:
            msgs.append(client.get_shell_msg(timeout=0.05))
        except queue.Empty:
            return msgs


if __name__ == "__main__":
    main()
