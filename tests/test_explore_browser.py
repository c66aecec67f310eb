"""ls.explore in real hosts (JupyterLab, Notebook 7, marimo) and in an exported page opened
offline, in headless Chromium: a click on a layer in the graph moves every panel to that layer
(checked against the model's own tensors), Python's traits follow, and no panel ever shows another
layer's data or waits for a kernel that is not there."""

from __future__ import annotations

import contextlib
import pathlib
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import layerscope as ls
from browser import Lab, evaluate, free_port, offline_guard, open_notebook, screenshot

pytestmark = pytest.mark.browser

TESTS = str(pathlib.Path(__file__).resolve().parent)
# The digits CNN trained 2 short epochs under a Recorder (bench/explore.py uses it too).
TRAINED = """
import sys, torch, layerscope as ls
sys.path.insert(0, {tests!r})
import digits
torch.manual_seed(0)
X, y, X_test, y_test = digits.load()
model = digits.DigitsCNN()
rec = ls.Recorder(model, probe=X_test[:16])
digits.train(model, 2, rec, data=(X[:128], y[:128], X_test[:64], y_test[:64]))
"""


def trained() -> tuple[Any, Any, Any]:
    scope: dict[str, Any] = {}
    exec(TRAINED.format(tests=TESTS), scope)
    return scope["model"], scope["X"], scope["rec"]


def panels(scope: Any) -> dict[str, dict[str, str]]:
    """Each panel's state ('shown' or 'note'), what it names, and its note."""
    return scope.evaluate(
        """root => Object.fromEntries([...root.querySelectorAll('.ls-ex-panel')].slice(1).map(p => [
            p.className.split(' ').pop().replace('ls-ex-', ''),
            {state: p.dataset.state, what: p.querySelector('.ls-ex-what').textContent,
             note: p.querySelector('.ls-ex-note').hidden ? '' : p.querySelector('.ls-ex-note').textContent}]))"""
    )


def click_layer(root: Any, page: Any, path: str) -> None:
    """Click the node of ``path`` in the workspace's graph (fitted so that every node shows)."""
    root.locator(".ls-graph-fit").click()
    root.locator(".ls-graph canvas").scroll_into_view_if_needed()
    page.wait_for_timeout(150)
    items = root.locator(".ls-graph").evaluate("g => g.lsGraph.items()")
    found = [i for i in items if i["path"] == path and i["kind"] != "group"]
    assert found, f"{path} is not drawn: {[i['path'] for i in items]}"
    it = found[0]
    page.mouse.click(it["x"] + it["w"] / 2, it["y"] + min(it["h"], 24) / 2)


def wait_selected(root: Any, path: str) -> None:
    root.page.locator(f".ls-explore[data-selected='{path}']").wait_for(timeout=30_000)


def weights_stats(root: Any) -> tuple[float, float]:
    """min and max as the weights panel's heatmap prints them."""
    text = root.locator(".ls-ex-weights .ls-heatmap .ls-muted").first.inner_text()
    m = re.search(r"min (\S+)\s+max (\S+)", text)
    assert m, text
    return float(m.group(1)), float(m.group(2))


def check_layer(root: Any, model: Any, path: str) -> None:
    """Every panel shows ``path``'s own data (or says in words that it has none)."""
    modules = dict(model.named_modules())
    p = panels(root)
    own = [n for n, _ in modules[path].named_parameters(recurse=False)]
    if own:
        param = f"{path}.weight"
        assert p["weights"] == {"state": "shown", "what": param, "note": ""}, p
        w = modules[path].weight.detach()
        lo, hi = weights_stats(root)
        assert abs(lo - float(w.min())) < 1e-3 and abs(hi - float(w.max())) < 1e-3
        assert (
            root.locator(
                ".ls-ex-weights .ls-weights-table .sel, .ls-ex-weights tr.ls-selected"
            ).count()
            >= 0
        )
    else:
        assert p["weights"]["state"] == "note" and "has no parameters" in p["weights"]["note"]
    assert p["acts"]["state"] == "shown" and p["acts"]["what"] == f"{path}, sample 0", p
    assert root.locator(".ls-ex-acts select.ls-layer").input_value() == path
    title = root.locator(".ls-ex-acts .ls-heatmap .ls-title").first.inner_text()
    assert title.startswith(path), title
    if own:
        assert p["timeline"]["state"] == "shown", p
        assert root.locator(".ls-timeline-scrub").get_attribute("data-layer") == path
    else:
        assert "has no recorded parameters" in p["timeline"]["note"], p


