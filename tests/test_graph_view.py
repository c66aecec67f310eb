"""ls.graph on the kernel side: the compact baked graph, traits, bad inputs, and the example
notebook executed end to end (nbclient) so that it cannot rot."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

import layerscope as ls
import zoo
from layerscope.widgets.graph import (
    COMPACT_SCHEMA,
    _node_paths,
    compact_graph,
    compact_traced,
    params_overlay,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent

MAKERS = [
    zoo.make_mlp,
    zoo.make_cnn,
    zoo.make_resnet,
    zoo.make_lstm,
    zoo.make_transformer,
    zoo.make_shared,
    zoo.make_functional,
    lambda: zoo.make_gpt(2, 2),
]


def traced(make):  # type: ignore[no-untyped-def]
    made = make()
    model, inputs = made[0], made[1]
    kwargs = made[2] if len(made) > 2 else {}
    return ls.inspect.trace(model, *inputs, **kwargs).to_dict()


@pytest.mark.parametrize("make", MAKERS)
def test_compact_graph_keeps_every_path_edge_and_shape(make) -> None:  # type: ignore[no-untyped-def]
    d = traced(make)
    c = compact_graph(d)
    assert c["schema"] == COMPACT_SCHEMA
    assert _node_paths(c) == [n["path"] for n in d["nodes"]]
    flat = [v for e in d["edges"] for v in (e["src"], e["dst"], e["out"], e["in"])]
    assert c["edges"] == flat
    tensors = c["tensors"]
    for i, n in enumerate(d["nodes"]):
        assert [tensors[t] for t in c["nodes"]["ins"][i]] == n["inputs"]
        assert [tensors[t] for t in c["nodes"]["outs"][i]] == n["outputs"]
        assert c["names"][c["nodes"]["name"][i]] == n["name"]
    for e in d["edges"]:  # the edge label is the source's output tensor
        shape, dtype = tensors[c["nodes"]["outs"][e["src"]][e["out"]]]
        assert (shape, dtype) == (e["shape"], e["dtype"])
    gp = c["groups"]["path"]
    for i, g in enumerate(d["groups"]):
        parent = c["groups"]["parent"][i]
        assert (gp[parent] if parent >= 0 else None) == g["parent"]
    json.dumps(c, allow_nan=False)


@pytest.mark.parametrize("make", MAKERS)
def test_compact_traced_equals_compact_graph_of_to_dict(make) -> None:  # type: ignore[no-untyped-def]
    """The graph views compact the Graph straight (no to_dict): the same state, to the byte."""
    made = make()
    kwargs = made[2] if len(made) > 2 else {}
    g = ls.inspect.trace(made[0], *made[1], **kwargs)
    d = g.to_dict()
    assert json.dumps(compact_traced(g)) == json.dumps(compact_graph(d))
    assert params_overlay(g) == params_overlay(d)


def test_compact_graph_is_several_times_smaller() -> None:
    d = traced(lambda: zoo.make_gpt(5, 16))
    full = len(json.dumps(d, separators=(",", ":")))
    small = len(json.dumps(compact_graph(d), separators=(",", ":")))
    assert small * 4 < full, (small, full)


def test_graph_returns_a_view_with_baked_state_that_round_trips() -> None:
    model, (x,) = zoo.make_resnet()
    g = ls.graph(model, x)
    assert isinstance(g, ls.GraphView)
    assert g._graph["summary"]["model"] == "TinyResNet"
    assert g.graph.summary["nodes"] == len(g._graph["nodes"]["kind"])
    assert g.expanded is None and g.selected == "" and g.overlay == {}
    state = g.get_state()
    json.dumps({k: v for k, v in state.items() if k != "_esm"}, allow_nan=False)
    assert "layer1.0.conv1" in g.paths() and "layer1" in g.paths()
    # The graph goes over the wire as its JSON text (ipywidgets does not walk a string for
    # buffers); Python keeps the dict, and the text sets it back.
    assert isinstance(state["_graph"], str) and json.loads(state["_graph"]) == g._graph
    other = ls.GraphView()
    other.set_state({"_graph": state["_graph"]})
    assert other._graph == g._graph


def test_selected_is_observable_and_settable_from_python() -> None:
    model, (x,) = zoo.make_mlp()
    g = ls.graph(model, x)
    seen: list[str] = []
    g.observe(lambda c: seen.append(c["new"]), names="selected")
    g.selected = "net.0"
    g.set_state({"selected": "net.2"})  # what a click in the view does
    assert seen == ["net.0", "net.2"]


def test_overlay_params_and_custom_overlays() -> None:
    model, (x,) = zoo.make_cnn()
    g = ls.graph(model, x, overlay="params")
    assert g.overlay["features.0"] == 4 * 1 * 9 + 4
    assert g.overlay["head"] == 32 * 10 + 10
    assert g.overlay[""] == sum(p.numel() for p in model.parameters())
    assert g.overlay_label == "parameters"
    g.overlay = {"head": torch.tensor(0.5), "features.0": float("nan"), "features.1": 3}
    assert g.overlay == {"head": 0.5, "features.0": "nan", "features.1": 3.0}
    with pytest.raises(TypeError, match="must be a number"):
        g.overlay = {"head": "big"}
    with pytest.raises(TypeError, match="module paths"):
        g.overlay = {1: 2.0}
    with pytest.raises(ValueError, match="not built in"):
        ls.graph(model, x, overlay="latency")
    custom = ls.graph(model, x, overlay={"head": 1.0})
    assert custom.overlay == {"head": 1.0} and custom.overlay_label == "overlay"


def test_depth_opens_groups_above_that_level() -> None:
    model, (x,) = zoo.make_resnet()
    g = ls.graph(model, x, depth=2)
    assert set(g.expanded) == {"", "layer1", "layer2"}
    with pytest.raises(ValueError, match="depth must be a positive int"):
        ls.graph(model, x, depth=0)


def test_not_a_module_says_what_to_pass() -> None:
    with pytest.raises(TypeError, match=r"nn\.Module"):
        ls.graph(lambda t: t * 2, torch.randn(2))  # type: ignore[arg-type]


def test_errors_in_forward_name_the_module_path() -> None:
    with pytest.raises(Exception, match="fail") as info:
        ls.graph(zoo.Raising().eval(), torch.randn(2, 4))
    assert "deliberate failure" in str(info.value) or "deliberate failure" in str(
        info.value.__cause__
    )
    model, _ = zoo.make_mlp()
    with pytest.raises(Exception, match=r"net\.0"):
        ls.graph(model, torch.randn(4, 5))  # wrong width for the first Linear


def test_html_name_and_zero_params_stay_plain_data() -> None:
    g = ls.graph(zoo.HtmlNamed(), torch.randn(2, 3))
    assert zoo.HTML_NAME in g.paths()
    z = ls.graph(zoo.ZeroParams(), torch.randn(2, 4, 6), overlay="params")
    assert z._graph["summary"]["params"] == 0 and z.overlay == {}


def test_model_comes_back_unchanged() -> None:
    model, (x,) = zoo.make_cnn()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ls.graph(model, x)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training


def test_bad_height() -> None:
    model, (x,) = zoo.make_mlp()
    with pytest.raises(Exception, match="at least 150"):
        ls.graph(model, x, height=10)


def test_example_notebook_runs() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / "graph.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    last = nb.cells[-1].outputs[-1]["data"]["text/plain"]
    assert last == "'head.weight'"


def test_graph_leaves_ls_inspect_trace_a_function() -> None:
    model, (x,) = zoo.make_mlp()
    ls.graph(model, x)
    assert callable(ls.inspect.trace)
