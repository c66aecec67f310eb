"""The whole-notebook export refuses a notebook saved without widget state (it would be an empty
page) and names --execute; views have a text repr that says what they show."""

from __future__ import annotations

import pathlib

import nbformat
import pytest
import torch
from nbclient import NotebookClient

import layerscope as ls
from browser import new_notebook, page_state, write_notebook
from layerscope.export import export_notebook, main


def saved_without_widget_state(tmp_path: pathlib.Path) -> pathlib.Path:
    nb = new_notebook(["import torch, layerscope as ls\nls.heatmap(torch.ones(3, 4))"])
    # As Lab saves it with "Save Widget State Automatically" off: view outputs, no state.
    NotebookClient(nb, timeout=120, store_widget_state=False).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    return path


def test_export_without_widget_state_fails_and_names_execute(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = saved_without_widget_state(tmp_path)
    out = tmp_path / "page.html"
    with pytest.raises(SystemExit) as exit_:
        main([str(src), "-o", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "without their widget state" in err and "--execute" in err, err
    assert "TensorView(float32 (3, 4))" in err, err
    assert not out.exists()
    main([str(src), "-o", str(out), "--execute"])
    assert "wrote" in capsys.readouterr().out
    assert "application/vnd.layerscope.widget-state+gzip" in out.read_text()


def test_views_have_a_text_repr_that_says_what_they_show() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    assert repr(ls.heatmap(torch.ones(3, 4), title="w")) == "TensorView('w', float32 (3, 4))"
    assert (
        repr(ls.graph(model, torch.randn(1, 4)))
        == "GraphView(model Sequential, 4 nodes, 15 parameters)"
    )
    assert repr(ls.weights(model)).startswith("WeightsView(")
    assert "object at 0x" not in repr(ls.weights(model))
    rec = ls.Recorder(model, probe=torch.randn(2, 4))
    rec.epoch()
    assert repr(ls.timeline(rec)) == "TimelineView(1 epochs, layer '0')"


def test_heatmap_page_weighs_under_a_megabyte_and_holds_no_full_stack(
    tmp_path: pathlib.Path,
) -> None:
    # A page of anywidgets gets the small page manager, not require.js + embed-amd.js (~4 MB).
    torch.manual_seed(0)
    out = ls.export_html(ls.heatmap(torch.randn(64, 512)), tmp_path / "one.html")
    text = out.read_text()
    assert out.stat().st_size <= 1_000_000, out.stat().st_size
    assert "window.__layerscopeOffline = true" in text
    assert "var b64=" not in text and "requirejs" not in text  # no packed full stack
    two = ls.export_html(
        [ls.heatmap(torch.randn(64, 512)), ls.heatmap(torch.randn(8, 8))], tmp_path / "two.html"
    )
    assert two.stat().st_size <= 1_000_000


def test_page_with_other_widgets_packs_the_full_stack(tmp_path: pathlib.Path) -> None:
    import base64
    import gzip
    import json
    import re

    import ipywidgets

    box = ipywidgets.VBox([ipywidgets.IntSlider(3), ls.heatmap(torch.randn(8, 8))])
    out = ls.export_html(box, tmp_path / "box.html")
    text = out.read_text()
    assert out.stat().st_size <= 2_000_000, out.stat().st_size  # was ~4.1 MB uncompressed
    packed = re.search(r'var b64="([A-Za-z0-9+/=]+)"', text)
    assert packed is not None
    scripts = json.loads(gzip.decompress(base64.b64decode(packed.group(1))))
    # require.js first, then the anywidget module under its name, embed-amd.js last.
    assert "requirejs" in scripts[0] and '"anywidget"' in scripts[1]
    assert "renderWidgets" in scripts[-1] and len(scripts) == 5


def test_stale_buffers_a_notebook_kept_are_dropped() -> None:
    """nbclient keeps buffers of a key that a later update replaced by a smaller value; the
    exporter drops those whose path is gone and keeps the rest."""
    from layerscope.export import _drop_stale_buffers

    state = {
        "m": {
            "state": {"_baked": {"acts": {"conv1": {"buffers": [None]}}}},
            "buffers": [
                {
                    "path": ["_baked", "acts", "conv1", "buffers", 0],
                    "data": "AQ==",
                    "encoding": "base64",
                },
                {
                    "path": ["_baked", "acts", "pool", "buffers", 0],
                    "data": "Ag==",
                    "encoding": "base64",
                },
            ],
        }
    }
    _drop_stale_buffers(state)
    assert [b["path"][2] for b in state["m"]["buffers"]] == ["conv1"]


def test_executed_export_waits_for_deferred_passes(tmp_path: pathlib.Path) -> None:
    """export_notebook(execute=True) saves a big heatmap's full overview, not its preview: its
    passes (slowed here to land seconds after the last cell) are waited for before the kernel
    stops."""
    src = write_notebook(
        tmp_path / "deferred.ipynb",
        [
            "import time, torch, layerscope as ls\n"
            "from layerscope.widgets import heatmap as hm\n"
            "hm.TensorView._defer_above = 1000  # as for a tensor of more than 2**24 values\n"
            "_full_stats = hm._full_stats\n"
            "hm._full_stats = lambda t: (time.sleep(2), _full_stats(t))[1]\n"
            "v = ls.heatmap(torch.randn(64, 80))\n"
            "assert v.passes is not None and v._meta['stats']['sampled']\n"
            "v"
        ],
    )
    text = export_notebook(src, tmp_path / "deferred.html", execute=True).read_text()
    assert "application/vnd.jupyter.widget-view+json" in text
    state = page_state(text)
    assert '"sampled"' not in state and '"agg": "mean"' in state
    assert "resend_settled" not in text  # the extra cell is not in the page
    assert len(nbformat.read(src, as_version=4).cells) == 1