def test_exported_workspace_is_linked_offline(page: Any, tmp_path: pathlib.Path) -> None:
    model, X, rec = trained()
    ex = ls.explore(model, X[:8], recorder=rec)
    path = ls.export_html(ex, tmp_path / "explore.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = page.locator(".ls-explore")
        root.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        check_layer(root, model, "features.0")
        for layer in ("features.2", "features.1", "classifier.1"):
            t0 = time.perf_counter()
            click_layer(root, page, layer)
            wait_selected(root, layer)
            check_layer(root, model, layer)
            assert time.perf_counter() - t0 < 5
        text = page.locator("body").inner_text()
        assert "asking the kernel" not in text and "loading" not in text
        screenshot(page, "explore_offline_linked")
    assert attempted == []
    assert page.errors == []


def test_workspace_in_lab_clicks_reach_python_and_python_moves_the_panels(
    page: Any, kernels: Lab
) -> None:
    lab = kernels
    code = TRAINED.format(tests=TESTS) + "ex = ls.explore(model, X[:8], recorder=rec)\nex"
    open_notebook(page, lab, "explore_live.ipynb", [code])
    root = page.locator(".ls-explore")
    root.wait_for(timeout=60_000)
    lab.wait_kernel_idle()
    page.wait_for_timeout(500)
    client = lab.kernel_client()
    # The rest of the bake runs once the cell has ended (IPython's post_run_cell), in slices on
    # the kernel's event loop (a cell run meanwhile, as this one, waits for one slice at most).
    deadline = time.time() + 30
    while evaluate(client, "ex.baking") and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "[ex.baking, sorted(ex._baked['weights'])]") == [
        False,
        ["classifier.1.weight", "classifier.3.weight", "features.0.weight", "features.2.weight"],
    ]
    model, _, _ = trained()
    click_layer(root, page, "features.2")
    wait_selected(root, "features.2")
    deadline = time.time() + 20
    while evaluate(client, "ex.selected") != "features.2" and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(
        client, "[ex.selected, ex.weights.selected, ex.activations.layer, ex.timeline.layer]"
    ) == ["features.2", "features.2.weight", "features.2", "features.2"]
    check_layer(root, model, "features.2")
    evaluate(client, "1", setup="ex.selected = 'classifier.3'; ex.epoch = 0")
    wait_selected(root, "classifier.3")
    page.locator(".ls-explore[data-epoch='0']").wait_for(timeout=20_000)
    page.wait_for_timeout(500)
    check_layer(root, model, "classifier.3")
    assert root.locator(".ls-timeline-scrub").get_attribute("data-epoch") == "0"
    client.stop_channels()
    screenshot(page, "explore_lab_linked")
    assert page.errors == []


