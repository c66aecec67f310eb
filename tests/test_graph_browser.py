"""ls.graph in real JupyterLab and in an exported offline page, in headless Chromium: clicks reach
the kernel, Python selections reach the view, folding changes what is drawn, search, the overlay
legend, model strings as text, and a 10,000-node graph that stays interactive.

The view draws on a canvas; its root carries ``data-*`` attributes (drawn node count, selected
path, matches, render and expand times) and ``root.lsGraph.items()`` gives every drawn item's
rectangle in page coordinates, so the tests click where a node really is and then check pixels.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import layerscope as ls
import zoo
from browser import Lab, evaluate, offline_guard, open_notebook, screenshot

pytestmark = pytest.mark.browser

ROOT = ".ls-graph"
ACCENT = (255, 109, 0)
CONV_FILL = (0xC6, 0xB5, 0xF2)

SETUP = "import sys, torch, layerscope as ls\nsys.path.insert(0, {tests!r})\nimport zoo\n"
TESTS = str(pathlib.Path(__file__).resolve().parent)


def cells(code: str) -> list[str]:
    return [SETUP.format(tests=TESTS) + code]


def data(page: Any) -> dict[str, str]:
    return page.eval_on_selector(ROOT, "e => ({...e.dataset})")


def items(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(f"() => document.querySelector('{ROOT}').lsGraph.items()")


def item(page: Any, path: str, kind: str | None = None) -> dict[str, Any]:
    found = [i for i in items(page) if i["path"] == path and (kind is None or i["kind"] == kind)]
    assert found, f"{path!r} is not drawn; drawn: {[i['path'] for i in items(page)][:40]}"
    return found[0]


def pixel(page: Any, x: float, y: float) -> tuple[int, int, int]:
    """RGB of the canvas at page coordinates (x, y)."""
    return tuple(
        page.evaluate(
            """([x, y]) => {
                const c = document.querySelector('.ls-graph canvas.ls-graph-canvas');
                const r = c.getBoundingClientRect(), k = c.width / r.width;
                const d = c.getContext('2d').getImageData(Math.round((x - r.left) * k), Math.round((y - r.top) * k), 1, 1).data;
                return [d[0], d[1], d[2]];
            }""",
            [x, y],
        )
    )


def near(a: tuple[int, ...], b: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(p - q) <= tol for p, q in zip(a, b, strict=True))


def click_item(page: Any, path: str, *, toggle: bool = False, kind: str | None = None) -> None:
    it = item(page, path, kind)
    x = it["x"] + (12 if toggle else it["w"] / 2)
    y = it["y"] + (
        13 if toggle and it["open"] else it["h"] / 2 + (4 if it["kind"] == "repeat" else 0)
    )
    box = page.locator(f"{ROOT} canvas").first.bounding_box()
    inside = box["x"] < x < box["x"] + box["width"] and box["y"] < y < box["y"] + box["height"]
    assert inside, f"{path!r} at ({x:.0f}, {y:.0f}) is outside the canvas {box}"
    page.mouse.click(x, y)


def kernel_value(client: Any, expr: str, want: Any, page: Any) -> Any:
    """``expr`` in the kernel once it equals ``want`` (the view's message may still be on its way)."""
    for _ in range(50):
        got = evaluate(client, expr)
        if got == want:
            return got
        page.wait_for_timeout(100)
    return got


def wait_ready(page: Any, timeout: float = 90_000) -> None:
    page.wait_for_selector(f".jp-OutputArea {ROOT}[data-ready]", timeout=timeout)
    page.locator(ROOT).first.scroll_into_view_if_needed()


def test_click_selects_in_the_kernel_and_python_selects_in_the_view(
    page: Any, kernels: Lab
) -> None:
    lab = kernels
    open_notebook(
        page,
        lab,
        "graph_select.ipynb",
        cells("model, (x,) = zoo.make_resnet()\nview = ls.graph(model, x)\nview"),
    )
    wait_ready(page)
    stem = item(page, "stem")
    # A conv node is drawn in the conv colour (a spot inside it, left of its text).
    assert near(pixel(page, stem["x"] + 5, stem["y"] + stem["h"] / 2), CONV_FILL)
    click_item(page, "stem")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.selected === 'stem'")
    client = lab.kernel_client()
    assert kernel_value(client, "view.selected", "stem", page) == "stem"
    details = page.locator(f"{ROOT} .ls-graph-details")
    assert details.locator(".ls-title").inner_text() == "Conv2d"
    assert "(2, 3, 8, 8) float32" in details.inner_text()
    assert "weight: (8, 3, 3, 3)" in details.inner_text()
    # The ring around the selected node is the accent colour.
    stem = item(page, "stem")
    assert near(pixel(page, stem["x"] - 1, stem["y"] + stem["h"] / 2), ACCENT, 30)
    # From Python: a node inside a folded repeat is revealed, selected and centred.
    evaluate(client, "1", setup="view.selected = 'layer1.1.conv2'")
    page.wait_for_function(
        f"document.querySelector('{ROOT}').dataset.selected === 'layer1.1.conv2'"
    )
    page.wait_for_timeout(100)
    target = item(page, "layer1.1.conv2")
    box = page.locator(f"{ROOT} canvas").bounding_box()
    cx, cy = target["x"] + target["w"] / 2, target["y"] + target["h"] / 2
    assert (
        abs(cx - (box["x"] + box["width"] / 2)) < 60
        and abs(cy - (box["y"] + box["height"] / 2)) < 60
    )
    assert near(pixel(page, target["x"] - 1, cy), ACCENT, 30)
    assert "layer1.1.conv2" in details.inner_text()
    assert "*layer1.0" in evaluate(client, "view.expanded")
    # An unknown path says so instead of failing.
    evaluate(client, "1", setup="view.selected = 'no.such.layer'")
    page.wait_for_function(f"document.querySelector('{ROOT} .ls-graph-details .ls-error') !== null")
    client.stop_channels()
    screenshot(page, "graph_lab_select")
    assert page.errors == []


def test_fold_unfold_and_search(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(
        page,
        lab,
        "graph_fold.ipynb",
        cells("model, (x,) = zoo.make_gpt(3, 2)\nview = ls.graph(model, x)\nview"),
    )
    wait_ready(page)
    start = int(data(page)["nodes"])
    repeat = item(page, "blocks.0", "repeat")
    assert repeat["label"] == "Block ×3"
    click_item(page, "blocks.0", toggle=True, kind="repeat")  # "x 3" -> three blocks
    page.wait_for_function(f"+document.querySelector('{ROOT}').dataset.nodes > {start}")
    unfolded = int(data(page)["nodes"])
    assert unfolded == start + 2
    click_item(page, "blocks.1", toggle=True)  # open one block
    page.wait_for_function(f"+document.querySelector('{ROOT}').dataset.nodes > {unfolded}")
    opened = int(data(page)["nodes"])
    assert item(page, "blocks.1.ln1")["label"] == "LayerNorm"
    assert float(data(page)["expandMs"]) < 200
    client = lab.kernel_client()
    page.wait_for_timeout(300)
    assert "blocks.1" in evaluate(client, "view.expanded")
    screenshot(page, "graph_lab_open_block")
    click_item(page, "blocks.1", toggle=True)  # fold it again from its header
    page.wait_for_function(f"+document.querySelector('{ROOT}').dataset.nodes === {unfolded}")
    assert opened > unfolded
    # Search: 3 blocks x 2 heads have a "query" Linear; Enter walks them in order.
    page.fill(f"{ROOT} .ls-graph-search", "query")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.matches === '6'")
    assert kernel_value(client, "view.search", "query", page) == "query"
    page.press(f"{ROOT} .ls-graph-search", "Enter")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.current !== undefined")
    first = data(page)["current"]
    assert first == "blocks.0.sa.heads.0.query"
    page.press(f"{ROOT} .ls-graph-search", "Enter")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.current !== '{first}'")
    assert data(page)["current"] == "blocks.0.sa.heads.1.query"
    assert page.locator(f"{ROOT} .ls-graph-matches").inner_text() == "2 of 6"
    cur = item(page, "blocks.0.sa.heads.1.query")
    assert near(
        pixel(page, cur["x"] - 3, cur["y"] + cur["h"] / 2), (0xE0, 0x40, 0xFB), 40
    )  # style.ts MATCH (magenta)
    screenshot(page, "graph_lab_search")
    # Regex on the class name, and from Python.
    evaluate(client, "1", setup="view.search = '/^LayerNorm$/'")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.matches === '7'")
    assert page.locator(f"{ROOT} .ls-graph-search").input_value() == "/^LayerNorm$/"
    client.stop_channels()
    assert page.errors == []


def test_overlay_legend_and_model_strings_are_text(page: Any, kernels: Lab) -> None:
    lab = kernels
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_notebook(
        page,
        lab,
        "graph_html.ipynb",
        cells("view = ls.graph(zoo.HtmlNamed(), torch.randn(2, 3), overlay='params')\nview"),
    )
    wait_ready(page)
    legend = page.locator(f"{ROOT} .ls-graph-legend")
    assert legend.is_visible()
    assert legend.inner_text().startswith("parameters")
    name = zoo.HTML_NAME
    node = item(page, name)
    click_item(page, name)
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.selected.startsWith('<img')")
    assert page.locator(f"{ROOT} .ls-graph-details .ls-graph-path").inner_text() == name
    page.mouse.move(node["x"] + node["w"] / 2, node["y"] + node["h"] / 2 + 2)
    page.wait_for_selector(f"{ROOT} .ls-graph-tip", state="visible")
    assert name in page.locator(f"{ROOT} .ls-graph-tip").inner_text()
    assert page.locator("img[src='x']").count() == 0
    assert page.locator(f"{ROOT} img").count() == 0
    client = lab.kernel_client()
    assert kernel_value(client, "view.selected", name, page) == name
    client.stop_channels()
    screenshot(page, "graph_lab_html_name")
    assert dialogs == [] and page.errors == []


def test_dark_theme_keeps_nodes_legible(browser: Any, tmp_path: pathlib.Path) -> None:
    lab = Lab(tmp_path, theme="JupyterLab Dark")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        open_notebook(
            page,
            lab,
            "dark.ipynb",
            cells("model, (x,) = zoo.make_cnn()\nview = ls.graph(model, x)\nview"),
        )
        wait_ready(page)
        box = page.locator(f"{ROOT} canvas").bounding_box()
        bg = pixel(page, box["x"] + 3, box["y"] + 3)
        assert sum(bg) / 3 < 80, bg
        conv = next(i for i in items(page) if i["label"] == "Conv2d")
        assert near(pixel(page, conv["x"] + 5, conv["y"] + conv["h"] / 2), CONV_FILL)
        screenshot(page, "graph_lab_dark")
        page.close()
    finally:
        lab.shutdown_kernels()
        lab.close()


def test_exported_page_works_offline(page: Any, tmp_path: pathlib.Path) -> None:
    model, (x,) = zoo.make_resnet()
    path = ls.export_html(ls.graph(model, x, overlay="params"), tmp_path / "graph.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(f"{ROOT}[data-ready]", timeout=30_000)
        assert page.locator(f"{ROOT} .ls-graph-legend").is_visible()
        start = int(data(page)["nodes"])
        click_item(page, "layer1.0", toggle=True, kind="repeat")
        page.wait_for_function(f"+document.querySelector('{ROOT}').dataset.nodes > {start}")
        click_item(page, "stem")
        page.wait_for_function(f"document.querySelector('{ROOT}').dataset.selected === 'stem'")
        assert page.locator(f"{ROOT} .ls-graph-details .ls-title").inner_text() == "Conv2d"
        page.fill(f"{ROOT} .ls-graph-search", "conv")
        page.wait_for_function(f"+document.querySelector('{ROOT}').dataset.matches > 3")
        screenshot(page, "graph_export_offline")
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []


def test_ten_thousand_nodes_stay_interactive(page: Any, tmp_path: pathlib.Path) -> None:
    model, (x,) = zoo.make_gpt()  # 48 blocks, ~9,800 nodes
    path = ls.export_html(ls.graph(model, x), tmp_path / "big.html")
    page.goto(path.as_uri())
    page.wait_for_selector(f"{ROOT}[data-ready]", timeout=60_000)
    first = float(data(page)["renderMs"])
    total = int(
        page.locator(f"{ROOT} .ls-title")
        .first.inner_text()
        .split(" · ")[1]
        .split()[0]
        .replace(",", "")
    )
    # "Open all" lays out ~1,000 groups in slices, the page painting its progress in between.
    page.evaluate(
        f"""() => {{ const p = document.querySelector('{ROOT} .ls-graph-progress');
            window.progressSeen = [];
            new MutationObserver(() => window.progressSeen.push(p.textContent))
              .observe(p, {{ childList: true, characterData: true, subtree: true }}); }}"""
    )
    page.click(f"{ROOT} .ls-graph-openall")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.layout === 'done'")
    open_all = float(data(page)["expandMs"])
    progress = page.evaluate("() => window.progressSeen")
    assert len([p for p in progress if p]) >= 2 and progress[-1] == "", progress
    # Complete and correct: every traced node drawn once, no fold left, no two nodes overlap.
    drawn = page.evaluate(
        f"""() => {{
          const its = document.querySelector('{ROOT}').lsGraph.items(100000);
          const nodes = its.filter(i => i.kind === 'node').sort((a, b) => a.y - b.y);
          let overlaps = 0;
          for (let i = 0; i < nodes.length; i++)
            for (let j = i + 1; j < nodes.length && nodes[j].y < nodes[i].y + nodes[i].h - 1e-6; j++)
              if (nodes[j].x < nodes[i].x + nodes[i].w - 1e-6 && nodes[i].x < nodes[j].x + nodes[j].w - 1e-6)
                overlaps++;
          return {{
            nodes: nodes.length,
            keys: new Set(nodes.map(i => i.key)).size,
            folded: its.filter(i => i.kind !== 'node' && !i.open).length,
            finite: its.every(i => [i.x, i.y, i.w, i.h].every(Number.isFinite)),
            overlaps,
          }};
        }}"""
    )
    assert drawn == {
        "nodes": total,
        "keys": total,
        "folded": 0,
        "finite": True,
        "overlaps": 0,
    }, drawn
    assert int(data(page)["nodes"]) == total
    # Pan and zoom: each event must come back within a frame budget, not seconds.
    box = page.locator(f"{ROOT} canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    t = page.evaluate("() => performance.now()")
    for _ in range(5):
        page.mouse.move(cx, cy)
        page.mouse.wheel(0, -400)
    page.mouse.down()
    page.mouse.move(cx + 200, cy + 150, steps=10)
    page.mouse.up()
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(0)))")
    interact = page.evaluate("() => performance.now()") - t
    # Fold and open one block inside the fully open graph.
    page.evaluate(f"() => document.querySelector('{ROOT}').lsGraph.toggle('blocks.20')")
    folded = float(data(page)["expandMs"])
    page.evaluate(f"() => document.querySelector('{ROOT}').lsGraph.toggle('blocks.20')")
    reopened = float(data(page)["expandMs"])
    page.evaluate(
        f"() => document.querySelector('{ROOT}').lsGraph.centre('blocks.20.sa.heads.3.query')"
    )
    screenshot(page, "graph_export_10k")
    print(
        f"10k: first render {first:.0f} ms, open all {open_all:.0f} ms, 5 zooms + drag {interact:.0f} ms, fold {folded:.0f} ms, open {reopened:.0f} ms"
    )
    assert first < 1_000
    assert open_all < 5_000 and interact < 3_000
    assert folded < 1_000 and reopened < 1_000
    assert page.errors == []


def test_example_notebook_links_graph_and_heatmap(page: Any, kernels: Lab) -> None:
    lab = kernels
    src = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "graph.ipynb"
    (lab.root / "graph_example.ipynb").write_text(src.read_text())
    open_notebook(page, lab, "graph_example.ipynb")
    wait_ready(page)
    lab.wait_kernel_idle()
    client = lab.kernel_client()
    assert evaluate(client, "heat.title") == "head.weight"  # the last cell set g.selected
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.selected === 'head'")
    page.locator(ROOT).first.scroll_into_view_if_needed()
    # Wheel zooms in; Fit shows the whole graph again.
    start = data(page)["scale"]
    box = page.locator(f"{ROOT} canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_function(f"+document.querySelector('{ROOT}').dataset.scale > {start}")
    before = data(page)["scale"]
    page.locator(f"{ROOT} .ls-graph-fit").click()
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.scale !== '{before}'")
    screenshot(page, "graph_notebook_fit")
    click_item(page, "net.2")
    page.wait_for_function(f"document.querySelector('{ROOT}').dataset.selected === 'net.2'")
    deadline = 50
    while evaluate(client, "heat.title") != "net.2.weight" and deadline:
        page.wait_for_timeout(100)
        deadline -= 1
    assert evaluate(client, "heat.title") == "net.2.weight"
    assert evaluate(client, "list(heat.data.shape)") == [32, 32]
    client.stop_channels()
    screenshot(page, "graph_notebook_linked")
    assert page.errors == []


def test_small_cnn_fits_the_view_on_first_draw(page: Any, tmp_path: pathlib.Path) -> None:
    # The digits CNN (11 nodes, a vertical chain): fc layers and the output must not start below
    # the fold.
    import sys

    import torch

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
    import digits

    model = digits.DigitsCNN()
    path = ls.export_html(ls.graph(model, torch.randn(1, 1, 8, 8)), tmp_path / "cnn.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(f"{ROOT}[data-ready]", timeout=30_000)
        box = page.locator(f"{ROOT} canvas").first.bounding_box()
        drawn = items(page)
        screenshot(page, "graph_small_cnn_fit")
    assert attempted == [] and page.errors == []
    nodes = [i for i in drawn if i["kind"] == "node"]
    assert len(nodes) >= 10, nodes
    outside = [
        i["label"]
        for i in nodes
        if i["y"] < box["y"]
        or i["y"] + i["h"] > box["y"] + box["height"] + 0.5
        or i["x"] < box["x"]
        or i["x"] + i["w"] > box["x"] + box["width"] + 0.5
    ]
    assert outside == [], f"below the fold or off the side at first draw: {outside}"
