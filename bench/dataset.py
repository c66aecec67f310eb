"""Dataset-level views benchmark (issue 13), side by side in one run:

- ``collect``: ``ls.inspect.collect`` over 50,000 samples (two layers, top-k, histograms,
  representations) vs a plain ``torch.no_grad()`` inference loop at the same batch size; the two
  alternate run by run (the machine is shared) and the table shows medians. Target: <= 20 %.
- ``pca``: our PCA (``inspect.project.fit``) of 100,000 x 512 float32. Target: < 1 s.
- ``umap`` / ``tsne``: 10,000 x 64 through our path (``inspect.project.fit``, the function
  ``ProjectionView``'s background thread runs) vs umap-learn / openTSNE called directly with the
  same settings, alternating. Target: overhead <= 10 %.
- ``browser``: ``ProjectionView`` vs ``jupyter-scatter`` with 100k and 1M points in real
  JupyterLab and headless Chromium (software WebGL, SwiftShader: no GPU here). The data (x, y,
  label) is made in one cell; the timed cell builds and displays the view. *first paint*: from
  Shift+Enter on that cell to the first animation frame whose WebGL canvas holds drawn pixels
  (copied each frame with ``drawImage`` and read back, on the page clock; jupyter-scatter's
  regl-scatterplot draws in a shared WebGL context and copies to a 2-D canvas); *frame*: the median interval between
  animation frames while the mouse wheel zooms in and out over the plot (40 wheel events);
  *bytes/point*: binary buffers in the widget's synced state divided by the points; *draw*
  (ours only): the median of 8 synchronous redraws of the view (``drawNow``, then a one-pixel
  read back so the GPU work is counted), the cost of one pan/zoom frame. ``ours-webgl`` is our
  view forced onto its WebGL path (``globalThis.__lsPoints = "webgl"``), which a hardware GPU
  takes; with software WebGL the view draws on the CPU (``js/projection/raster.ts``).

    PYTHONPATH=$PWD/python .venv/bin/python bench/dataset.py            # ~10 minutes
    PYTHONPATH=$PWD/python .venv/bin/python bench/dataset.py --quick    # smaller sizes
    PYTHONPATH=$PWD/python .venv/bin/python bench/dataset.py --only-collect --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


def med(xs: list[float]) -> float:
    return float(statistics.median(xs))


def bench_collect(n: int, batch: int, repeat: int, width: int = 32) -> dict[str, Any]:
    import digits
    from layerscope.inspect import collect

    torch.manual_seed(0)
    model = digits.DigitsCNN(width=width).eval()
    x = torch.rand(n, 1, 8, 8)
    y = torch.randint(0, 10, (n,))
    layers = ["features.4", "classifier.2"]

    def plain() -> None:
        with torch.no_grad():
            for s in range(0, n, batch):
                model(x[s : s + batch])

    def ours() -> None:
        collect(model, (x, y), layers=layers, batch_size=batch, progress=False)

    plain()  # warm up
    ours()
    load_before = os.getloadavg()[0]
    wall: dict[str, list[float]] = {"plain": [], "ours": []}
    cpu: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(repeat):
        for name, fn in (("plain", plain), ("ours", ours)):
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return {
        "n": n,
        "width": width,
        "batch": batch,
        "plain_s": med(wall["plain"]),
        "collect_s": med(wall["ours"]),
        "overhead_wall": med([o / p for o, p in zip(wall["ours"], wall["plain"], strict=True)]) - 1,
        "plain_cpu_s": med(cpu["plain"]),
        "collect_cpu_s": med(cpu["ours"]),
        "overhead_cpu": med([o / p for o, p in zip(cpu["ours"], cpu["plain"], strict=True)]) - 1,
        "threads": torch.get_num_threads(),
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def bench_pca(n: int, d: int, repeat: int) -> dict[str, Any]:
    from layerscope.inspect.project import fit

    x = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fit(x, "pca")
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"n": n, "d": d, "pca_s": med(wall), "pca_cpu_s": med(cpu)}


def bench_nonlinear(n: int, d: int, repeat: int) -> dict[str, Any]:
    import openTSNE
    import umap

    from layerscope.inspect.project import fit

    g = np.random.default_rng(0)
    centres = g.standard_normal((10, d)) * 4
    x = (centres[g.integers(0, 10, n)] + g.standard_normal((n, d))).astype(np.float32)
    out: dict[str, Any] = {"n": n, "d": d}
    # numba (umap-learn, pynndescent) and openTSNE compile on first use: warm both paths up,
    # untimed, above 4,096 points (below that umap-learn takes exact neighbours and compiles
    # nothing of the approximate search it uses at 10,000).
    fit(x[:5000], "umap", lambda f, w: None)
    fit(x[:5000], "tsne", lambda f, w: None)
    for method in ("umap", "tsne"):
        ours, direct = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            fit(x, method, lambda f, w: None)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            if method == "umap":
                umap.UMAP(n_components=2, random_state=0).fit_transform(x)
            else:
                openTSNE.TSNE(n_components=2, random_state=0).fit(x.astype(np.float64))
            direct.append(time.perf_counter() - t)
        out[method] = {
            "ours_s": med(ours),
            "direct_s": med(direct),
            "overhead": med(ours) / med(direct) - 1,
        }
    return out


# -- browser -----------------------------------------------------------------------------------

DATA_CELL = """import sys, time, numpy as np, torch
sys.path.insert(0, {tests!r})
import layerscope as ls, jscatter, pandas as pd
from torch import nn
g = np.random.default_rng({seed})
N = {n}
lab = g.integers(0, 10, N)
ang = lab * 2 * np.pi / 10
xy = np.stack([np.cos(ang) * 6, np.sin(ang) * 6], 1) + g.standard_normal((N, 2))
xy = xy.astype(np.float32)
col = ls.inspect.collect(nn.Sequential(nn.Identity()), (torch.from_numpy(xy), torch.from_numpy(lab)),
                         layers=["0"], batch_size=65536, progress=False, predict=False)