def run_in_notebook7(page: Any, lab: Lab, name: str, code: str) -> list[str]:
    """Open a one-cell notebook in Notebook 7 (the `notebook` package's /notebooks/ page) and run
    it from the Run menu; returns the list the page's errors go to. Notebook 7 itself throws on a
    plain notebook (its settings: "reading 'schema'", in notebook_core.js): only errors from
    anywhere else are listed."""
    lab.write_notebook(name, [code])
    ours: list[str] = []
    page.on(
        "pageerror",
        lambda e: None if "/static/notebook/" in (e.stack or "") else ours.append(str(e)),
    )
    page.goto(f"{lab.url}/notebooks/{name}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    lab.wait_kernel_idle()
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    return ours


def test_workspace_in_notebook7(page: Any, kernels: Lab) -> None:
    lab = kernels
    code = TRAINED.format(tests=TESTS) + "ex = ls.explore(model, X[:8], recorder=rec)\nex"
    ours = run_in_notebook7(page, lab, "explore_nb7.ipynb", code)
    root = page.locator(".ls-explore")
    root.wait_for(timeout=60_000)
    lab.wait_kernel_idle()
    page.wait_for_timeout(500)
    model, _, _ = trained()
    click_layer(root, page, "classifier.1")
    wait_selected(root, "classifier.1")
    client = lab.kernel_client()
    deadline = time.time() + 20
    while evaluate(client, "ex.selected") != "classifier.1" and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "ex.weights.selected") == "classifier.1.weight"
    check_layer(root, model, "classifier.1")
    client.stop_channels()
    screenshot(page, "explore_notebook7")
    assert ours == []


def marimo_app(views: str, names: str, readback: str) -> str:
    """A marimo app: one cell makes the small CNN and ``views`` (code that displays them and
    defines ``names``), the next shows ``readback`` (an f-string of their values) as text."""
    body = "\n".join("    " + line if line else "" for line in views.strip().split("\n"))
    return f'''
import marimo

app = marimo.App(width="full")


@app.cell
def _():
    import marimo as mo
    import torch
    import layerscope as ls
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    x = torch.randn(2, 1, 8, 8)
{body}
    return (mo, {names})


@app.cell
def _(mo, {names}):
    mo.md(f"{readback}")
    return
'''


MARIMO_APP = marimo_app(
    "view = mo.ui.anywidget(ls.explore(model, x))\nview",
    "view",
    "selected-in-python: {view.value['selected']}",
)


@contextlib.contextmanager
def marimo_server(app: pathlib.Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marimo",
            "run",
            str(app),
            "--headless",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-token",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("marimo did not start") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_workspace_in_marimo_renders_styled_and_its_value_follows_clicks(
    page: Any, tmp_path: pathlib.Path
) -> None:
    app = tmp_path / "app.py"
    app.write_text(MARIMO_APP)
    with marimo_server(app) as url:
        page.goto(url)
        root = page.locator(".ls-explore")
        root.wait_for(timeout=90_000)
        page.get_by_text("selected-in-python: 0").wait_for(timeout=60_000)
        # Styled inside marimo's shadow DOM: the workspace is a grid, the table has its layout.
        assert root.evaluate("e => getComputedStyle(e).display") == "grid"
        page.wait_for_timeout(500)
        click_layer(root, page, "3")
        wait_selected(root, "3")
        page.get_by_text("selected-in-python: 3").wait_for(timeout=30_000)
        p = panels(root)
        assert p["weights"]["what"] == "3.weight" and p["acts"]["what"] == "3, sample 0"
        screenshot(page, "explore_marimo")
    assert page.errors == []


