"""ls.timeline in real JupyterLab and in an exported page, in headless Chromium: scrubbing repaints
the weight heatmap from the frames in the browser (pixels match the stored snapshot), the epoch
reaches the kernel, repaint times, scrubbing while the kernel is busy, live epochs, offline."""

from __future__ import annotations

import math
import pathlib
import statistics
import tempfile
import time
from typing import Any

import pytest
import torch

import digits
import layerscope as ls
from browser import Lab, evaluate, offline_guard, open_notebook, pick_from_lazy_picker, screenshot

pytestmark = pytest.mark.browser

REPO = pathlib.Path(__file__).resolve().parents[1]
ROOT = ".ls-timeline-scrub"
SETUP = f"""import sys, torch, layerscope as ls
sys.path.insert(0, {str(REPO / "bench")!r})
import digits
torch.manual_seed(0)
x_tr, y_tr, x_te, y_te = digits.load()
data = (x_tr[:160], y_tr[:160], x_te[:64], y_te[:64])
model = digits.DigitsCNN(width=4)
rec = ls.Recorder(model, probe=x_te[:8])
run = digits.Training(model, data)
for _ in range(4):
    run.epoch(rec)
view = ls.timeline(rec, layer="classifier.1")
view"""

# The JS colour map (js/core/colormap.ts), to say which colour a code must be painted with.
RDBU = [
    "#053061",
    "#2166ac",
    "#4393c3",
    "#92c5de",
    "#d1e5f0",
    "#f7f7f7",
    "#fddbc7",
    "#f4a582",
    "#d6604d",
    "#b2182b",
    "#67001f",
]


def rdbu_rgb(v: float, lo: float, hi: float) -> tuple[int, int, int]:
    stops = [tuple(int(s[i : i + 2], 16) for i in (1, 3, 5)) for s in RDBU]
    idx = min(254, max(0, int((v - lo) * (254 / (hi - lo)) + 0.5)))
    t = idx / 254 * (len(stops) - 1)
    k = min(len(stops) - 2, math.floor(t))
    f = t - k
    return tuple(math.floor(stops[k][c] * (1 - f) + stops[k + 1][c] * f + 0.5) for c in range(3))  # type: ignore[return-value]


def expected_cell(
    client: Any, index: int, r: int, c: int, var: str = "view"
) -> tuple[int, int, int]:
    """The colour of weight cell (r, c) at epoch index ``index``, from the stored snapshot."""
    setup = f"""
import numpy as _np
from layerscope.widgets.timeline import _as_2d
from layerscope.wire.tiles import block_reduce
from layerscope.wire.quantize import quantize_u8, dequantize_u8
_p = {var}.scrubber.frames_now()["param"]
_e = {var}.rec.epochs[{index}]
_img = block_reduce(_as_2d({var}.rec.snapshot(_p["name"], _e).array), _p["codes"].shape[1:])
_code, _q = quantize_u8(_img, _p["quant"]["lo"], _p["quant"]["hi"])
_value = float(dequantize_u8(_code, _q)[{r}, {c}])
"""
    v, lo, hi = evaluate(client, "[_value, _q['lo'], _q['hi']]", setup=setup)
    return rdbu_rgb(v, lo, hi)


def changing_cell(client: Any, var: str = "view") -> tuple[int, int]:
    """A weight cell whose colour differs between the first and the last epoch."""
    setup = f"""
import numpy as _np
_c = {var}.scrubber.frames_now()["param"]["codes"]
_d = _np.abs(_c[0].astype(int) - _c[-1].astype(int))
_rc = [int(i) for i in _np.unravel_index(int(_np.argmax(_d)), _d.shape)]
"""
    r, c = evaluate(client, "_rc", setup=setup)
    return r, c


def pixel(page: Any, r: int, c: int, root: str = ROOT) -> tuple[int, int, int]:
    return tuple(
        page.evaluate(
            """([root, r, c]) => {
                const cv = document.querySelector(root + ' .ls-tl-weight canvas');
                return Array.from(cv.getContext('2d').getImageData(c, r, 1, 1).data.slice(0, 3));
            }""",
            [root, r, c],
        )
    )


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 2) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def shown_epoch(page: Any, root: str = ROOT) -> int:
    return int(page.eval_on_selector(root, "e => e.dataset.epoch"))


def frame_times(page: Any, root: str = ROOT) -> list[float]:
    return list(page.eval_on_selector(root, "e => Array.from(e.lsFrameTimes)"))


