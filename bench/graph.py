"""Layer graph benchmark: trace time of ``ls.inspect.trace`` vs torchview vs ``torch.fx``.

Models of about 100, 1,000 and 10,000 traced ops, two families (from ``tests/zoo.py``):

- ``gpt``: the nanoGPT-style transformer (per-head attention modules, ~200 ops a block;
  48 blocks make the 10,000-op model of issue 3). ``torch.fx`` cannot trace it (the causal
  mask ``tril[:t, :t]`` slices by a traced size), which the table says.
- ``resnet``: a stack of ResNet basic blocks (7 ops a block), which ``torch.fx`` can trace.

For each model, in the same run and interleaved (ours, torchview, fx, ours, ...) so that load
from other processes hits all alike, it times:

- ``layerscope``: ``trace(model, x)``, the whole call (hooks, the pass, graph build);
- ``torchview``: ``draw_graph(model, input_data=..., graph_name=..., depth=inf,
  expand_nested=True, save_graph=False)``: graph building only, no Graphviz rendering;
- ``fx``: ``torch.fx.symbolic_trace(model)`` where it can trace.

and prints the median wall and CPU seconds and the node count each tool reports (CPU time is
the fairer figure while other jobs load the machine). Tensors are tiny and torch
runs on one thread: the numbers are tracing overhead, not arithmetic.

    PYTHONPATH=python .venv/bin/python bench/graph.py            # ~1 minute
    PYTHONPATH=python .venv/bin/python bench/graph.py --quick    # 100 and 1,000 ops, 1 run
    PYTHONPATH=python .venv/bin/python bench/graph.py --zoo      # the real architectures

``--zoo`` (issue 12) times instead, on every Hugging Face model of ``tests/hf_zoo.py`` (tiny
configs, random weights, nothing downloaded), ``trace`` vs torchview's ``draw_graph`` with the
model's keyword arguments (torchview's failures are listed as such, with their error), and then
``torch.compile``d models traced twice: the first and second trace against the same model
uncompiled, and how many graphs Dynamo compiled during the traces (it compiled our recorder
code anew on every trace before ``trace`` unwrapped ``_orig_mod``).

The measurements are functions taking ``(make, repeat)`` and returning a :class:`Measured`;
:data:`MEASUREMENTS` lists the columns, so a browser time-to-first-render measurement can be
added as one more entry.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the model zoo lives with the tests
import zoo  # noqa: E402
from layerscope.inspect import trace  # noqa: E402

Make = Callable[[], tuple[nn.Module, tuple[Any, ...]]]


@dataclass
class Measured:
    """Wall and CPU seconds per run (empty if the tool failed), its node count, or why it failed.

    CPU time is this process's: with other jobs on the machine, wall time also holds waiting.
    """

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    nodes: int | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def median_cpu(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None

    def add(self, timed: tuple[float, float]) -> None:
        self.seconds.append(timed[0])
        self.cpu.append(timed[1])


@dataclass
class Case:
    family: str
    target_ops: int
    make: Make


# -- models --


class ResStack(nn.Module):
    """``blocks`` ResNet basic blocks (8 channels) in a row: 7 traced ops a block."""

    def __init__(self, blocks: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[zoo.BasicBlock(8, 8) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def make_resnet(blocks: int) -> Make:
    def make() -> tuple[nn.Module, tuple[Any, ...]]:
        torch.manual_seed(0)
        return ResStack(blocks).eval(), (torch.randn(2, 8, 8, 8),)

    return make


def make_gpt(blocks: int, heads: int) -> Make:
    def make() -> tuple[nn.Module, tuple[Any, ...]]:
        return zoo.make_gpt(blocks, heads)

    return make


def cases(quick: bool) -> list[Case]:
    out = [
        Case("gpt", 100, make_gpt(1, 7)),
        Case("gpt", 1_000, make_gpt(5, 16)),
        Case("gpt", 10_000, make_gpt(48, 16)),
        Case("resnet", 100, make_resnet(14)),
        Case("resnet", 1_000, make_resnet(143)),
        Case("resnet", 10_000, make_resnet(1_428)),
    ]
    return [c for c in out if not (quick and c.target_ops > 1_000)]


# -- measurements: one function a column --


def _timed(fn: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """``((wall seconds, CPU seconds), result)``."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - t0, time.process_time() - c0), result


def measure_layerscope(make: Make, into: Measured) -> None:
    model, inputs = make()
    seconds, graph = _timed(lambda: trace(model, *inputs))
    into.add(seconds)
    into.nodes = graph.summary["nodes"]