def test_exported_workspace_sample_moves_saliency_and_says_what_is_not_saved(
    page: Any, tmp_path: pathlib.Path
) -> None:
    model, X, _ = trained()
    ex = ls.explore(model, X[:4], saliency={"method": "gradient"})
    path = ls.export_html(ex, tmp_path / "explore_saliency.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = page.locator(".ls-explore")
        root.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        box = root.locator(".ls-ex-saliency input[type=number]").first
        box.fill("2")
        box.press("Enter")
        page.locator(".ls-explore[data-selected='features.0']").wait_for()
        page.wait_for_function(
            "document.querySelector('.ls-ex-saliency .ls-ex-what').textContent === 'sample 2'"
        )
        p = panels(root)
        # Activations were baked for sample 0 only: the panel says so instead of showing sample 0.
        assert p["acts"]["state"] == "note" and "not saved in this page" in p["acts"]["note"], p
        assert "it holds sample 0 of each layer" in p["acts"]["note"]
        screenshot(page, "explore_offline_saliency_sample")
    assert attempted == []
    assert page.errors == []


def test_whole_notebook_export_is_linked_offline(page: Any, tmp_path: pathlib.Path) -> None:
    """The page of ``python -m layerscope.export nb.ipynb --execute``: the bake that runs after
    the cell is in the saved widget state, so every layer is there."""
    import nbformat

    from layerscope.export import export_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(TRAINED.format(tests=TESTS)),
        nbformat.v4.new_code_cell("ex = ls.explore(model, X[:8], recorder=rec)\nex"),
    ]
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, src)
    out = export_notebook(src, tmp_path / "nb.html", execute=True)
    model, _, _ = trained()
    with offline_guard(page) as attempted:
        page.goto(out.as_uri())
        root = page.locator(".ls-explore")
        root.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        for layer in ("classifier.3", "features.2"):
            click_layer(root, page, layer)
            wait_selected(root, layer)
            check_layer(root, model, layer)
        assert "not saved" not in page.locator("body").inner_text()
        screenshot(page, "explore_notebook_export")
    assert attempted == []
    assert page.errors == []


def test_workspace_follows_training_live_in_lab(page: Any, kernels: Lab) -> None:
    """Made before training (the quickstart's flow): epochs appear while the training cell runs,
    the timeline panel switches from 'no recorded parameters' to the layer's frames, and the
    bake after the training cell holds every epoch."""
    lab = kernels
    setup = (
        "import sys, torch, layerscope as ls\n"
        f"sys.path.insert(0, {TESTS!r})\n"
        "import digits\n"
        "torch.manual_seed(0)\n"
        "X, y, X_test, y_test = digits.load()\n"
        "model = digits.DigitsCNN()\n"
        "rec = ls.Recorder(model, probe=X_test[:16])\n"
        "ex = ls.explore(model, X_test[:8], recorder=rec)\n"
        "ex"
    )
    train = "digits.train(model, 3, rec, data=(X[:128], y[:128], X_test[:64], y_test[:64]))"
    open_notebook(page, lab, "explore_training.ipynb", [setup, train])
    root = page.locator(".ls-explore")
    root.wait_for(timeout=60_000)
    lab.wait_kernel_idle(180)
    page.locator(".ls-explore[data-epoch='2']").wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    p = panels(root)
    assert p["timeline"]["state"] == "shown", p
    scrub = root.locator(".ls-timeline-scrub")
    assert scrub.get_attribute("data-layer") == "features.0"
    assert scrub.get_attribute("data-epoch") == "2"
    assert "epoch 2 (3/3)" in scrub.inner_text()
    # The graph is coloured by the weight change over training, the table holds the new norms.
    assert "weight change, epoch 0 to 2" in root.locator(".ls-graph").inner_text()
    client = lab.kernel_client()
    deadline = time.time() + 30  # the bake after the training cell runs in slices
    while evaluate(client, "ex.baking") and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "[ex.baking, ex._epochs, sorted(ex._baked['frames'])]") == [
        False,
        [0, 1, 2],
        ["classifier.1", "classifier.3", "features.0", "features.2"],
    ]
    norm, table = evaluate(
        client, "[float(model.features[0].weight.norm()), ex.weights._rows['norm'][0]]"
    )
    assert abs(norm - table) < 1e-4  # the table was read again after training
    page.wait_for_timeout(300)
    assert f"{norm:.4g}" in root.locator(".ls-ex-weights").inner_text()
    # A workspace made after training: its graph's weight change is the first step of the bake
    # after its cell, on the kernel's event loop.
    label = evaluate(
        client, "ex2.overlay_label", setup="ex2 = ls.explore(model, X_test[:8], recorder=rec)"
    )
    assert label == "weight change, epoch 0 to 2: computing…"
    deadline = time.time() + 30
    while evaluate(client, "ex2.overlay == {}") and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "[ex2.overlay_label, ex2.overlay == rec.layer_change(0, 2)]") == [
        "weight change, epoch 0 to 2",
        True,
    ]
    client.stop_channels()
    screenshot(page, "explore_lab_training")
    assert page.errors == []


