"""Workspace benchmark (issue 10): ``ls.explore`` from Shift+Enter to every panel painted, a click
on a layer to every panel repainted (live in JupyterLab, and offline in the exported page), and the
exported page's size, in real JupyterLab + headless Chromium.

Two models, each with a Recorder that has recorded a few epochs:
- the digits CNN of ``bench/digits.py`` (sklearn's load_digits, 8 x 8 images), 2 short epochs;
- a 12-block GPT of ``tests/zoo.py`` (``make_gpt(12, 4)``: 4 heads, width 16) on token ids;
- the 48-block GPT of the graph benchmark (``make_gpt(48, 16)``, ~9,800 traced nodes), the same way.

Measured, from the workspace root's ``data-*`` hooks (js/explore/workspace.ts):
- ``display``: Shift+Enter on the ``ex = ls.explore(...); ex`` cell to the frame after every
  panel drew (page clock), ``kernel``: the constructor's own time (``ex.build_ms``), and
  ``render``: the view's own part, its constructor in the page to that frame (``viewMs``);
- ``click (baked)``: a click on a layer to the frame after every panel repainted from the state
  in the page; ``click (kernel)``: to the frame after the kernel's full-resolution data for every
  panel arrived and was drawn (live only);
- ``offline click``: the same click in the exported page opened from disk with no kernel;
- ``page``: the exported page's size.

Targets: first display < 1 s; click to repainted < 150 ms live, < 50 ms offline.

    PYTHONPATH=python .venv/bin/python bench/explore.py            # ~3 minutes
    PYTHONPATH=python .venv/bin/python bench/explore.py --runs 3 --models "48-block GPT"
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser import CHROMIUM, CHROMIUM_ARGS, Lab, open_notebook  # noqa: E402
from test_explore_browser import TRAINED  # noqa: E402

# A GPT of tests/zoo.py trained 3 short epochs under a Recorder (BLOCKS, HEADS filled in below).
GPT = """
import sys, torch, layerscope as ls
sys.path.insert(0, {tests!r})
import zoo
model, (x,) = zoo.make_gpt(BLOCKS, HEADS)
model.train()
rec = ls.Recorder(model, probe=x)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(3):
    for _ in range(4):
        out = model(x)
        loss = out.float().pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step(); rec.step(loss=loss.item())
    rec.epoch()
