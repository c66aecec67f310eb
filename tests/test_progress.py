"""The dataset pass's progress bar: in a notebook one display output that ends as a summary line
(never a frozen bar in a stderr box); in a script tqdm's bar on stderr."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent

CODE = """
import torch, layerscope as ls
from torch import nn
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
col = ls.inspect.collect(model, torch.randn(300, 4), layers=["1"], batch_size=7)
print(col.n)
"""


def test_in_a_notebook_the_bar_ends_as_one_summary_line() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CODE)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert [o.get("name") for o in outputs if o.output_type == "stream"] == ["stdout"], outputs
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1, outputs
    text = shown[0]["data"]["text/plain"]
    assert text.startswith("layerscope collect: 300 samples in "), text
    assert "stopped" not in text
    assert outputs[-1]["text"].strip() == "300"


def test_in_a_script_the_bar_is_on_stderr() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )
    assert done.stdout.strip() == "300"
    # tqdm redraws at most every 0.1 s: a fast pass may show only its start before it clears.
    assert "layerscope collect" in done.stderr and "/300" in done.stderr