MARIMO_SINGLE_VIEWS = marimo_app(
    """
rec = ls.Recorder(model, probe=x)
for _e in range(2):
    rec.step(loss=1.0 / (_e + 1))
    rec.epoch(acc=0.5 + 0.1 * _e)
g = mo.ui.anywidget(ls.graph(model, x))
w = mo.ui.anywidget(ls.weights(model))
mo.vstack([
    g,
    mo.ui.anywidget(ls.heatmap(torch.randn(64, 64))),
    w,
    mo.ui.anywidget(ls.activations(model, x)),
    mo.ui.anywidget(ls.saliency(model, x, method="gradient")),
    mo.ui.anywidget(ls.timeline(rec, curves=False).scrubber),
])
""",
    "g, w",
    "graph-selected: {g.value['selected']} / weights-selected: {w.value['selected']}",
)


def test_every_single_view_renders_styled_and_reacts_in_marimo(
    page: Any, tmp_path: pathlib.Path
) -> None:
    app = tmp_path / "views.py"
    app.write_text(MARIMO_SINGLE_VIEWS)
    with marimo_server(app) as url:
        page.goto(url)
        page.get_by_text("graph-selected:").wait_for(timeout=90_000)
        for sel in (
            ".ls-graph",
            ".ls-heatmap",
            ".ls-weights",
            ".ls-activations",
            ".ls-saliency",
            ".ls-timeline-scrub",
        ):
            view = page.locator(sel).first
            view.wait_for(timeout=30_000)
            # Styled inside the shadow DOM: our border and padding, not the browser's defaults.
            assert view.evaluate("e => getComputedStyle(e).boxSizing") == "border-box", sel
        # The timeline's curves are drawn by the scrubber itself (no bqplot container here).
        assert page.locator(".ls-timeline-scrub .ls-curves").first.is_visible()
        graph = page.locator(".ls-graph").first
        graph.locator(".ls-graph-fit").click()
        page.wait_for_timeout(200)
        items = graph.evaluate("g => g.lsGraph.items()")
        lin = next(i for i in items if i["path"] == "3")
        page.mouse.click(lin["x"] + lin["w"] / 2, lin["y"] + min(lin["h"], 24) / 2)
        page.get_by_text("graph-selected: 3 /").wait_for(timeout=30_000)
        page.locator(".ls-weights .ls-tr", has_text="3.bias").first.click()
        page.get_by_text("weights-selected: 3.bias").wait_for(timeout=30_000)
        screenshot(page, "marimo_single_views")
    assert page.errors == []


SINGLE_VIEWS = [
    ".ls-graph",
    ".ls-heatmap",
    ".ls-weights",
    ".ls-activations",
    ".ls-saliency",
    ".ls-timeline-scrub",
]


