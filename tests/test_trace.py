"""``layerscope.inspect.trace``: structure of the graph, the model given back as it was, bad inputs."""

from __future__ import annotations

import copy
import json
import resource
import time
from typing import Any

import pytest
import torch
from torch import nn

import zoo
from layerscope.inspect import Graph, trace
from layerscope.inspect.trace import TraceError

_HOOK_ATTRS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


# -- helpers --


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything trace promises to give back: state (params + buffers), flags, grads."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
    }


def assert_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
    after = snapshot(model)
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), f"{k} changed"
    assert before["training"] == after["training"]
    assert before["requires_grad"] == after["requires_grad"]
    assert all(g is None for g in after["grads"])
    for m in model.modules():
        for attr in _HOOK_ATTRS:
            assert len(getattr(m, attr, {})) == 0, f"{type(m).__name__}.{attr} left behind"
    assert torch._C._len_torch_function_stack() == 0, "a TorchFunctionMode is still active"


def edges_into(g: Graph, node_id: int) -> list[tuple[str, str]]:
    """(kind, name) of the producers of each argument of ``node_id``, in argument order."""
    return [(g.nodes[e.src].kind, g.nodes[e.src].name) for e in g.in_edges(node_id)]


def only(nodes: list[Any]) -> Any:
    assert len(nodes) == 1, nodes
    return nodes[0]


def chain(g: Graph) -> list[str]:
    """The names along the unique path of a chain-shaped graph, input to output."""
    names = []
    node = only(g.find(kind="input"))
    while True:
        names.append(node.name)
        nxt = g.successors(node)
        if not nxt:
            return names
        node = only(nxt)


# -- structure --


def test_mlp_is_a_chain_from_input_to_output():
    model, (x,) = zoo.make_mlp()
    g = trace(model, x)
    assert chain(g) == ["x", "Linear", "ReLU", "Linear", "ReLU", "Linear", "output"]
    lin = g.find(path="net.0")[0]
    assert lin.kind == "module" and lin.group == "net" and lin.call == 0
    assert lin.params == 8 * 16 + 16 and lin.param_shapes == {"weight": (16, 8), "bias": (16,)}
    assert [tuple(s) for s, _ in lin.inputs] == [(4, 8)] and [tuple(s) for s, _ in lin.outputs] == [
        (4, 16)
    ]
    assert g.summary["params"] == sum(p.numel() for p in model.parameters()) == 144 + 272 + 51
    assert [gr.path for gr in g.groups] == ["", "net"] and g.group("").children == ["net"]
    assert g.summary["ops"] == 0 and g.summary["module_calls"] == 5


def test_residual_add_has_two_inputs_skip_and_main_path():
    model, (x,) = zoo.make_resnet()
    g = trace(model, x)
    adds = g.find("add", kind="function")
    assert [a.group for a in adds] == ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]
    # layer1.0: main path ends in bn2, the skip is the block's input (the stem's output)
    assert edges_into(g, adds[0].id) == [("module", "BatchNorm2d"), ("module", "Conv2d")]
    assert g.nodes[g.in_edges(adds[0].id)[1].src].path == "stem"
    # layer2.0 projects the skip: the second input comes from downsample.1
    assert g.nodes[g.in_edges(adds[2].id)[1].src].path == "layer2.0.downsample.1"
    # relu(inplace=True) after the add: its node writes into its input, and the next block
    # reads the tensor from the ReLU
    relu = g.find(path="layer1.0.relu")
    assert len(relu) == 2 and [r.call for r in relu] == [0, 1] and all(r.inplace for r in relu)
    assert g.nodes[g.in_edges(g.find(path="layer1.1.conv1")[0].id)[0].src].id == relu[1].id
    assert g.shared["layer1.0.relu"] == 2
    # two BasicBlocks in layer1 are identical; layer2's first one has a downsample: no repeat
    assert [(r.parent, r.paths, r.label) for r in g.repeats] == [
        ("layer1", ["layer1.0", "layer1.1"], "BasicBlock x2")
    ]


