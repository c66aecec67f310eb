"""Benchmark (issue 2): kernel-set to painted, ls.heatmap vs bqplot HeatMap, in real JupyterLab.

For each size, new data every run (traitlets does not re-send an equal value): the kernel assigns
a new float32 matrix and the time until the view has painted it is measured on this machine's
one clock (the kernel stamps the assignment; the page stamps the paint). ls.heatmap reports its
own paint (``_meta.t_sent`` -> ``dataset.paintMs``); bqplot's HeatMap is timed from the
assignment to its canvas image being replaced (a MutationObserver on the image's href).

    .venv/bin/python bench/wire.py            # 256, 1024, 4096; 7 runs each
    .venv/bin/python bench/wire.py --quick    # fewer runs
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import tempfile
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from browser import CHROMIUM, CHROMIUM_ARGS, OBSERVE_BQPLOT_PAINTS, Lab, evaluate, open_notebook

SETUP = """import time, numpy as np, torch, layerscope as ls
import bqplot as bq
view = ls.heatmap(torch.zeros(2, 2), title='layerscope')
view"""
BQ_SETUP = """x_sc, y_sc, c_sc = bq.LinearScale(), bq.LinearScale(), bq.ColorScale(scheme='RdBu')
heat = bq.HeatMap(x=np.arange(2), y=np.arange(2), color=np.zeros((2, 2)), scales={'x': x_sc, 'y': y_sc, 'color': c_sc})
fig = bq.Figure(marks=[heat], layout={'height': '400px'}, title='bqplot HeatMap')
fig"""


def time_layerscope(page: Any, client: Any, n: int, run: int) -> float:
    root = ".jp-OutputArea .ls-heatmap"
    before = page.eval_on_selector(root, "e => e.dataset.token")
    evaluate(
        client,
        "0",
        setup=f"_x = torch.randn({n}, {n}, generator=torch.Generator().manual_seed({run}))\nview.data = _x",
    )
    page.wait_for_function(
        f"document.querySelector('{root}').dataset.token !== '{before}'", timeout=120_000
    )
    return float(page.eval_on_selector(root, "e => e.dataset.paintMs"))


def time_bqplot(page: Any, client: Any, n: int, run: int, timeout_s: float) -> float | None:
    count = page.evaluate("() => window.__bqPaints.length")
    evaluate(
        client,
        "0",
        setup=(
            f"_x = np.random.default_rng({run}).standard_normal(({n}, {n})).astype(np.float32)\n"
            "_t0 = time.time() * 1000\n"
            f"with heat.hold_sync():\n    heat.x = np.arange({n}); heat.y = np.arange({n}); heat.color = _x"
        ),
    )
    t0 = evaluate(client, "_t0")
    try:
        page.wait_for_function(f"window.__bqPaints.length > {count}", timeout=timeout_s * 1000)
    except Exception:
        return None
    page.wait_for_timeout(50)  # a second href change in the same update belongs to it
    return float(page.evaluate("() => window.__bqPaints[window.__bqPaints.length - 1]")) - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="256,1024,4096")
    parser.add_argument("--bq-timeout", type=float, default=60.0)
    args = parser.parse_args()
    runs = 3 if args.quick else 7
    sizes = [int(s) for s in args.sizes.split(",")]
    from playwright.sync_api import sync_playwright

    root = pathlib.Path(tempfile.mkdtemp())
    lab = Lab(root)
    rows = []
    try:
        lab.write_notebook("bench_wire.ipynb", [SETUP, BQ_SETUP])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            open_notebook(page, lab, "bench_wire.ipynb")
            page.wait_for_selector(".jp-OutputArea .ls-heatmap[data-token]", timeout=120_000)
            page.wait_for_selector(".bqplot", timeout=120_000)
            page.wait_for_timeout(1000)
            page.evaluate(OBSERVE_BQPLOT_PAINTS)
            client = lab.kernel_client()
            for n in sizes:
                ours = [time_layerscope(page, client, n, r) for r in range(runs)]
                theirs: list[float | None] = []
                for r in range(runs):
                    t = time_bqplot(page, client, n, r, args.bq_timeout)
                    theirs.append(t)
                    if t is None:
                        break  # it did not paint in time: more runs only repeat that
                rows.append((n, ours, theirs))
                print(f"{n}x{n}: layerscope {fmt(ours)} | bqplot {fmt(theirs)}", flush=True)
            client.stop_channels()
            browser.close()
    finally:
        lab.shutdown_kernels()
        lab.close()
    print()
    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}; {sys.version.split()[0]}; runs per size: {runs}"
    )
    print(
        "| size | layerscope min / median (ms) | bqplot HeatMap min / median (ms) | speed-up (median) |"
    )
    print("|---|---|---|---|")
    for n, ours, theirs in rows:
        ok = [t for t in theirs if t is not None]
        bq = (
            f"{min(ok):.0f} / {statistics.median(ok):.0f}"
            if ok and len(ok) == len(theirs)
            else f"did not paint within {args.bq_timeout:.0f} s"
        )
        speed = (
            f"{statistics.median(ok) / statistics.median(ours):.1f}x"
            if ok and len(ok) == len(theirs)
            else "—"
        )
        print(
            f"| {n}x{n} float32 | {min(ours):.0f} / {statistics.median(ours):.0f} | {bq} | {speed} |"
        )
    out = pathlib.Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "wire.json").write_text(json.dumps({"runs": runs, "rows": rows}, indent=1))


def fmt(values: list[Any]) -> str:
    ok = [v for v in values if v is not None]
    if not ok:
        return "no paint"
    return f"min {min(ok):.0f} ms, median {statistics.median(ok):.0f} ms" + (
        "" if len(ok) == len(values) else " (then timed out)"
    )


if __name__ == "__main__":
    main()