def test_every_single_view_renders_and_reacts_in_notebook7(page: Any, kernels: Lab) -> None:
    lab = kernels
    code = (
        "import torch, layerscope as ls\nfrom torch import nn\n"
        "torch.manual_seed(0)\n"
        "model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))\n"
        "x = torch.randn(2, 1, 8, 8)\n"
        "rec = ls.Recorder(model, probe=x)\n"
        "for e in range(2):\n    rec.step(loss=1.0 / (e + 1)); rec.epoch(acc=0.5 + 0.1 * e)\n"
        "g = ls.graph(model, x)\n"
        "for v in (g, ls.heatmap(torch.randn(64, 64)), ls.weights(model), ls.activations(model, x),\n"
        "          ls.saliency(model, x, method='gradient'), ls.timeline(rec)):\n"
        "    display(v)"
    )
    ours = run_in_notebook7(page, lab, "views_nb7.ipynb", code)
    for sel in SINGLE_VIEWS:
        page.locator(sel).first.wait_for(timeout=60_000)
    lab.wait_kernel_idle()
    graph = page.locator(".ls-graph").first
    graph.locator(".ls-graph-fit").click()
    graph.scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    # Notebook 7 scrolls long outputs inside the cell: click the first node, in view.
    conv = next(i for i in graph.evaluate("g => g.lsGraph.items()") if i["path"] == "0")
    page.mouse.click(conv["x"] + conv["w"] / 2, conv["y"] + min(conv["h"], 24) / 2)
    client = lab.kernel_client()
    deadline = time.time() + 20
    while evaluate(client, "g.selected") != "0" and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "g.selected") == "0"
    screenshot(page, "notebook7_single_views")
    client.stop_channels()
    screenshot(page, "notebook7_single_views")
    assert ours == []


def test_exported_workspace_dataset_panels_hold_every_layer_or_say_why(
    page: Any, tmp_path: pathlib.Path, monkeypatch: Any
) -> None:
    """Offline, the dataset panels show each clicked layer's own projection and units (small
    data: every layer is saved); over DATASET_BAKE_SAMPLES they hold the selected layer and say
    why the others are not in the page."""
    import layerscope.widgets.explore as explore_mod

    model, X, _ = trained()
    scope: dict[str, Any] = {}
    exec(TRAINED.format(tests=TESTS), scope)
    y = scope["y"]
    ex = ls.explore(model, X[:8], data=(X[:200], y[:200]))
    path = ls.export_html(ex, tmp_path / "explore_data.html")
    monkeypatch.setattr(explore_mod, "DATASET_BAKE_SAMPLES", 100)
    small = ls.explore(model, X[:8], data=(X[:200], y[:200]))
    small_path = ls.export_html(small, tmp_path / "explore_data_big.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        root = page.locator(".ls-explore")
        root.wait_for(timeout=30_000)
        page.wait_for_timeout(800)
        p = panels(root)
        assert p["projection"]["state"] == "shown" and p["projection"]["what"] == "features.0"
        assert (
            p["units"]["state"] == "shown"
            and "32 units" in root.locator(".ls-ex-units").inner_text()
        )
        # Points are drawn: the projection's canvas is not blank.
        assert root.locator(".ls-ex-projection canvas").first.evaluate(
            "c => c.width > 0 && c.height > 0"
        )
        screenshot(page, "explore_offline_dataset")
        click_layer(root, page, "features.2")
        wait_selected(root, "features.2")
        page.wait_for_timeout(300)
        p = panels(root)
        for name in ("projection", "units"):
            assert p[name] == {"state": "shown", "what": "features.2", "note": ""}, p
        units = root.locator(".ls-ex-units").inner_text()
        assert "features.2" in units and "64 units" in units, units
        assert "features.2" in root.locator(".ls-ex-projection .ls-proj").inner_text()
        page.goto(small_path.as_uri())
        root = page.locator(".ls-explore")
        root.wait_for(timeout=30_000)
        assert panels(root)["units"]["state"] == "shown"
        click_layer(root, page, "features.2")
        wait_selected(root, "features.2")
        p = panels(root)
        for name in ("projection", "units"):
            assert p[name]["state"] == "note", p
            assert "at most 100 samples" in p[name]["note"], p
    assert attempted == []
    assert page.errors == []


@pytest.mark.slow
def test_quickstart_runs_and_its_page_works_offline(page: Any, tmp_path: pathlib.Path) -> None:
    """`make demo`'s notebook: executed, exported, opened from disk with every non-file request
    failing: every widget output paints (pixels of its canvases, photographed), nothing is
    requested or fails to load, no output is an error or a stderr box, and a click in the
    workspace moves every panel that follows the layer."""
    from layerscope.export import export_notebook

    src = pathlib.Path(TESTS).parent / "notebooks" / "quickstart.ipynb"
    out = export_notebook(src, tmp_path / "demo.html", execute=True)
    assert out.stat().st_size <= 3_000_000, f"demo page is {out.stat().st_size:,} bytes"
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    with offline_guard(page) as attempted:
        page.goto(out.as_uri())
        root = page.locator(".ls-explore")
        root.wait_for(timeout=60_000)
        assert (
            page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            ).count()
            == 0
        )
        outputs = page.locator(".jupyter-widgets.jp-OutputArea-output")
        kinds = [
            ".ls-explore",
            ".ls-saliency",
            ".ls-saliency",
            ".ls-proj",
            ".ls-units",
            ".ls-heatmap",
            ".ls-saliency",
        ]
        assert outputs.count() == len(kinds)
        for i, kind in enumerate(kinds):
            out_i = outputs.nth(i)
            assert out_i.locator(kind).count() >= 1, (i, kind)
            out_i.scroll_into_view_if_needed()
            page.wait_for_timeout(600)
            assert painted(out_i, tmp_path / f"out{i}.png") >= 6, f"output {i} ({kind}) is blank"
        # The workspace opens where the notebook left it (fc1 at epoch 0), every panel shown.
        wait_selected(root, "fc1")
        p = panels(root)
        for name in ("weights", "acts", "timeline", "projection", "units"):
            assert p[name]["state"] == "shown" and "fc1" in p[name]["what"], p
        assert p["saliency"]["state"] == "shown", p
        # The big tensor's view knows the page has no kernel: it asks for no tile.
        big = page.locator(".ls-heatmap", has_text="4096 x 4096").last
        assert "loading" not in big.inner_text() and "no kernel" in big.inner_text()
        click_layer(root, page, "conv2")
        wait_selected(root, "conv2")
        page.wait_for_timeout(300)
        p = panels(root)
        assert p["weights"]["what"] == "conv2.weight" and p["acts"]["what"] == "conv2, sample 0", p
        for name in ("weights", "acts", "timeline", "projection", "units"):
            assert "conv2" in p[name]["what"], p
            assert p[name]["state"] == "shown", p
        for name in ("weights", "acts", "projection", "units"):
            panel = root.locator(f".ls-ex-{name}")
            assert painted(panel, tmp_path / f"conv2-{name}.png") >= 6, f"{name} of conv2 is blank"
        screenshot(page, "quickstart_offline")
    assert attempted == [] and failed == []
    assert page.errors == []