def test_cat_has_one_input_per_tensor_and_functional_ops_are_nodes():
    model, (x,) = zoo.make_functional()
    g = trace(model, x)
    names = [n.name for n in g.nodes if n.kind == "function"]
    assert names == [
        "matmul",
        "relu",
        "chunk",
        "mul",
        "cat",
        "view",
        "getitem",
        "T",
        "matmul",
        "softmax",
    ]
    cat = only(g.find("cat"))
    assert edges_into(g, cat.id) == [
        ("function", "mul"),
        ("function", "chunk"),
        ("function", "chunk"),
    ]
    assert [e.out for e in g.in_edges(cat.id)] == [0, 0, 1]  # a and b are chunk outputs 0 and 1
    assert len(cat.inputs) == 3 and tuple(cat.outputs[0][0]) == (3, 9)
    first = g.find("matmul")[0]
    # x @ w1: x comes from the input node, w1 is a parameter (listed, no edge)
    assert len(first.inputs) == 2 and edges_into(g, first.id) == [("input", "x")]
    assert first.path == ":matmul" and first.group == "" and g.find("matmul")[1].call == 1
    assert g.summary["params"] == 84 and [gr.path for gr in g.groups] == [""]  # root: a group


def test_shared_module_has_two_calls_and_tied_weights_are_listed():
    model, (tokens,) = zoo.make_shared()
    g = trace(model, tokens)
    enc = g.find(path="enc")
    assert [n.call for n in enc] == [0, 1] and g.shared == {"enc": 2}
    assert edges_into(g, enc[1].id) == [("function", "relu")]
    assert g.nodes[g.in_edges(g.find("relu")[0].id)[0].src].id == enc[0].id
    assert g.tied == [["embed.weight", "head.weight"]]
    d = g.to_dict()
    assert [n["calls"] for n in d["nodes"] if n["path"] == "enc"] == [2, 2]
    assert d["shared"] == [{"path": "enc", "calls": 2}]


def test_lstm_tuple_outputs_are_indexed():
    model, (tokens,) = zoo.make_lstm()
    g = trace(model, tokens)
    lstm = only(g.find(path="lstm"))
    assert [tuple(s) for s, _ in lstm.outputs] == [(2, 5, 12), (1, 2, 12), (1, 2, 12)]
    assert lstm.params == sum(p.numel() for p in model.lstm.parameters())
    getitems = g.find("getitem")
    # seq[:, -1] reads output 0 of the LSTM, h[0] reads output 1
    assert [(e.src, e.out) for gi in getitems for e in g.in_edges(gi.id)] == [
        (lstm.id, 0),
        (lstm.id, 1),
    ]
    assert tuple(only(g.find(kind="input")).outputs[0][0]) == (2, 5)
    assert only(g.find(kind="input")).outputs[0][1] == torch.int64


def test_transformer_encoder_layers_fold_as_a_repeat():
    model, (x,) = zoo.make_transformer(layers=3)
    g = trace(model, x)
    assert [(r.parent, r.label) for r in g.repeats] == [("layers", "TransformerEncoderLayer x3")]
    mha = g.find("multi_head_attention_forward")
    assert [n.group for n in mha] == [
        "layers.0.self_attn",
        "layers.1.self_attn",
        "layers.2.self_attn",
    ]
    assert g.group("layers").cls == "ModuleList" and g.group("layers").calls == []
    assert g.group("layers.1").parent == "layers"
    assert len(g.group("").calls) == 1 and tuple(g.group("").calls[0][1][0][0]) == (2, 5, 16)
    # every node of layer 1 is inside its group; the residual adds are layer ops
    assert sum(1 for n in g.walk("layers.1") if n.name == "add") == 2


def test_data_dependent_control_flow_records_the_branch_taken():
    model = zoo.Branchy()
    g_pos = trace(model, torch.ones(1, 4))
    g_neg = trace(model, -torch.ones(1, 4))  # |sum| = 4 -> 4 % 3 + 1 = 2 passes through neg
    assert [n.path for n in g_pos.nodes if n.kind == "module"] == ["pos"]
    assert [n.path for n in g_neg.nodes if n.kind == "module"] == ["neg.0", "neg.1"] * 2
    assert g_neg.shared == {"neg.0": 2, "neg.1": 2, "neg": 2}
    assert g_neg.find(path="neg.0")[1].call == 1
    assert [n.group_call for n in g_neg.find(path="neg.1")] == [0, 1]
    assert len(g_neg.group("neg").calls) == 2


