"""Benchmark (issue 15): first display of NEW ``ls.heatmap`` views, and exported page weight.

In one run, real JupyterLab + Chromium, for 1024^2, 4096^2 and 16384^2 float32, side by side:
the synchronous path (``LAYERSCOPE_SYNC_PASSES=1``: every pass before the constructor returns, as
before issue 15) measured first, then the default (deferred passes for 2**22 elements or more):

- Shift+Enter to first paint and to the full overview painted (the view's final token), on the
  page's clock; the tensor is made in an earlier cell, so the cell holds only ``ls.heatmap(x)``;
- kernel time blocked in the constructor (``time.perf_counter`` around it, in the cell);
- ``view.data = x`` re-assignment of a view already on screen: kernel-set to first paint and to
  full overview (the view's own paint report, on one clock);
- the statistics + histogram passes alone in the kernel (``inspect.histogram.summarize``);
- exported page sizes (one 64x512 heatmap; a page with an ipywidgets widget too, which packs the
  full widget stack) and their load-to-painted time offline (every non-local request fails).

    .venv/bin/python bench/first_display.py            # all three sizes
    .venv/bin/python bench/first_display.py --quick    # no 16384^2
    .venv/bin/python bench/first_display.py --passes   # passes alone: one thread vs split
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from browser import CHROMIUM, CHROMIUM_ARGS, Lab, evaluate, offline_guard, open_notebook

SETUP = """import os, time, gc, torch, layerscope as ls
from layerscope.inspect.histogram import summarize
ls.heatmap(torch.zeros(2, 2))"""
CELL = """_t0 = time.perf_counter()
v = ls.heatmap(x)
ctor_ms = (time.perf_counter() - _t0) * 1000
v"""

SIZES = (1024, 4096, 16384)
MODES = (("sync (before)", "1"), ("deferred (now)", ""))

# Every token the cell's view shows, with the page time it appeared, from the keydown of the
# Shift+Enter that ran the cell.
OBSERVE = """() => {
  window.__t0 = null; window.__tokens = []; window.__old = null;
  const cell = document.querySelectorAll('.jp-Cell')[1];
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.shiftKey) {
      window.__t0 = performance.now(); window.__tokens = [];
      const old = cell.querySelector('.ls-heatmap[data-token]');
      window.__old = old ? old.dataset.token : null;
    }
  }, true);
  new MutationObserver(() => {
    const v = cell.querySelector('.ls-heatmap[data-token]');
    if (!v || v.dataset.token === window.__old) return;  // the previous run's view
    const t = v.dataset.token; const last = window.__tokens[window.__tokens.length - 1];
    if (!last || last.token !== t) window.__tokens.push({token: t, t: performance.now()});
  }).observe(cell, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-token']});
}"""

# Paint reports of a view already on screen (kernel-set to painted, ms), in order.
PAINTS = """() => {
  window.__paints = [];
  const e = document.querySelectorAll('.jp-Cell')[1].querySelector('.ls-heatmap');
  new MutationObserver(() => window.__paints.push([e.dataset.token, Number(e.dataset.paintMs)]))
    .observe(e, {attributes: true, attributeFilter: ['data-paint-ms']});
}"""

FINAL_TOKEN = "(v.passes.result() if v.passes else None, v._meta['token'])[1]"


def new_view(page: Any, client: Any, n: int, sync: str) -> dict[str, Any]:
    evaluate(
        client,
        "0",
        setup=(
            f"os.environ['LAYERSCOPE_SYNC_PASSES'] = {sync!r}\n"
            "v = x = None\ngc.collect()\n"
            f"x = torch.randn({n}, {n}, generator=torch.Generator().manual_seed({n}))"
        ),
    )
    cell = page.locator(".jp-Cell").nth(1)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    # The view on screen means the cell ran (a kernel request sent before Lab's execute
    # request would otherwise read the previous view).
    page.wait_for_function("() => window.__tokens.length > 0", timeout=300_000)
    final = str(evaluate(client, FINAL_TOKEN))
    page.wait_for_function(
        "(f) => window.__tokens.some((r) => r.token === f)", arg=final, timeout=300_000
    )
    t0, tokens = page.evaluate("() => [window.__t0, window.__tokens]")
    full = next(r["t"] for r in tokens if r["token"] == final)
    ctor_ms = evaluate(client, "ctor_ms")
    # Re-assignment of the view now on screen (a new tensor: x changed in place).
    page.evaluate(PAINTS)
    evaluate(client, "0", setup="x.neg_()\nv.data = x")
    final2 = str(evaluate(client, FINAL_TOKEN))
    page.wait_for_function(
        "(f) => window.__paints.some((p) => p[0] === f)", arg=final2, timeout=300_000
    )
    paints = page.evaluate("() => window.__paints")
    return {
        "ctor_ms": ctor_ms,
        "first_paint_ms": tokens[0]["t"] - t0,
        "full_ms": full - t0,
        "reassign_first_ms": paints[0][1],
        "reassign_full_ms": next(p[1] for p in paints if p[0] == final2),
    }


def passes(client: Any, n: int) -> float:
    return evaluate(
        client,
        "_best",
        setup=(
            "v = x = None\ngc.collect()\n"
            f"x = torch.randn({n}, {n}, generator=torch.Generator().manual_seed({n}))\n"
            "_best = 1e9\n"
            "for _ in range(2):\n"
            "    _t0 = time.perf_counter(); summarize(x)\n"
            "    _best = min(_best, (time.perf_counter() - _t0) * 1000)\n"
            "x = None\ngc.collect()"
        ),
    )


# Resolves with the time the heatmap painted; rejects after LOADED_TIMEOUT_MS instead of waiting
# for ever (Playwright's evaluate has no timeout of its own) when a page never paints.
LOADED_TIMEOUT_MS = 60_000
LOADED = """(limit) => new Promise((res, rej) => {
  const done = () => document.querySelector('.ls-heatmap[data-token]');
  if (done()) return res(performance.now());
  const o = new MutationObserver(() => {
    if (done()) { o.disconnect(); clearTimeout(t); res(performance.now()); }
  });
  const t = setTimeout(() => {
    o.disconnect();
    rej(new Error(`no painted heatmap (.ls-heatmap[data-token]) after ${limit} ms`));
  }, limit);
  o.observe(document, {subtree: true, childList: true, attributes: true});
})"""


def exported(browser: Any, root: pathlib.Path) -> dict[str, Any]:
    import ipywidgets
    import torch

    import layerscope as ls
    from layerscope import export

    torch.manual_seed(0)
    pages = {
        "one 64x512 heatmap": ls.export_html(ls.heatmap(torch.randn(64, 512)), root / "one.html"),
        "heatmap + ipywidgets HTML (full stack, packed)": ls.export_html(
            ipywidgets.VBox([ipywidgets.HTML("<b>x</b>"), ls.heatmap(torch.randn(64, 512))]),
            root / "packed.html",
        ),
    }
    # The same one-heatmap page as export_html wrote it before issue 15: require.js, anywidget's
    # AMD module under its name and embed-amd.js, each inlined uncompressed, and the widget state
    # as the JSON that embed-amd.js reads (not packed).
    one = pages["one 64x512 heatmap"].read_text()
    start = one.index("<script>window.__layerscopeOffline")
    end = one.index("</head>")
    packed_open = f'<script type="{export.PACKED_STATE_TYPE}">'
    s0 = one.index(packed_open)
    s1 = one.index("</script>", s0)
    state = json.loads(gzip.decompress(base64.b64decode(one[s0 + len(packed_open) : s1])))
    one = one[:s0] + export.state_script_json(state) + one[s1 + len("</script>") :]
    before = [
        "<script>window.__layerscopeOffline = true;</script>",
        export._script(export._vendor("require.js")),
        export._script(export._NAMED_DEFINE_OPEN_JS % json.dumps("anywidget")),
        export._script(export.amd_module("anywidget")),
        export._script(export._NAMED_DEFINE_CLOSE_JS),
        export._script(export._vendor("embed-amd.js")),
    ]
    old = root / "before.html"
    old.write_text(one[:start] + "\n".join(before) + "\n" + one[end:])
    pages = {"one 64x512 heatmap, full stack uncompressed (before)": old, **pages}
    out: dict[str, Any] = {}
    for name, path in pages.items():
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        times = []
        with offline_guard(page) as attempted:
            for _ in range(3):
                page.goto(path.as_uri())
                times.append(page.evaluate(LOADED, LOADED_TIMEOUT_MS))
        page.close()
        out[name] = {
            "bytes": path.stat().st_size,
            "load_to_painted_ms": min(times),
            "requests_outside": attempted,
        }
    return out


def next_cell(n: int = 16384) -> dict[str, float]:
    """In this process: how much longer a next cell's own torch work (matmuls) takes while a new
    n x n view's deferred passes run, against the passes themselves and the synchronous path."""
    import torch

    import layerscope as ls
    from layerscope.widgets import heatmap as hm

    os.environ.pop(hm.SYNC_PASSES_ENV, None)
    y = torch.randn(2048, 2048)

    def work() -> float:
        t0 = time.perf_counter()
        for _ in range(20):
            float((y @ y[:256].T).sum())
        return (time.perf_counter() - t0) * 1000

    warm = ls.heatmap(torch.randn(4097, 4096))  # just above the deferral threshold
    assert warm.passes is not None
    warm.passes.result()
    alone = min(work() for _ in range(3))
    x = torch.randn(n, n)
    t0 = time.perf_counter()
    v = ls.heatmap(x)
    ctor = (time.perf_counter() - t0) * 1000
    during = work()
    assert v.passes is not None
    v.passes.result()
    landed = (time.perf_counter() - t0) * 1000
    del v
    os.environ[hm.SYNC_PASSES_ENV] = "1"
    t0 = time.perf_counter()
    ls.heatmap(x)
    sync = (time.perf_counter() - t0) * 1000
    os.environ.pop(hm.SYNC_PASSES_ENV)
    return {
        "ctor_ms": ctor,
        "next_cell_alone_ms": alone,
        "next_cell_during_passes_ms": during,
        "passes_landed_after_ms": landed,
        "synchronous_ctor_ms": sync,
    }