def painted(scope: Any, path: pathlib.Path, enough: int = 6) -> int:
    """Distinct colours in a photograph of a visible canvas in ``scope`` (what the screen shows,
    WebGL included; a blank canvas has one or two): of the first canvas with at least
    ``enough``, else the most any has. It stops there: a units view has a canvas per unit, and
    photographing each took ~25 s."""
    from PIL import Image

    best = 0
    canvases = scope.locator("canvas")
    for j in range(canvases.count()):
        c = canvases.nth(j)
        box = c.bounding_box()
        if not box or box["width"] < 8 or box["height"] < 8:
            continue
        c.screenshot(path=str(path))
        best = max(best, len(Image.open(path).convert("RGB").getcolors(1 << 16) or range(1 << 16)))
        if best >= enough:
            break
    return best


PICK = """([k]) => {
  const p = document.querySelector('.ls-ex-projection .ls-proj').parentElement.__lsProjection;
  const out = [];
  for (let s = 0; s < 200 && out.length < k; s++) {
    const xy = p.screenOf(s);
    if (!xy || xy[0] < 20 || xy[1] < 20 || xy[0] > p.renderer.canvas.clientWidth - 20) continue;
    if (xy[1] > p.renderer.canvas.clientHeight - 20) continue;
    if (p.pick(xy[0], xy[1]) === p.slotOfSample(s)) out.push([s, xy[0], xy[1]]);
  }
  return out;
}"""