df = pd.DataFrame({{"x": xy[:, 0], "y": xy[:, 1], "label": pd.Categorical(lab.astype(str))}})
print("ready")"""
OURS_CELL = "view = ls.projection(None, col, layer='0', height=500)\nview"
JSCATTER_CELL = (
    "sc = jscatter.Scatter(data=df, x='x', y='y', color_by='label', height=500)\nsc.show()"
)
BYTES_OURS = "sum(memoryview(b).nbytes for b in __import__('ipywidgets').widgets.widget._remove_buffers(view.get_state())[2]) / N"
BYTES_JSCATTER = "sum(memoryview(b).nbytes for b in __import__('ipywidgets').widgets.widget._remove_buffers(sc.widget.get_state())[2]) / N"

# Poll every animation frame for the first canvas in the output with drawn (coloured) pixels:
# drawImage reads WebGL and 2-D canvases alike without touching their contexts.
WATCH = """() => {
  window.__lsPaint = null;
  const probe = document.createElement('canvas');
  probe.width = 240; probe.height = 120;
  const pc = probe.getContext('2d', { willReadFrequently: true });
  const tick = () => {
    for (const c of document.querySelectorAll('.jp-OutputArea-output canvas')) {
      if (c.width < 100 || c.height < 100) continue;
      pc.clearRect(0, 0, 240, 120);
      pc.drawImage(c, 0, 0, 240, 120);
      const px = pc.getImageData(0, 0, 240, 120).data;
      let drawn = 0;
      for (let i = 0; i < px.length; i += 4) {
        const white = px[i] > 235 && px[i + 1] > 235 && px[i + 2] > 235;
        if (px[i + 3] > 0 && !white && ++drawn > 20) break;
      }
      if (drawn > 20) { window.__lsPaint = performance.now(); return; }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""

# Keep WebGL drawing buffers after compositing (for both libraries alike), so the watcher above
# can read the last drawn frame at any time.
PRESERVE = """(() => { const get = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, attrs) {
    if (type === 'webgl' || type === 'webgl2') attrs = { ...(attrs || {}), preserveDrawingBuffer: true };
    return get.call(this, type, attrs);
  }; })();"""

# Eight synchronous redraws of our view; a one-pixel read back waits for the GPU's work.
DRAW = """() => {
  const el = [...document.querySelectorAll('.jp-OutputArea-output *')].find((e) => e.__lsProjection);
  const p = el.__lsProjection;
  const gl = p.renderer.gl;
  const out = [];
  for (let i = 0; i < 8; i++) {
    const t = performance.now();
    p.drawNow();
    if (gl) gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
    else p.renderer.canvas.getContext('2d').getImageData(0, 0, 1, 1);
    out.push(performance.now() - t);
  }
  return out;
}"""

FRAMES = """() => { window.__lsFrames = []; window.__lsRec = true;
  const t = (ts) => { window.__lsFrames.push(ts); if (window.__lsRec) requestAnimationFrame(t); };
  requestAnimationFrame(t); }"""


def measure_view(page: Any, lab: Any, lib: str, n: int, seed: int) -> dict[str, Any]:
    from browser import evaluate, open_notebook
    from graph_browser import run_cell

    name = f"bench_{lib}_{n}_{seed}.ipynb"
    cells = [
        DATA_CELL.format(tests=str(ROOT / "tests"), n=n, seed=seed),
        JSCATTER_CELL if lib == "jscatter" else OURS_CELL,
    ]
    lab.write_notebook(name, cells)
    open_notebook(page, lab, name, run_all=False)
    if lib == "ours-webgl":
        page.evaluate("() => { globalThis.__lsPoints = 'webgl'; }")
    run_cell(page, 0)
    page.wait_for_selector(".jp-OutputArea-output:has-text('ready')", timeout=600_000)
    lab.wait_kernel_idle(300)
    page.wait_for_timeout(300)
    page.evaluate(WATCH)
    t0 = run_cell(page, 1)
    page.wait_for_function("() => window.__lsPaint !== null", timeout=300_000, polling=100)
    first = page.evaluate("() => window.__lsPaint") - t0
    lab.wait_kernel_idle(300)
    page.wait_for_timeout(500)
    draw = float("nan")
    if lib != "jscatter":
        draw = med(page.evaluate(DRAW))
    canvas = page.locator(".jp-OutputArea-output canvas").first
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.evaluate(FRAMES)
    for k in range(40):
        page.mouse.wheel(0, -120 if (k // 10) % 2 == 0 else 120)
        page.wait_for_timeout(16)
    page.wait_for_timeout(300)
    frames = page.evaluate("() => { window.__lsRec = false; return window.__lsFrames; }")
    intervals = [b - a for a, b in itertools.pairwise(frames)]
    client = lab.kernel_client()
    nbytes = evaluate(client, BYTES_JSCATTER if lib == "jscatter" else BYTES_OURS)
    client.stop_channels()
    lab.shutdown_kernels()
    return {
        "lib": lib,
        "n": n,
        "first_paint_ms": first,
        "frame_median_ms": med(intervals) if intervals else float("nan"),
        "frame_p90_ms": float(np.percentile(intervals, 90)) if intervals else float("nan"),
        "bytes_per_point": nbytes,
        "draw_ms": draw,
    }


def bench_browser(sizes: list[int]) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    from browser import CHROMIUM, CHROMIUM_ARGS, Lab

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp))
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = b.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(PRESERVE)
                page = context.new_page()
                for n in sizes:
                    for seed, lib in enumerate(("ours", "jscatter", "ours-webgl")):
                        r = measure_view(page, lab, lib, n, seed)
                        page.evaluate("() => { delete globalThis.__lsPoints; }")
                        print(json.dumps(r), flush=True)
                        out.append(r)
                b.close()
        finally:
            lab.shutdown_kernels()
            lab.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--only-browser", action="store_true")
    ap.add_argument("--skip-nonlinear", action="store_true")
    ap.add_argument("--only-nonlinear", action="store_true")
    ap.add_argument("--only-collect", action="store_true", help="the collect table only")
    ap.add_argument("--repeat", type=int, default=3, help="alternating collect/plain pairs")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    if args.only_nonlinear:
        results["nonlinear"] = bench_nonlinear(10_000, 64, 1)
        print(json.dumps(results["nonlinear"], indent=1))
        return
    if not args.only_browser:
        for width in (32, 128):
            results[f"collect_w{width}"] = bench_collect(
                10_000 if args.quick else 50_000, 256, args.repeat, width
            )
            print(json.dumps(results[f"collect_w{width}"]), flush=True)
        if args.only_collect:
            return
        results["pca"] = bench_pca(100_000, 512, 3)
        print(json.dumps(results["pca"]), flush=True)
        if not args.skip_nonlinear:
            results["nonlinear"] = bench_nonlinear(2_000 if args.quick else 10_000, 64, 1)
            print(json.dumps(results["nonlinear"]), flush=True)
    if not args.skip_browser:
        results["browser"] = bench_browser([10_000] if args.quick else [100_000, 1_000_000])
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