def drag_slider(page: Any, root: str = ROOT, steps: int = 40) -> None:
    """Drag the slider's thumb from the left end to the right end and back, as a user would."""
    box = page.locator(f"{root} .ls-tl-slider").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    for k in range(steps + 1):
        page.mouse.move(box["x"] + 2 + (box["width"] - 4) * k / steps, y)
    for k in range(steps, -1, -1):
        page.mouse.move(box["x"] + 2 + (box["width"] - 4) * k / steps, y)
    page.mouse.up()


def still_running(client: Any, msg_id: str) -> bool:
    """True until the kernel has answered the execute request ``msg_id`` (the cell finished)."""
    import queue

    while True:
        try:
            msg = client.get_shell_msg(timeout=0.05)
        except queue.Empty:
            return True
        if msg["parent_header"].get("msg_id") == msg_id:
            return False


def wait_done(client: Any, msg_id: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while still_running(client, msg_id):
        assert time.time() < deadline, "the cell did not finish"
        time.sleep(0.2)


def hold(client: Any, before: str = "", after: str = "") -> tuple[str, Any]:
    """Run ``before`` in the kernel, then keep it busy (as a training loop would) until the
    returned ``release()`` is called, for at most 120 s, then run ``after``: (the cell's msg_id,
    release). Returns once the cell has started, so the kernel is busy from then on."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="ls-hold-"))
    started, flag = folder / "started", folder / "release"
    code = (
        f"{before}\nimport os as _os, time as _time\n_t0 = _time.time()\n"
        f"open({str(started)!r}, 'w').close()\n"
        f"while not _os.path.exists({str(flag)!r}) and _time.time() - _t0 < 120:\n"
        f"    _time.sleep(0.05)\n{after}"
    )
    msg_id = client.execute(code)
    deadline = time.time() + 60
    while not started.exists():
        assert time.time() < deadline, "the busy cell did not start"
        time.sleep(0.05)
    return msg_id, flag.touch


def test_timeline_in_lab_scrubs_without_the_kernel(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "timeline.ipynb", [SETUP])
    root = f".jp-OutputArea {ROOT}"
    page.wait_for_selector(f"{root}[data-epoch='3']", timeout=120_000)
    page.wait_for_selector(".jp-OutputArea .bqplot svg", timeout=60_000)
    client = lab.kernel_client()
    r, c = changing_cell(client)
    # Colours from the stored snapshots, computed now: a busy kernel cannot answer later.
    colours = {i: expected_cell(client, i, r, c) for i in range(4)}
    first, last = colours[0], colours[3]
    assert not close(first, last, 0)
    assert close(pixel(page, r, c, root), last), (pixel(page, r, c, root), last)

    # Arrow keys: one epoch back at a time; the painted cell follows the stored snapshot.
    page.locator(root).focus()
    for want in (2, 1, 0):
        page.keyboard.press("ArrowLeft")
        assert shown_epoch(page, root) == want
        assert close(pixel(page, r, c, root), colours[want])
    # The kernel hears the epoch (throttled, after the repaint).
    deadline = time.time() + 10
    while evaluate(client, "view.epoch") != 0 and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "view.epoch") == 0
    # The browser moved the bqplot markers and synced them: the kernel's state says epoch 0.
    deadline = time.time() + 10
    marker = "[view._loss_marker.x.tolist(), view._metric_marker.x.tolist()]"
    want = evaluate(client, "[[float(rec.epoch_steps()[0] - 1)] * 2, [0.0, 0.0]]")
    while evaluate(client, marker) != want and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, marker) == want

    # A mouse drag across the slider and back repaints every frame from memory.
    drag_slider(page, root)
    assert shown_epoch(page, root) == 0
    page.keyboard.press("End")  # the native slider's key: to the last epoch
    page.wait_for_function(f"document.querySelector('{root}').dataset.epoch === '3'")
    assert close(pixel(page, r, c, root), last)
    times = frame_times(page, root)
    assert len(times) >= 8
    median = statistics.median(times)
    print(
        f"\nframe repaint in Lab: median {median:.3f} ms, max {max(times):.3f} ms, n={len(times)}"
    )
    assert median < 50
    screenshot(page, "timeline_lab")

    # The kernel is busy (a training loop would be): scrubbing still repaints at once.
    busy, release = hold(client)
    page.locator(root).focus()
    t0 = time.time()
    for want in (2, 1):
        page.keyboard.press("ArrowLeft")
        assert shown_epoch(page, root) == want
        assert close(pixel(page, r, c, root), colours[want])
    assert time.time() - t0 < 5
    assert still_running(client, busy), "the scrub must happen while the kernel is busy"
    release()
    wait_done(client, busy)
    # The epoch scrubbed while busy reaches the kernel once it is free.
    deadline = time.time() + 10
    while evaluate(client, "view.epoch") != 1 and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "view.epoch") == 1

    # Live: an epoch recorded while a cell runs appears in the browser during that cell.
    page.keyboard.press("End")
    page.wait_for_function(f"document.querySelector('{root}').dataset.epoch === '3'")
    live, release = hold(client, "run.epoch(rec)")
    page.wait_for_selector(f"{root}[data-epoch='4']", timeout=60_000)
    assert still_running(client, live), "the new epoch must show while its cell runs"
    release()
    wait_done(client, live)
    assert page.locator(f"{root} .ls-tl-epoch").inner_text().startswith("epoch 4 (5/5)")
    screenshot(page, "timeline_lab_live")
    client.stop_channels()
    assert page.errors == []


def test_live_timeline_stays_where_the_user_scrubbed(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "timeline_follow.ipynb", [SETUP])
    root = f".jp-OutputArea {ROOT}"
    page.wait_for_selector(f"{root}[data-epoch='3']", timeout=120_000)
    follow = page.locator(f"{root} input.ls-tl-follow")
    assert follow.is_visible() and follow.is_checked()
    client = lab.kernel_client()
    # Training runs (the kernel is busy); the view follows the newest epoch...
    # (epoch 4 now; 5 and 6 a second apart once the user has scrubbed)
    busy, release = hold(
        client, "run.epoch(rec)", "for _ in range(2):\n    _time.sleep(1); run.epoch(rec)"
    )
    page.wait_for_selector(f"{root}[data-epoch='4']", timeout=60_000)
    # ...until the user scrubs: then it stays there while new epochs extend the slider.
    page.locator(root).focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    assert shown_epoch(page, root) == 1
    assert not follow.is_checked()
    release()
    label = page.locator(f"{root} .ls-tl-epoch")
    seen = set()
    deadline = time.time() + 60
    while not label.inner_text().endswith("(2/7)") and time.time() < deadline:
        seen.add(shown_epoch(page, root))
        page.wait_for_timeout(100)
    assert label.inner_text() == "epoch 1 (2/7)"
    assert page.locator(f"{root} input.ls-tl-slider").get_attribute("max") == "6"
    assert seen == {1}, f"the view moved while training ran: {seen}"
    wait_done(client, busy)
    # Training over: the kernel hears the scrub; the view does not snap anywhere.
    deadline = time.time() + 10
    while (
        evaluate(client, "[view.epoch, view.scrubber.follow]") != [1, False]
        and time.time() < deadline
    ):
        time.sleep(0.2)
    assert evaluate(client, "[view.epoch, view.scrubber.follow]") == [1, False]
    assert shown_epoch(page, root) == 1
    screenshot(page, "timeline_lab_stays")
    # The toggle turns following back on: to the newest now, and to each new one.
    follow.check()
    page.wait_for_selector(f"{root}[data-epoch='6']", timeout=10_000)
    client.execute_interactive("run.epoch(rec)", timeout=60)
    page.wait_for_selector(f"{root}[data-epoch='7']", timeout=30_000)
    assert evaluate(client, "[view.epoch, view.scrubber.follow]") == [7, True]
    # Training slows down (the colour ranges hold): epochs recorded now go as a tail (their
    # rows only), joined in the page to the rows sent before; the newest and the oldest paint
    # as their snapshots.
    client.execute_interactive(
        "for g in run.opt.param_groups: g['lr'] = 1e-5\nfor _ in range(2): run.epoch(rec)",
        timeout=60,
    )
    page.wait_for_selector(f"{root}[data-epoch='9']", timeout=30_000)
    assert evaluate(client, "view.scrubber.frames_tail['base'] == view.scrubber.frames['rev']")
    assert evaluate(client, "len(view.scrubber.frames['epochs'])") < 10
    r, c = changing_cell(client)
    assert close(pixel(page, r, c, root), expected_cell(client, 9, r, c))
    page.locator(root).focus()
    page.keyboard.press("Home")
    assert shown_epoch(page, root) == 0
    assert close(pixel(page, r, c, root), expected_cell(client, 0, r, c))
    client.stop_channels()
    assert page.errors == []


def test_exported_page_renders_and_scrubs_offline(page: Any, tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    x_tr, y_tr, x_te, y_te = digits.load()
    data = (x_tr[:160], y_tr[:160], x_te[:64], y_te[:64])
    model = digits.DigitsCNN(width=4)
    rec = ls.Recorder(model, probe=x_te[:8])
    digits.train(model, 3, rec, data=data)
    view = ls.timeline(rec, layer="classifier.1", budget="1MB")
    # The last epoch recorded live, slowly (the colour ranges hold): the page holds it as a
    # tail of new rows joined to the payload before.
    digits.train(model, 1, rec, data=data, lr=1e-5)
    assert view.scrubber.frames_tail["base"] == view.scrubber.frames["rev"]
    codes = view.scrubber.frames_now()["param"]["codes"]
    quant = view.scrubber.frames_now()["param"]["quant"]
    diff = (codes[0].astype(int) - codes[-1].astype(int)) ** 2
    r, c = (int(i) for i in divmod(int(diff.argmax()), codes.shape[2]))
    from layerscope.wire.quantize import dequantize_u8

    def want(i: int) -> tuple[int, int, int]:
        return rdbu_rgb(float(dequantize_u8(codes[i], quant)[r, c]), quant["lo"], quant["hi"])

    path = ls.export_html(view, tmp_path / "timeline.html")
    size = path.stat().st_size
    print(f"\nexported page: {size / 1e6:.2f} MB")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(f"{ROOT}[data-epoch='3']", timeout=60_000)
        assert close(pixel(page, r, c), want(3))
        page.locator(ROOT).focus()
        for i in (2, 1, 0):
            page.keyboard.press("ArrowLeft")
            assert shown_epoch(page) == i
            assert close(pixel(page, r, c), want(i))
        # The bqplot epoch markers follow the scrub in the page (no kernel here).
        marker = page.eval_on_selector_all(
            ".bqplot svg path.line", "es => es.map(e => e.getAttribute('d'))"
        )
        page.keyboard.press("End")
        assert shown_epoch(page) == 3
        page.wait_for_function(
            "m => JSON.stringify(Array.from(document.querySelectorAll('.bqplot svg path.line'), e => e.getAttribute('d'))) !== m",
            arg=__import__("json").dumps(marker),
            timeout=10_000,
        )
        drag_slider(page)
        # bqplot renders offline: the loss line is drawn.
        page.wait_for_selector(".bqplot svg path.line", timeout=30_000)
        d = page.eval_on_selector(".bqplot svg path.line", "e => e.getAttribute('d')")
        assert d and d.count("L") > 10
        screenshot(page, "timeline_export_offline")
        times = frame_times(page)
        print(f"frame repaint offline: median {statistics.median(times):.3f} ms, n={len(times)}")
        assert statistics.median(times) < 50
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []


# Per bqplot figure: the x of its red marker line and of each x tick label (page pixels).
MARKER_TICKS = """() => [...document.querySelectorAll('.bqplot.figure')].map((fig) => {
  const red = [...fig.querySelectorAll('path')].find(
    (p) => getComputedStyle(p).stroke === 'rgb(214, 39, 40)');
  const box = red ? red.getBoundingClientRect() : null;
  const ticks = {};
  for (const t of fig.querySelectorAll('.axis')[0].querySelectorAll('.tick text')) {
    const b = t.getBoundingClientRect();
    ticks[t.textContent] = b.x + b.width / 2;
  }
  return [box ? box.x + box.width / 2 : null, ticks];
})"""


def svg_texts(page: Any, selector: str) -> list[str]:
    """textContent of the SVG elements matching ``selector`` (inner_text is for HTML)."""
    return page.locator(selector).evaluate_all("els => els.map((e) => e.textContent)")


def test_exported_charts_empty_and_labelled(page: Any, tmp_path: pathlib.Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    empty = ls.export_html(
        ls.timeline(ls.Recorder(model, probe=torch.randn(2, 4))), tmp_path / "empty.html"
    )
    rec = ls.Recorder(model, probe=torch.randn(2, 4))
    for epoch in range(1, 4):
        for k in range(7):
            rec.step(loss=2.0 / epoch + 0.01 * k)  # no backward: no gradient norms
        rec.epoch(val_acc=0.5 + epoch / 10)
    trained = ls.export_html(ls.timeline(rec), tmp_path / "trained.html")
    with offline_guard(page) as attempted:
        page.goto(empty.as_uri())
        page.wait_for_selector(".bqplot", timeout=60_000)
        page.wait_for_timeout(800)
        titles = svg_texts(page, ".bqplot .mainheading")
        legend = svg_texts(page, ".bqplot .legendtext")
        dots = page.locator(".bqplot .dot").count()
        # Nothing recorded: the curves panel's note says so and its canvas draws no second text.
        note = page.locator(f"{ROOT} .ls-tl-curves .ls-tl-note").is_visible()
        blank = page.evaluate(
            f"""() => {{ const c = document.querySelector('{ROOT} .ls-tl-curves canvas');
                return !c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v) => v); }}"""
        )
        screenshot(page, "timeline_export_empty")
        page.goto(trained.as_uri())
        page.wait_for_selector(f"{ROOT}[data-epoch='2']", timeout=60_000)
        page.wait_for_timeout(800)
        trained_legend = svg_texts(page, ".bqplot .legendtext")
        axes = page.locator(".bqplot .axis").evaluate_all(
            "els => els.map((a) => [...a.querySelectorAll('.tick text')].map((t) => t.textContent))"
        )
        sub_cut = page.evaluate(
            f"""() => [...document.querySelectorAll('{ROOT} .ls-tl-sub')]
                .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent)"""
        )
        screenshot(page, "timeline_export_trained")
    assert attempted == [] and page.errors == []
    assert any("loss: none recorded yet" in t for t in titles), titles
    assert any("metrics: none recorded yet" in t for t in titles), titles
    assert "C1" not in legend and dots == 0, (legend, dots)
    assert "epoch mean" in trained_legend and "loss (per step)" in trained_legend, trained_legend
    # Each axis: distinct labels in one format (the same number of decimals).
    for labels in axes:
        labels = [t for t in labels if t.strip()]
        assert len(labels) == len(set(labels)), f"repeated tick labels: {labels}"
        decimals = {len(t.split(".")[1]) if "." in t else 0 for t in labels}
        assert len(decimals) <= 1, f"mixed formats on one axis: {labels}"
    assert ["0", "1", "2"] in axes, axes  # whole epochs
    assert sub_cut == [], sub_cut
    assert note and blank


def test_a_run_recorded_every_n_steps_is_labelled_in_steps(
    page: Any, tmp_path: pathlib.Path
) -> None:
    """axis="step" (epoch() every 10 steps, LLM style): the scrubber, its panels, the charts and
    the notes of what was not kept whole say steps, in the single timeline and in the workspace,
    exported and opened offline."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x = torch.randn(2, 4)
    rec = ls.Recorder(model, probe=x, axis="step", snapshot=2)  # reduced at the 2nd point
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for k in range(30):
        loss = model(torch.randn(8, 4)).square().mean()
        loss.backward()
        rec.step(loss=loss)
        opt.step()
        opt.zero_grad()
        if (k + 1) % 10 == 0:
            rec.epoch(val_acc=0.5 + k / 100)
    single = ls.export_html(ls.timeline(rec, layer="0"), tmp_path / "steps.html")
    workspace = ls.export_html(ls.explore(model, x, recorder=rec), tmp_path / "steps_ws.html")
    with offline_guard(page) as attempted:
        page.goto(single.as_uri())
        page.wait_for_selector(f"{ROOT}[data-epoch='2']", timeout=60_000)
        page.wait_for_timeout(800)
        label = page.locator(f"{ROOT} .ls-tl-epoch").inner_text()
        notes = page.locator(f"{ROOT} .ls-tl-notes").inner_text()
        page.locator(ROOT).focus()
        page.keyboard.press("Home")
        first = page.locator(f"{ROOT} .ls-tl-epoch").inner_text()
        hist = page.locator(f"{ROOT} .ls-tl-hist").inner_text()
        speeds = page.locator(f"{ROOT} .ls-tl-speed option").all_inner_texts()
        aria = page.locator(f"{ROOT} .ls-tl-slider").get_attribute("aria-label")
        axis_labels = svg_texts(page, ".bqplot .axislabel")
        ticks = page.locator(".bqplot .axis").evaluate_all(
            "els => els.map((a) => [...a.querySelectorAll('.tick text')].map((t) => t.textContent))"
        )
        # The bqplot figures draw the curves here: the scrubber's own (curves=False) stay hidden.
        own_curves = page.locator(f"{ROOT} .ls-curves").is_visible()
        page.wait_for_timeout(400)  # the markers follow a scrub once it pauses (120 ms)
        markers = page.evaluate(MARKER_TICKS)
        screenshot(page, "timeline_steps_axis")
        page.goto(workspace.as_uri())
        scrub = page.locator(f".ls-explore {ROOT}")
        scrub.wait_for(timeout=60_000)
        page.wait_for_selector(f".ls-explore {ROOT}[data-epoch='2']", timeout=60_000)
        page.wait_for_timeout(800)
        ws_label = scrub.locator(".ls-tl-epoch").inner_text()
        ws_notes = scrub.locator(".ls-tl-notes").inner_text()
        ws_graph = page.locator(".ls-explore .ls-graph").inner_text()
        charts = page.locator(".ls-explore .ls-curves .ls-chart-wrap").evaluate_all(
            "els => els.map((e) => [e.querySelector('.ls-title').textContent, e.dataset.x])"
        )
        wraps = ".ls-explore .ls-curves .ls-chart-wrap"
        ws_marks = [page.locator(wraps).evaluate_all("els => els.map((e) => e.dataset.mark)")]
        scrub.focus()
        page.keyboard.press("Home")
        page.wait_for_timeout(400)
        ws_marks.append(page.locator(wraps).evaluate_all("els => els.map((e) => e.dataset.mark)"))
        screenshot(page, "explore_steps_axis")
    assert attempted == [] and page.errors == []
    assert label == "step 30 (3/3)" and first == "step 10 (1/3)", (label, first)
    assert "epoch" not in hist and "y step" in hist and "over steps" in hist, hist
    assert all("snapshot/s" in s for s in speeds) and aria and aria.startswith("step"), speeds
    assert "step" in axis_labels and "epoch" not in axis_labels, axis_labels
    assert any({"10", "20", "30"} <= set(t) for t in ticks), ticks  # the metrics at their steps
    # Scrubbed to step 10 in the page: each chart's red marker stands at its step (the loss
    # chart's at step 9, the last step before the snapshot; the metrics' at 10, not at 0,
    # the snapshot's index, off the chart's data).
    (loss_x, loss_ticks), (metric_x, metric_ticks) = markers
    assert abs(metric_x - metric_ticks["10"]) < 3, markers
    per_step = (loss_ticks["10"] - loss_ticks["5"]) / 5
    assert abs(loss_x - (loss_ticks["10"] - per_step)) < 3, markers
    assert not own_curves
    assert ws_label == "step 30 (3/3)", ws_label
    assert "weight change, step 10 to 30" in ws_graph, ws_graph
    for text in (notes, ws_notes):  # thinning and sampling said, in steps, in both views
        assert "snapshots reduced by the snapshot policy: at steps 20" in text, text
        assert "update ratios every 10th step" in text and "epochs" not in text, text
    assert ["loss", "step"] in charts and ["metrics", "step"] in charts, charts
    # The workspace's own charts mark the point as the single timeline does: the loss chart at
    # its last step, the metrics at its step (at step 30, then at step 10 after Home).
    assert ws_marks == [["29", "30"], ["9", "10"]], ws_marks


def test_a_picker_of_hundreds_of_recorded_layers_lists_them_when_used(
    page: Any, tmp_path: pathlib.Path
) -> None:
    """Past 500 layers the timeline's picker holds the shown layer alone at first (a 48-block
    transformer's ~2,600 options were a tenth of the workspace's first display); used, it lists
    every layer, and a layer the page does not hold says so."""
    torch.manual_seed(0)
    many = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(600)])
    rec = ls.Recorder(many, probe=torch.randn(2, 4))
    for _ in range(2):
        rec.epoch()
    path = ls.export_html(ls.timeline(rec, layer="3", budget="1MB"), tmp_path / "many.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(f"{ROOT}[data-epoch='1']", timeout=60_000)
        picker = pick_from_lazy_picker(page, f"{ROOT} select.ls-tl-layer", 600, "3", "599")
        page.wait_for_function(
            f"document.querySelector('{ROOT} .ls-tl-status').textContent.includes('599')"
        )
        status = page.locator(f"{ROOT} .ls-tl-status").inner_text()
        assert status.startswith("not saved in this page: the frames of 599"), status
        assert picker.evaluate("s => s.options.length") == 600
    assert attempted == [] and page.errors == []