def test_a_block_applied_twice_keeps_its_calls_apart():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.lin(x)

    class Albert(nn.Module):  # one block's weights used for every layer
        def __init__(self) -> None:
            super().__init__()
            self.block = Block()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(self.block(x))

    g = trace(Albert(), torch.randn(2, 4))
    adds = g.find("add")
    assert [(a.group, a.call, a.group_call) for a in adds] == [("block", 0, 0), ("block", 1, 1)]
    assert [(n.call, n.group_call) for n in g.find(path="block.lin")] == [(0, 0), (1, 1)]
    assert g.shared == {"block.lin": 2, "block": 2}
    assert edges_into(g, adds[1].id) == [("function", "add"), ("module", "Linear")]


def test_positional_keyword_dict_inputs_and_nested_outputs():
    model, (batch,), kwargs = zoo.make_dict_io()
    g = trace(model, batch, **kwargs)
    assert [n.name for n in g.find(kind="input")] == ["batch['left']", "batch['right']", "mask"]
    assert [n.name for n in g.find(kind="output")] == [
        "output['sum']",
        "output['parts'][0]",
        "output['parts'][1]",
    ]
    out_sum = g.find(kind="output")[0]
    assert edges_into(g, out_sum.id) == [("function", "mul")]
    last_mul = g.find("mul")[-1]
    assert edges_into(g, last_mul.id) == [("function", "mul"), ("input", "mask")]
    assert edges_into(g, g.find(path="a")[0].id) == [("input", "batch['left']")]


@pytest.mark.parametrize(
    ("kind", "labels"),
    [
        ("tensor", ["output"]),
        ("tuple", ["output[0]", "output[1]"]),
        ("list", ["output[0]", "output[1][0]"]),
        ("dict", ["output['logits']", "output['hidden']"]),
        ("dataclass", ["output.logits", "output.hidden"]),
        ("model_output", ["output.logits", "output.last_hidden_state"]),
        ("none", []),
    ],
)
def test_output_kinds(kind: str, labels: list[str]):
    model = zoo.OutputKinds(kind)
    g = trace(model, torch.randn(3, 4))
    outs = g.find(kind="output")
    assert [o.name for o in outs] == labels
    producers = {
        "output": "head",
        "output[0]": "head",
        "output['logits']": "head",
        "output.logits": "head",
    }
    for o in outs:
        (src,) = g.predecessors(o)
        assert src.path == producers.get(o.name, ":tanh")
    json.dumps(g.to_dict())