def measure_torchview(make: Make, into: Measured) -> None:
    from torchview import draw_graph

    model, inputs = make()
    seconds, cg = _timed(
        lambda: draw_graph(
            model,
            input_data=list(inputs),
            graph_name="bench",
            depth=float("inf"),
            expand_nested=True,
            save_graph=False,
        )
    )
    into.add(seconds)
    # Graphviz body lines holding "->" are edges; the rest with "[" are node statements.
    into.nodes = sum(1 for line in cg.visual_graph.body if "[" in line and "->" not in line)


def measure_fx(make: Make, into: Measured) -> None:
    model, _ = make()
    try:
        seconds, gm = _timed(lambda: torch.fx.symbolic_trace(model))
    except Exception as exc:  # fx cannot trace every model: say why, measure the rest
        into.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
        return
    into.add(seconds)
    into.nodes = len(gm.graph.nodes)


MEASUREMENTS: dict[str, Callable[[Make, Measured], None]] = {
    "layerscope": measure_layerscope,
    "torchview": measure_torchview,
    "fx": measure_fx,
}


# -- the zoo of real architectures (issue 12) --


def zoo_rows(repeat: int) -> list[tuple[str, str, Measured, Measured]]:
    """(name, family, ours, torchview) for each Hugging Face model of tests/hf_zoo.py."""
    import warnings

    import hf_zoo

    rows = []
    for name, case in hf_zoo.CASES.items():
        if not case.hf:
            continue
        print(f"zoo {name} ...", file=sys.stderr, flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, args, kwargs = case.build()
            ours, theirs = Measured(), Measured()
            for _ in range(repeat):  # interleaved
                seconds, graph = _timed(partial(trace, model, *args, **kwargs))
                ours.add(seconds)
                ours.nodes = graph.summary["nodes"]
                if theirs.error is None:
                    _torchview_kwargs(model, args, kwargs, theirs)
        rows.append((name, case.family, ours, theirs))
    return rows


def _torchview_kwargs(model: nn.Module, args: tuple, kwargs: dict, into: Measured) -> None:
    from torchview import draw_graph

    try:
        seconds, cg = _timed(
            lambda: draw_graph(
                model,
                input_data=list(args),
                graph_name="bench",
                depth=float("inf"),
                expand_nested=True,
                save_graph=False,
                **kwargs,
            )
        )
    except Exception as exc:  # torchview cannot trace every model: say why
        into.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:70] if str(exc) else ''}"
        return
    into.add(seconds)
    into.nodes = sum(1 for line in cg.visual_graph.body if "[" in line and "->" not in line)