def click_sample(page: Any, root: Any, k: int = 0) -> int:
    """Click the k-th clickable point of the workspace's projection panel; its sample."""
    plot = root.locator(".ls-ex-projection .ls-proj-plot")
    plot.scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    s, x, y = page.evaluate(PICK, [k + 1])[k]
    box = plot.bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    return s


def test_a_point_clicked_in_the_projection_drives_the_saliency_panel(
    page: Any, kernels: Lab, tmp_path: pathlib.Path
) -> None:
    """Lab: a click on a point of the projection panel selects that dataset sample for the
    saliency panel (ex.data_sample), whose kernel view computes it for that sample's input;
    the exported page says plainly that another sample's saliency is not baked."""
    lab = kernels
    page_path = tmp_path / "explore_pick.html"
    code = TRAINED.format(tests=TESTS) + (
        "ex = ls.explore(model, X[:4], data=(X[:200], y[:200]), "
        "saliency={'method': 'gradient'}, selected='classifier.1')\nex"
    )
    open_notebook(page, lab, "explore_pick.ipynb", [code])
    root = page.locator(".ls-explore")
    root.wait_for(timeout=60_000)
    lab.wait_kernel_idle()
    root.locator(".ls-ex-projection .ls-proj-canvas").wait_for(timeout=60_000)
    page.wait_for_timeout(800)
    client = lab.kernel_client()
    s = click_sample(page, root)
    deadline = time.time() + 30
    while evaluate(client, "[ex.data_sample, ex.projection.selected]") != [s, [s]]:
        assert time.time() < deadline, evaluate(client, "[ex.data_sample, ex.projection.selected]")
        time.sleep(0.2)
    assert evaluate(client, "[ex.data_sample, ex.projection.selected, ex.saliency.batch]") == [
        s,
        [s],
        4,
    ]
    # the kernel's saliency panel computed that dataset sample's input, at its prediction
    assert evaluate(
        client,
        "bool(torch.allclose(ex.saliency._maps['gradient'][4], ls.attribute(model, "
        f"X[{s}:{s + 1}], target=ex.saliency.target[4], method='gradient')[0].sum(0)))",
    )
    page.wait_for_function(
        "document.querySelector('.ls-ex-saliency').dataset.state === 'shown' && "
        f"document.querySelector('.ls-ex-saliency .ls-ex-what').textContent === 'dataset sample {s}'"
    )
    # the panel's sample box says which row that is: not row 4 of the inputs
    page.wait_for_function(
        "document.querySelector('.ls-ex-saliency .ls-extra-row').textContent === "
        f"' = dataset sample {s}'"
    )
    root.locator(".ls-ex-saliency").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    screenshot(page, "explore_lab_pick_saliency")
    # the page saved now holds that sample's saliency, and no other dataset sample's
    evaluate(client, "1", setup=f"ls.export_html(ex, {str(page_path)!r})")
    client.stop_channels()
    assert page.errors == []
    with offline_guard(page) as attempted:
        page.goto(page_path.as_uri())
        root = page.locator(".ls-explore")
        root.wait_for(timeout=30_000)
        root.locator(".ls-ex-projection .ls-proj-canvas").wait_for()
        page.wait_for_timeout(800)
        assert panels(root)["saliency"] == {
            "state": "shown",
            "what": f"dataset sample {s}",
            "note": "",
        }
        other = click_sample(page, root, 1)
        assert other != s
        page.wait_for_function("document.querySelector('.ls-ex-saliency').dataset.state === 'note'")
        p = panels(root)["saliency"]
        assert p["what"] == f"dataset sample {other}"
        assert f"the saliency of dataset sample {other} is not baked into this page" in p["note"]
        assert f"and of dataset sample {s}" in p["note"]
        screenshot(page, "explore_offline_pick_not_baked")
    assert attempted == []