def test_in_place_ops_and_freed_tensor_ids_give_the_right_edges():
    class InPlace(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.lin(x)
            y += x  # in place: later readers of y read the add_
            for i in range(30):  # temporaries freed at once: their ids get reused
                t = y * i
            y[:, 0] = 0.0  # setitem writes into y
            return torch.relu_(y) + t

    g = trace(InPlace(), torch.randn(2, 4))
    iadd = only(g.find("add_"))
    assert iadd.inplace and edges_into(g, iadd.id) == [("module", "Linear"), ("input", "x")]
    muls = g.find("mul")
    assert len(muls) == 30 and all(edges_into(g, m.id) == [("function", "add_")] for m in muls)
    setitem = only(g.find("setitem"))
    assert setitem.inplace and edges_into(g, setitem.id) == [("function", "add_")]
    relu = only(g.find("relu_"))
    assert edges_into(g, relu.id) == [("function", "setitem")]
    add = only(g.find("add"))
    # the last temporary only: none of the 29 freed ones (whose ids were reused) is linked
    assert [(g.nodes[e.src].name, g.nodes[e.src].call) for e in g.in_edges(add.id)] == [
        ("relu_", 0),
        ("mul", 29),
    ]
    assert all(not g.out_edges(m.id) for m in muls[:29])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_pass_through_is_not_in_place_and_scripted_submodules_do_not_break_trace():
    class PassThrough(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ident = nn.Identity()
            self.drop = nn.Dropout(0.5)
            self.scripted = torch.jit.script(nn.Linear(3, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.scripted(self.drop(self.ident(x)).contiguous())

    g = trace(PassThrough().eval(), torch.randn(2, 3))
    assert [(n.name, n.inplace) for n in g.nodes if n.kind in ("module", "function")] == [
        ("Identity", False),
        ("Dropout", False),
        ("contiguous", False),
    ]
    assert edges_into(g, g.find("contiguous")[0].id) == [("module", "Dropout")]
    assert len(g.find(kind="output")) == 1  # the scripted Linear is invisible, not an error


def test_a_freed_tensors_id_reused_by_an_unrecorded_tensor_gives_no_edge():
    class Side(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            freed = id(self.tmp)
            del self.tmp  # the last reference to a recorded tensor: its id is free again
            self.side = x * 3  # made inside a leaf: no recorded producer; CPython reuses the id
            self.reused = id(self.side) == freed
            return x

    class Reuse(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.leaf = Side()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.leaf.tmp = x + 1
            y = self.leaf(x)
            return self.leaf.side * y

    model = Reuse()
    reused = 0
    for _ in range(5):
        g = trace(model, torch.randn(2))
        reused += model.leaf.reused
        assert edges_into(g, only(g.find("mul")).id) == [("module", "Side")]
        assert g.in_edges(only(g.find("mul")).id)[0].inp == 1
    assert reused > 0, "the id was never reused: this test checked nothing"


def test_iterating_a_tensor_is_an_unbind():
    class Rows(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([row * 2 for row in x])

    g = trace(Rows(), torch.randn(3, 2))
    unbind = only(g.find("unbind"))
    assert len(unbind.outputs) == 3
    stack = only(g.find("stack"))
    assert [g.nodes[e.src].name for e in g.in_edges(stack.id)] == ["mul"] * 3


def test_html_module_name_is_kept_as_plain_text():
    model = zoo.HtmlNamed()
    g = trace(model, torch.randn(2, 3))
    node = g.find(path=zoo.HTML_NAME)[0]
    assert node.name == "Linear" and node.group == ""
    text = json.dumps(g.to_dict())
    assert json.loads(text)["nodes"][1]["path"] == "<img src=x onerror=alert(1)>"
    assert "&lt;" not in text  # escaping is the view's job, not the data's


def test_zero_parameter_model():
    model = zoo.ZeroParams()
    g = trace(model, torch.randn(2, 3, 8))
    assert g.summary["params"] == 0 and chain(g) == ["x", "GELU", "AvgPool1d", "mul", "output"]
    assert g.find(path="act")[0].params == 0 and g.find(path="act")[0].param_shapes == {}


def test_repeats_need_same_internal_structure():
    class Odd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.shape[-1] == 8 else x - 1

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), Odd()) for _ in range(5)])
            self.blocks[2] = nn.Sequential(nn.Linear(8, 8), nn.Sequential(Odd(), nn.Identity()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for b in self.blocks:
                x = b(x)
            return x

    g = trace(Stack(), torch.randn(2, 8))
    assert [(r.paths, r.label) for r in g.repeats] == [
        (["blocks.0", "blocks.1"], "Sequential x2"),
        (["blocks.3", "blocks.4"], "Sequential x2"),
    ]


# -- the model comes back as it was --


@pytest.mark.parametrize("train", [True, False])
def test_outputs_buffers_flags_unchanged_batchnorm_in_both_modes(train: bool):
    model, (x,) = zoo.make_cnn()
    with torch.no_grad():
        model(x)  # non-default running stats
    model.train(train)
    model.features[1].eval()  # mixed flags must come back mixed
    for p in model.head.parameters():
        p.requires_grad_(False)
    twin = copy.deepcopy(model)
    before = snapshot(model)
    rng = torch.get_rng_state()
    g = trace(model, x)
    assert torch.equal(torch.get_rng_state(), rng)
    assert_unchanged(model, before)
    assert g.summary["training"] is train
    with torch.no_grad():
        assert torch.equal(model(x), twin(x))  # also in train mode: same stats, same batch
    assert g.summary["params"] == sum(p.numel() for p in model.parameters())
    assert g.summary["trainable_params"] == g.summary["params"] - (32 * 10 + 10)
    bn = g.find(path="features.1")[0]
    assert bn.name == "BatchNorm2d" and bn.param_shapes == {"weight": (4,), "bias": (4,)}


def test_outputs_bit_identical_after_trace_with_dropout_in_train_mode():
    model, (x,) = zoo.make_transformer()
    model.train()
    state = torch.get_rng_state()
    with torch.no_grad():
        expected = model(x)
    torch.set_rng_state(state)
    trace(model, x)  # consumes dropout randomness, then gives the RNG state back
    with torch.no_grad():
        got = model(x)
    assert torch.equal(expected, got)


def test_grads_kept_and_none_added():
    model, (x,) = zoo.make_mlp()
    model(x).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    grad_objs = [p.grad for p in model.parameters()]
    trace(model, x)
    assert all(p.grad is g for p, g in zip(model.parameters(), grad_objs, strict=True))
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))


def test_user_hooks_kept_and_ours_removed():
    model, (x,) = zoo.make_mlp()
    calls: list[str] = []
    h = model.net[0].register_forward_hook(lambda m, i, o: calls.append("user"))
    trace(model, x)
    assert calls == ["user"]
    assert len(model.net[0]._forward_hooks) == 1 and len(model.net[1]._forward_hooks) == 0
    h.remove()


# -- bad inputs --


def test_model_that_raises_names_the_module_and_leaves_no_hooks():
    model = zoo.Raising()
    model.train()
    before = snapshot(model)
    with pytest.raises(TraceError) as info:
        trace(model, torch.randn(2, 4))
    err = info.value
    msg = str(err)
    assert "ValueError: deliberate failure for the test" in msg
    assert "in module 'fail' (Fails)" in msg and "float32[2, 4]" in msg
    assert (
        err.path == "fail"
        and isinstance(err.__cause__, ValueError)
        and err.original is err.__cause__
    )
    assert_unchanged(model, before)  # BN in train mode ran before the failure: stats restored
    g = trace(model, torch.randn(3, 4))  # and the model still traces afterwards
    assert g.summary["module_calls"] == 3


def test_wrong_input_shape_names_the_leaf_and_op():
    model, _ = zoo.make_mlp()
    before = snapshot(model)
    with pytest.raises(
        TraceError, match=r"in module 'net\.0' \(Linear\): RuntimeError: mat1 and mat2"
    ) as info:
        trace(model, torch.randn(4, 5))
    assert info.value.path == "net.0" and isinstance(info.value.__cause__, RuntimeError)
    assert_unchanged(model, before)


def test_failing_op_in_a_container_names_the_op():
    model, _ = zoo.make_functional()
    with pytest.raises(TraceError, match=r"in the root module \(AllFunctional\), op 'matmul'"):
        trace(model, torch.randn(3, 7))


def test_missing_argument_is_a_trace_error_at_the_root():
    model, _ = zoo.make_mlp()
    with pytest.raises(TraceError, match=r"root module \(MLP\): TypeError: .*forward\(\) missing"):
        trace(model)


def test_non_module_is_a_type_error():
    with pytest.raises(TypeError, match=r"must be a torch\.nn\.Module"):
        trace(lambda x: x, torch.randn(2))  # type: ignore[arg-type]


# -- devices --


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def test_meta_device_uses_no_memory_for_weights():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(50_000, 50_000), nn.ReLU(), nn.Linear(50_000, 10))
        x = torch.randn(4, 50_000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss = _rss_bytes()
    g = trace(model, x)
    assert _rss_bytes() - rss < 200e6  # 10 GB of float32 weights if anything materialised
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak < 200e6
    assert (
        g.summary["params"] == 50_000 * 50_000 + 50_000 + 500_010 and g.summary["device"] == "meta"
    )
    assert [tuple(s) for s, _ in g.nodes[-1].inputs] == [(4, 10)]
    assert chain(g) == ["input", "Linear", "ReLU", "Linear", "output"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_model_traces_and_keeps_cuda_rng():
    model, (x,) = zoo.make_transformer()
    model = model.cuda().train()
    x = x.cuda()
    state = torch.cuda.get_rng_state()
    g = trace(model, x)
    assert torch.equal(torch.cuda.get_rng_state(), state)
    assert g.summary["device"].startswith("cuda") and len(g.repeats) == 1


# -- JSON and scale --


def test_to_dict_schema_and_json():
    model, (x,) = zoo.make_resnet()
    d = json.loads(json.dumps(trace(model, x).to_dict()))
    assert d["schema"] == "layerscope.graph/1"
    assert set(d) == {"schema", "summary", "nodes", "edges", "groups", "repeats", "shared", "tied"}
    node = next(n for n in d["nodes"] if n["path"] == "layer1.0.conv1")
    assert node == {
        "id": node["id"],
        "kind": "module",
        "path": "layer1.0.conv1",
        "name": "Conv2d",
        "group": "layer1.0",
        "call": 0,
        "group_call": 0,
        "inputs": [[[2, 8, 8, 8], "float32"]],
        "outputs": [[[2, 8, 8, 8], "float32"]],
        "params": 576,
        "param_shapes": {"weight": [8, 8, 3, 3]},
        "calls": 1,
        "inplace": False,
    }
    edge = next(e for e in d["edges"] if e["dst"] == node["id"])
    assert edge == {
        "src": edge["src"],
        "dst": node["id"],
        "out": 0,
        "in": 0,
        "shape": [2, 8, 8, 8],
        "dtype": "float32",
    }
    assert d["nodes"][edge["src"]]["path"] == "stem"
    assert d["repeats"] == [
        {
            "parent": "layer1",
            "paths": ["layer1.0", "layer1.1"],
            "class": "BasicBlock",
            "count": 2,
            "label": "BasicBlock x2",
        }
    ]
    g0 = d["groups"][0]
    assert g0["path"] == "" and g0["parent"] is None and g0["children"] == ["layer1", "layer2"]
    assert d["summary"]["nodes"] == len(d["nodes"]) and d["summary"]["edges"] == len(d["edges"])
    assert all(n["id"] == i for i, n in enumerate(d["nodes"]))


@pytest.mark.slow
def test_48_block_transformer_10k_ops_under_2s_and_compact():
    model, (idx,) = zoo.make_gpt(48, 16)
    times = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add noise on a shared machine
    try:
        for _ in range(3):
            # CPU time of this process: other engineers' jobs share the 2 cores and make
            # wall-clock time flaky; on an idle machine the two agree (one thread).
            t0, w0 = time.process_time(), time.perf_counter()
            g = trace(model, idx)
            times.append((time.process_time() - t0, time.perf_counter() - w0))
    finally:
        torch.set_num_threads(threads)
    assert g.summary["nodes"] > 9_500 and g.summary["ops"] > 6_000
    assert min(cpu for cpu, _ in times) < 2.0, times
    assert [r.label for r in g.repeats[:2]] == ["Block x48", "Head x16"] and len(g.repeats) == 49
    assert g.group("blocks.47.sa.heads").children == [f"blocks.47.sa.heads.{i}" for i in range(16)]
    text = json.dumps(g.to_dict(), separators=(",", ":"))
    assert len(text) < 5e6
    # the last block's output reaches the model's output through ln_f and lm_head
    (out,) = g.find(kind="output")
    assert [n.path for n in g.predecessors(out)] == ["lm_head"]


LAYER_CASES = [
    zoo.make_cnn,
    zoo.make_resnet,
    zoo.make_transformer,
    zoo.make_shared,
    zoo.make_dict_io,
    *["mha", "transformer_encoder_padded", "lstm", "weight_norm", "quantized"],
]


@pytest.mark.parametrize("make", LAYER_CASES)
def test_layer_shapes_are_what_capture_returns(make: Any) -> None:
    """The workspace lists its activation layers from the trace before it captures them all:
    the same paths, order and shapes as a capture (containers none of whose children ran,
    such as nn.MultiheadAttention, and parametrized and dynamically quantized ones included)."""
    from hf_zoo import CASES
    from layerscope.inspect import capture

    made = CASES[make].build() if isinstance(make, str) else make()
    model, inputs = made[0], made[1]
    kwargs = made[2] if len(made) > 2 else {}
    captured = {p: tuple(t.shape) for p, t in capture(model, *inputs, **kwargs).items()}
    expected = {p: s for p, s in captured.items() if "#" not in p}
    got = trace(model, *inputs, **kwargs).layer_shapes()
    assert list(got.items()) == list(expected.items())