def compiled_rows() -> list[dict[str, Any]]:
    """Each model compiled with torch.compile (inductor), then traced twice."""
    import warnings

    import torch._dynamo
    from torch._dynamo.utils import counters

    import hf_zoo

    def small_cnn() -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
        model, inputs = zoo.make_cnn()
        return model.eval(), inputs, {}

    def gpt() -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
        model, inputs = zoo.make_gpt(2, 4)
        return model, inputs, {}

    makers = {"cnn": small_cnn, "gpt 2 blocks": gpt, "bert (hf)": hf_zoo.bert}
    out = []
    for name, make in makers.items():
        print(f"compiled {name} ...", file=sys.stderr, flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, args, kwargs = make()
            (plain, _), _ = _timed(partial(trace, model, *args, **kwargs))
            (plain, _), _ = _timed(partial(trace, model, *args, **kwargs))  # warm
            torch._dynamo.reset()
            compiled = torch.compile(model)
            (compile_s, _), _ = _timed(partial(compiled, *args, **kwargs))
            before = counters["stats"]["unique_graphs"]
            (first, _), _ = _timed(partial(trace, compiled, *args, **kwargs))
            (second, _), _ = _timed(partial(trace, compiled, *args, **kwargs))
            graphs = counters["stats"]["unique_graphs"] - before
        out.append(
            {
                "model": name,
                "uncompiled": plain,
                "compile": compile_s,
                "first": first,
                "second": second,
                "new_graphs": graphs,
            }
        )
    return out


def format_zoo(rows: list[tuple[str, str, Measured, Measured]], comp: list[dict[str, Any]]) -> str:
    lines = [
        "| model | family | layerscope wall / cpu s (nodes) | torchview wall / cpu s (nodes) "
        "| torchview / ours (cpu) |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    failures = []
    for name, family, ours, theirs in rows:
        o = f"{ours.median:.4f} / {ours.median_cpu:.4f} ({ours.nodes})"
        if theirs.error is not None:
            t, r = "**fails**", ""
            failures.append(f"- {name}: torchview fails: `{theirs.error}`")
        else:
            t = f"{theirs.median:.4f} / {theirs.median_cpu:.4f} ({theirs.nodes})"
            ratio = (theirs.median_cpu or 0) / (ours.median_cpu or 1)
            ratios.append(ratio)
            r = f"{ratio:.1f}x"
        lines.append(f"| {name} | {family} | {o} | {t} | {r} |")
    if ratios:
        lines.append("")
        lines.append(
            f"torchview / layerscope CPU time, median over the models both trace: "
            f"{statistics.median(ratios):.1f}x"
        )
    lines += ["", *failures, ""]
    lines.append(
        "| torch.compile'd model | uncompiled trace s | compile (first call) s | first trace s "
        "| second trace s | graphs compiled by the traces |"
    )
    lines.append("|---|---|---|---|---|---|")
    for c in comp:
        lines.append(
            f"| {c['model']} | {c['uncompiled']:.4f} | {c['compile']:.2f} | {c['first']:.4f} "
            f"| {c['second']:.4f} | {c['new_graphs']} |"
        )
    return "\n".join(lines)


# -- the run --


def run_case(case: Case, repeat: int, columns: list[str]) -> dict[str, Measured]:
    results = {name: Measured() for name in columns}
    for _ in range(repeat):
        for name in columns:  # interleaved: background load hits every tool alike
            if results[name].error is None:
                MEASUREMENTS[name](case.make, results[name])
    return results


def format_table(rows: list[tuple[Case, dict[str, Measured]]], columns: list[str]) -> str:
    head = f"{'model':<8} {'~ops':>7} " + " ".join(
        f"{c + ' wall/cpu s':>22} {'nodes':>6}" for c in columns
    )
    lines = [head, "-" * len(head)]
    notes: list[str] = []
    for case, res in rows:
        cells = []
        for c in columns:
            m = res[c]
            if m.error is not None:
                cells.append(f"{'n/a':>22} {'':>6}")
                notes.append(f"{case.family} ~{case.target_ops}: {c} failed: {m.error}")
            else:
                timing = f"{m.median:.3f}/{m.median_cpu:.3f}"
                cells.append(f"{timing:>22} {m.nodes or 0:>6}")
        lines.append(f"{case.family:<8} {case.target_ops:>7} " + " ".join(cells))
    ours = "layerscope"
    if ours in columns:
        lines.append("")
        for case, res in rows:
            for c in columns:
                if c != ours and res[c].median and res[ours].median:
                    lines.append(
                        f"{case.family} ~{case.target_ops}: {c} / layerscope = "
                        f"{res[c].median / res[ours].median:.1f}x wall, "
                        f"{(res[c].median_cpu or 0) / (res[ours].median_cpu or 1):.1f}x cpu"
                    )
    return "\n".join([*lines, "", *notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 ops only, one run each")
    parser.add_argument(
        "--zoo",
        action="store_true",
        help="the real architectures of tests/hf_zoo.py vs torchview, and compiled models",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and model (median)")
    parser.add_argument(
        "--columns", default=",".join(MEASUREMENTS), help="comma-separated measurements"
    )
    parser.add_argument(
        "--json", type=Path, help="also write the results here (bench/results/ is git-ignored)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    columns = [c for c in args.columns.split(",") if c]
    unknown = [c for c in columns if c not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown columns {unknown}; choose from {list(MEASUREMENTS)}")
    repeat = 1 if args.quick else args.repeat
    if args.zoo:
        zrows = zoo_rows(repeat)
        comp = compiled_rows()
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, median of {repeat}")
        print(format_zoo(zrows, comp))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            data = {
                "zoo": [
                    {"model": n, "family": f, "ours": vars(o), "torchview": vars(t)}
                    for n, f, o, t in zrows
                ],
                "compiled": comp,
            }
            args.json.write_text(json.dumps(data, indent=1))
        return 0

    rows = []
    for case in cases(args.quick):
        print(f"{case.family} ~{case.target_ops} ops ...", file=sys.stderr, flush=True)
        rows.append((case, run_case(case, repeat, columns)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, median of {repeat} run(s)")
    print(format_table(rows, columns))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = [
            {
                "family": case.family,
                "target_ops": case.target_ops,
                **{
                    c: {
                        "seconds": m.seconds,
                        "cpu": m.cpu,
                        "median": m.median,
                        "median_cpu": m.median_cpu,
                        "nodes": m.nodes,
                        "error": m.error,
                    }
                    for c, m in res.items()
                },
            }
            for case, res in rows
        ]
        args.json.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