model.eval()
"""

MODELS = {
    "digits CNN": TRAINED + "x = X_test[:8]\n",
    "12-block GPT": GPT.replace("BLOCKS, HEADS", "12, 4"),
    "48-block GPT": GPT.replace("BLOCKS, HEADS", "48, 16"),
}
SHOW = "ex = ls.explore(model, x, recorder=rec)\nex"
BAKE_WAIT_S = 120  # how long a display's bake after the cell is waited for
SEL = ".jp-OutputArea .ls-explore"


def click_paths(page: Any, sel: str, n: int) -> list[str]:
    """Up to ``n`` module paths drawn in the graph, spread over it (leaf modules)."""
    items = page.evaluate(
        f"() => document.querySelector('{sel} .ls-graph').lsGraph.items()"
        ".filter(i => i.kind === 'node' && i.path && !i.path.includes(':') && !['input', 'output'].includes(i.path)).map(i => i.path)"
    )
    current = page.eval_on_selector(sel, "e => e.dataset.selected")
    items = [p for p in items if p != current]
    step = max(1, len(items) // n)
    return items[::step][:n]


def click(page: Any, sel: str, path: str, live: bool) -> tuple[float, float | None]:
    """Select ``path`` as a click in the graph does; (baked ms, kernel ms)."""
    page.evaluate(
        f"""() => {{ const r = document.querySelector('{sel}');
            delete r.dataset.routeMs; delete r.dataset.liveMs;
            r.lsExplore.select({path!r}); }}"""
    )
    page.wait_for_function(f"document.querySelector('{sel}').dataset.routeMs !== undefined")
    baked = float(page.eval_on_selector(sel, "e => e.dataset.routeMs"))
    kernel = None
    if live:
        page.wait_for_function(
            f"document.querySelector('{sel}').dataset.liveMs !== undefined", timeout=30_000
        )
        kernel = float(page.eval_on_selector(sel, "e => e.dataset.liveMs"))
    return baked, kernel


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def bench_model(browser: Any, lab: Lab, name: str, setup: str, runs: int) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    nb = f"bench_explore_{name.split()[0]}.ipynb"
    open_notebook(page, lab, nb, [setup.format(tests=str(ROOT / "tests")), SHOW], run_all=False)
    cells = page.locator(".jp-Notebook .jp-Cell")
    # The model and its training run in the notebook's own kernel, through a kernel client.
    client = lab.kernel_client()
    reply = client.execute_interactive(
        setup.format(tests=str(ROOT / "tests")), timeout=300, output_hook=lambda m: None
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    client.stop_channels()
    display, kernel, next_cell, bake, render = [], [], [], [], []
    for _ in range(runs):
        cells.nth(1).locator(".jp-InputArea-prompt").click()
        page.wait_for_timeout(300)
        client = lab.kernel_client()
        t0 = page.evaluate("() => performance.timeOrigin + performance.now()")
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                f"(() => {{ const e = document.querySelector('{SEL}');"
                f" return e && e.dataset.paintedAt && +e.dataset.paintedAt > {t0}; }})()",
                timeout=60_000,
            )
        except Exception:
            page.screenshot(path=str(ROOT / "tests" / "artifacts" / "bench_explore_failed.png"))
            raise
        painted = float(page.eval_on_selector(SEL, "e => e.dataset.paintedAt"))
        display.append(painted - t0)
        render.append(float(page.eval_on_selector(SEL, "e => e.dataset.viewMs")))
        # The user's next cell, sent once the view is painted: how long until it has run (the
        # bake after the cell runs before it, or in slices around it).
        t = time.perf_counter()
        client.execute_interactive("1", timeout=600, output_hook=lambda m: None)
        next_cell.append((time.perf_counter() - t) * 1000)
        # The saved state's bake after the cell, done (from the paint); ``baking`` is new.
        while time.time() * 1000 - painted < BAKE_WAIT_S * 1000:
            reply = client.execute_interactive(
                "",
                user_expressions={"b": "getattr(ex, 'baking', ex._stale)"},
                timeout=600,
                output_hook=lambda m: None,
            )
            if reply["content"]["user_expressions"]["b"]["data"]["text/plain"] == "False":
                bake.append(time.time() * 1000 - painted)
                break
            time.sleep(0.2)
        lab.wait_kernel_idle(60)
        reply = client.execute_interactive(
            "", user_expressions={"ms": "ex.build_ms"}, timeout=60, output_hook=lambda m: None
        )
        kernel.append(float(reply["content"]["user_expressions"]["ms"]["data"]["text/plain"]))
        client.stop_channels()
    page.wait_for_timeout(500)
    baked, live = [], []
    for path in click_paths(page, SEL, 8):
        b, k = click(page, SEL, path, live=True)
        baked.append(b)
        if k is not None:
            live.append(k)
        page.wait_for_timeout(200)
    # The exported page of the same view, opened from disk.
    out = Path(tempfile.mkdtemp()) / "explore.html"
    client = lab.kernel_client()
    client.execute_interactive(
        f"ls.export_html(ex, {str(out)!r})", timeout=120, output_hook=lambda m: None
    )
    client.stop_channels()
    page.close()
    lab.shutdown_kernels()  # the next model's notebook gets the only kernel
    offline = browser.new_page(viewport={"width": 1400, "height": 1000})
    offline.route(
        "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
    )
    t = time.perf_counter()
    offline.goto(out.as_uri())
    offline.wait_for_function(
        "(() => { const e = document.querySelector('.ls-explore'); return e && e.dataset.paintedAt; })()",
        timeout=60_000,
    )
    load_ms = (time.perf_counter() - t) * 1000
    offline_clicks = []
    for path in click_paths(offline, ".ls-explore", 8):
        offline_clicks.append(click(offline, ".ls-explore", path, live=False)[0])
        offline.wait_for_timeout(100)
    offline.close()
    return {
        "display": display,
        "kernel": kernel,
        "render": render,
        "next_cell": next_cell,
        "bake": bake,
        "baked": baked,
        "live": live,
        "offline": offline_clicks,
        "page_mb": out.stat().st_size / 1e6,
        "load_ms": load_ms,
    }


def main() -> None:
    import argparse

    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="displays per model")
    parser.add_argument("--models", nargs="*", choices=list(MODELS), help="default: all")
    args = parser.parse_args()
    runs = args.runs
    models = {n: s for n, s in MODELS.items() if not args.models or n in args.models}
    lab = Lab(Path(tempfile.mkdtemp()))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            results = {n: bench_model(browser, lab, n, s, runs) for n, s in models.items()}
            browser.close()
    finally:
        lab.shutdown_kernels()
        lab.close()
    print(f"ls.explore, {runs} displays per model, 8 clicks live and 8 offline (median, max)")
    print(
        f"{'model':14} {'display':>16} {'kernel':>8} {'click baked':>16} {'click kernel':>16} "
        f"{'offline click':>16} {'page':>8} {'page load':>10}"
    )
    for name, r in results.items():

        def mm(xs: list[float]) -> str:
            return f"{median(xs):7.0f} ({max(xs) if xs else float('nan'):5.0f})"

        print(
            f"{name:14} {mm(r['display']):>16} {median(r['kernel']):8.0f} {mm(r['baked']):>16} "
            f"{mm(r['live']):>16} {mm(r['offline']):>16} {r['page_mb']:6.1f}MB {r['load_ms']:8.0f}ms"
        )
    print("targets: display < 1000 ms; click < 150 ms live (kernel data), < 50 ms offline")
    print("the next cell after the paint, and the bake after the cell done (s after the paint;")
    print(f"'-' past {BAKE_WAIT_S} s), median (max):")
    for name, r in results.items():
        bakes = [f"{b / 1000:.1f}" for b in r["bake"]] + ["-"] * (
            len(r["display"]) - len(r["bake"])
        )
        print(
            f"{name:14} next cell {median(r['next_cell']):7.0f} ({max(r['next_cell']):5.0f}) ms"
            f"   bake done {', '.join(bakes)} s"
        )
    print("the display's parts, median: kernel (the constructor), the view's own render (its")
    print("constructor to the frame after every panel drew), and the rest (the cell's messages,")
    print("the widget models, the bundle):")
    for name, r in results.items():
        k, v, d = median(r["kernel"]), median(r["render"]), median(r["display"])
        print(f"{name:14} kernel {k:6.0f}   render {v:6.0f}   rest {d - k - v:6.0f} ms")


if __name__ == "__main__":
    main()