def passes_alone(n: int = 16384, rounds: int = 3) -> dict[str, Any]:
    """In this process: statistics + histogram of an n x n float32 tensor, the passes in one
    thread (``SPLIT_THREADS = 1``, as before) against split over two threads (now), interleaved;
    best wall and CPU (process) time of ``rounds`` each, and the next cell's slow-down while a
    deferred view's passes run, both ways."""
    import torch

    from layerscope.inspect import histogram as H

    x = torch.randn(n, n, generator=torch.Generator().manual_seed(n))
    out: dict[str, Any] = {}
    before = H.SPLIT_THREADS
    try:
        for _ in range(rounds):
            for mode, threads in (("one_thread", 1), ("split", 2)):
                H.SPLIT_THREADS = threads
                c0, t0 = time.process_time(), time.perf_counter()
                H.summarize(x)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                best = out.setdefault(mode, {"wall_ms": 1e9, "cpu_ms": 1e9})
                best["wall_ms"] = min(best["wall_ms"], wall * 1000)
                best["cpu_ms"] = min(best["cpu_ms"], cpu * 1000)
        del x
        for mode, threads in (("one_thread", 1), ("split", 2)):
            H.SPLIT_THREADS = threads
            out[mode]["next_cell"] = next_cell(n)
    finally:
        H.SPLIT_THREADS = before
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--passes", action="store_true", help="only the passes alone and the next cell (no Lab)"
    )
    args = parser.parse_args()
    if args.passes:
        load = os.getloadavg()
        r = passes_alone()
        r["load_before_after"] = [load, os.getloadavg()]
        r["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        print(json.dumps(r, indent=1))
        return
    sizes = [n for n in SIZES if not (args.quick and n > 4096)]
    from playwright.sync_api import sync_playwright

    root = pathlib.Path(tempfile.mkdtemp(prefix="wt15-bench-"))
    lab = Lab(root)
    results: dict[str, Any] = {"views": {}, "passes_ms": {}}
    load = os.getloadavg()
    try:
        lab.write_notebook("first_display.ipynb", [SETUP, CELL])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            open_notebook(page, lab, "first_display.ipynb", run_all=False)
            client = lab.kernel_client()
            evaluate(client, "0", setup=SETUP.replace("ls.heatmap(torch.zeros(2, 2))", ""))
            page.evaluate(OBSERVE)
            # Warm-up: the first view pays for torch's kernels and the bundle.
            new_view(page, client, 512, "")
            for n in sizes:
                for mode, sync in MODES:
                    r = new_view(page, client, n, sync)
                    results["views"][f"{n}^2 {mode}"] = r
                    print(f"{n}^2 {mode}", json.dumps(r), flush=True)
                results["passes_ms"][f"{n}^2"] = passes(client, n)
            evaluate(client, "0", setup="v = x = None\ngc.collect()")
            client.stop_channels()
            results["export"] = exported(browser, root)
            browser.close()
    finally:
        lab.shutdown_kernels()
        lab.close()
    results["next_cell"] = next_cell() if not args.quick else next_cell(8192)
    results["load_before_after"] = [load, os.getloadavg()]
    results["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {load} -> {os.getloadavg()}"
    )
    print(json.dumps(results, indent=1))
    out = pathlib.Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "first_display.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
