"""ls.units in real JupyterLab and in an exported page, in headless Chromium: the table lists
every unit, sorting puts dead units first, clicking a row sets ``unit`` in Python and shows that
unit's card (crops, activation maps, quantile groups, weights); offline, baked cards show and the
others say they need a kernel, with every non-file request failing."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import pytest

import layerscope as ls
from browser import Lab, evaluate, offline_guard, open_notebook, screenshot
from dataset_models import trained_digits

pytestmark = pytest.mark.browser

TESTS = pathlib.Path(__file__).resolve().parent
SETUP = f"""import sys
sys.path.insert(0, {str(TESTS)!r})
import layerscope as ls
from dataset_models import trained_digits
model, (x, y, _, _) = trained_digits()
view = ls.units(model, (x[:300], y[:300]), layer="features.3", progress=False)
view"""


def test_units_in_lab(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "units.ipynb", [SETUP])
    page.wait_for_selector(".jp-OutputArea .ls-units tr.ls-row-unit", timeout=120_000)
    client = lab.kernel_client()
    assert page.locator(".ls-units tr.ls-row-unit").count() == 16
    page.wait_for_selector(".ls-units-card[data-unit='0'] canvas.ls-crop", timeout=30_000)

    # Sort: dead units first (the largest fraction of zeros on top).
    page.select_option(".ls-units-sort", "dead")
    page.wait_for_function("() => document.querySelector('.ls-units th').textContent === '#'")
    fz = evaluate(client, "view.collected().layers['features.3'].stats['frac_zero'].tolist()")
    first = int(page.locator(".ls-units tr.ls-row-unit").first.get_attribute("data-unit"))
    assert fz[first] == max(fz)
    assert evaluate(client, "view.sort") == "dead"

    # Click a row: Python hears the unit, the card shows its top examples.
    page.click(".ls-units tr.ls-row-unit[data-unit='5']")
    deadline = time.time() + 15
    while evaluate(client, "view.unit") != 5 and time.time() < deadline:
        time.sleep(0.2)
    assert evaluate(client, "view.unit") == 5
    page.wait_for_selector(".ls-units-card[data-unit='5']", timeout=15_000)
    top = evaluate(client, "view._card['top']['index']")
    # The baked card (fewer examples) can show first; the kernel's card then replaces it.
    page.wait_for_function(
        "n => document.querySelector(\".ls-units-card[data-unit='5'] .ls-ex-grid\")"
        "?.querySelectorAll('.ls-ex').length === n",
        arg=len(top),
        timeout=15_000,
    )
    shown = [
        int(e.get_attribute("data-sample"))
        for e in page.locator(".ls-units-card[data-unit='5'] .ls-ex-grid")
        .first.locator(".ls-ex")
        .all()
    ]
    assert shown == top
    assert page.locator(".ls-units-card .ls-group").count() == 10
    assert page.locator(".ls-units-card canvas.ls-map").count() == 20
    assert "incoming weights features.2.weight[5]" in page.locator(".ls-units-card").inner_text()
    screenshot(page, "units_lab")
    assert page.errors == []


def test_exported_units_offline(page: Any, tmp_path: pathlib.Path) -> None:
    model, (x, y, _, _) = trained_digits()
    view = ls.units(
        model, (x[:200], y[:200]), layer="features.3", progress=False, bake_budget=8_000
    )
    baked = view._baked["units"]
    assert 0 < len(baked) < 16
    path = ls.export_html(view, tmp_path / "units.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        page.wait_for_selector(".ls-units tr.ls-row-unit", timeout=30_000)
        page.click(f".ls-units tr.ls-row-unit[data-unit='{baked[-1]}']")
        page.wait_for_selector(
            f".ls-units-card[data-unit='{baked[-1]}'] canvas.ls-crop", timeout=10_000
        )
        screenshot(page, "units_export_offline")
        page.click(".ls-units tr.ls-row-unit[data-unit='15']")
        page.wait_for_selector(
            ".ls-units-card .ls-empty:has-text('need a running kernel')", timeout=15_000
        )
    assert attempted == [], f"the offline page tried the network: {attempted}"
    assert page.errors == []
