"""ls.attribute keeps DESIGN.md's promises, gives clear errors, and reads attention weights."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import layerscope as ls
from attribution_models import DictOutput, HFStyleModel, SmallCNN, TinyTransformer, TinyViT, mlp
from layerscope.attribution import METHODS, attention_rollout, attention_weights, predict_topk

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def snapshot(model: nn.Module) -> dict:
    return {
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "buffers": [b.clone() for b in model.buffers()],
        "hooks": [len(getattr(m, k, {})) for m in model.modules() for k in HOOK_DICTS],
        "params": [p.detach().clone() for p in model.parameters()],
    }


def assert_same(before: dict, after: dict) -> None:
    for g0, g1 in zip(before["grads"], after["grads"], strict=True):
        assert (g0 is None and g1 is None) or torch.equal(g0, g1), "param.grad changed"
    assert before["requires_grad"] == after["requires_grad"]
    assert before["training"] == after["training"]
    assert before["hooks"] == after["hooks"], "hooks left behind"
    for b0, b1 in zip(before["buffers"], after["buffers"], strict=True):
        assert torch.equal(b0, b1), "buffer changed"
    for p0, p1 in zip(before["params"], after["params"], strict=True):
        assert torch.equal(p0, p1)


def prepared(model: nn.Module) -> nn.Module:
    """Train mode, known .grad on every parameter, one frozen parameter."""
    model.train()
    for i, p in enumerate(model.parameters()):
        p.grad = torch.full_like(p, float(i + 1))
    next(model.parameters()).requires_grad_(False)
    return model


CASES = [
    ("gradient", {}),
    ("input_x_gradient", {}),
    ("integrated_gradients", {"n_steps": 4, "return_convergence_delta": True}),
    ("smoothgrad", {"n_samples": 3, "seed": 0}),
    ("grad_cam", {}),
]


@pytest.mark.parametrize(("method", "kw"), CASES)
def test_promises_cnn_with_batchnorm_and_dropout(method, kw):
    torch.manual_seed(0)
    model = prepared(SmallCNN(norm=True))
    x = torch.randn(3, 3, 8, 8, requires_grad=True)
    before = snapshot(model)
    with pytest.warns(UserWarning, match="ran in eval mode"):
        ours = ls.attribute(model, x, 1, method=method, **kw)
    assert_same(before, snapshot(model))
    assert x.requires_grad and x.grad is None, "the user's input must keep its flag and no .grad"
    model_eval = SmallCNN(norm=True)
    model_eval.load_state_dict(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning in eval mode
        ref = ls.attribute(model_eval.eval(), x, 1, method=method, **kw)
    if isinstance(ours, tuple):
        ours, ref = ours[0], ref[0]
    torch.testing.assert_close(ours, ref)  # computed in eval mode


@pytest.mark.parametrize("method", list(METHODS))
def test_promises_transformer_tokens(method):
    torch.manual_seed(0)
    model = prepared(TinyTransformer())
    ids = torch.randint(0, 50, (2, 12))
    before = snapshot(model)
    kw = {"layer": "encoder.layers.1"} if method == "grad_cam" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = ls.attribute(model, ids, 1, method=method, **kw)
    assert out.shape == ids.shape
    assert_same(before, snapshot(model))


def test_promises_kept_when_the_method_raises():
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("boom")
            return self.net(x)

    model = prepared(Exploding())
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ls.attribute(model, torch.randn(2, 10), None, method="integrated_gradients", n_steps=4)
    assert_same(before, snapshot(model))
    # an error raised by our own checks, with hooks registered (Grad-CAM layer off the path)
    cnn = prepared(SmallCNN())
    before = snapshot(cnn)
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ls.attribute(cnn, torch.randn(2, 3, 8, 8), 9, method="grad_cam")
    assert_same(before, snapshot(cnn))


def test_eval_mode_false_computes_in_train_mode():
    torch.manual_seed(0)
    model = SmallCNN(norm=True).train()
    x = torch.randn(4, 3, 8, 8)
    before = snapshot(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = ls.attribute(model, x, 0, method="gradient", eval_mode=False)
    assert_same(before, snapshot(model))  # BatchNorm running stats updated, then restored
    b = ls.attribute(model.eval(), x, 0, method="gradient")
    assert not torch.allclose(a, b)  # dropout / batch statistics were active


# ---- bad inputs --------------------------------------------------------------------------------


def test_target_out_of_range_says_valid_range():
    with pytest.raises(ValueError, match=r"out of range .* 5 classes: valid indices are 0\.\.4"):
        ls.attribute(mlp(), torch.randn(2, 10), 7, method="gradient")
    with pytest.raises(ValueError, match=r"sample 1"):
        ls.attribute(mlp(), torch.randn(2, 10), [0, -1], method="gradient")
    with pytest.raises(ValueError, match="one entry per sample: got 3 for 2"):
        ls.attribute(mlp(), torch.randn(2, 10), [0, 1, 2], method="gradient")


def test_dict_and_tuple_outputs_need_a_selector():
    model = DictOutput()
    x = torch.randn(3, 10)
    with pytest.raises(ValueError, match=r"keys \['logits', 'hidden'\].*output='logits'"):
        ls.attribute(model, x, 1, method="gradient")
    ours = ls.attribute(model, x, 1, method="gradient", output="logits")
    assert ours.shape == x.shape

    class TupleOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(10, 4)

        def forward(self, x):
            return self.net(x), x

    with pytest.raises(ValueError, match=r"output=0 \(an index\)"):
        ls.attribute(TupleOut(), x, 1, method="gradient")
    assert ls.attribute(TupleOut(), x, 1, method="gradient", output=0).shape == x.shape
    with pytest.raises(ValueError, match="not a key"):
        ls.attribute(model, x, 1, method="gradient", output="logit")


def test_integer_inputs_without_embedding_layer():
    class NoEmbed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(5, 2)

        def forward(self, ids):
            return self.net(ids.float())

    with pytest.raises(ValueError, match=r"integer token ids.*embedding='path"):
        ls.attribute(NoEmbed(), torch.randint(0, 5, (2, 5)), 0, method="gradient")
    with pytest.raises(KeyError, match="Did you mean: 'embed'"):
        ls.attribute(TinyTransformer(), torch.randint(0, 50, (2, 12)), 0, embedding="embedd")


def test_grad_cam_layer_not_on_path():
    class SideBranch(SmallCNN):
        def __init__(self) -> None:
            super().__init__()
            self.side = nn.Conv2d(3, 4, 3)
            self.unused = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            self.side(x)  # computed, never used by the output
            return super().forward(x)

    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="'side' is not on the path to the output"):
        ls.attribute(SideBranch(), x, 0, method="grad_cam", layer="side")
    with pytest.raises(ValueError, match="was not called"):
        ls.attribute(SideBranch(), x, 0, method="grad_cam", layer="unused")
    with pytest.raises(ValueError, match="has none; pass layer="):
        ls.attribute(mlp(), torch.randn(2, 10), 0, method="grad_cam")


def test_unknown_names_list_the_valid_ones():
    x = torch.randn(2, 10)
    with pytest.raises(
        ValueError, match=r"unknown method 'saliency'; valid methods are \['gradient'"
    ):
        ls.attribute(mlp(), x, 0, method="saliency")
    with pytest.raises(TypeError, match=r"no option 'n_step'.*'n_steps'"):
        ls.attribute(mlp(), x, 0, n_step=5)
    with pytest.raises(ValueError, match="riemann_trapezoid"):
        ls.attribute(mlp(), x, 0, ig_method="simpson")
    with pytest.raises(ValueError, match="'zero', 'uniform', 'blur'"):
        ls.attribute(mlp(), x, 0, baselines="black")
    with pytest.raises(ValueError, match="smoothgrad_sq"):
        ls.attribute(mlp(), x, 0, method="smoothgrad", variant="sq")
    with pytest.raises(ValueError, match="is not one of"):
        ls.attribute(mlp(), x, 0, method="smoothgrad", base="grad_cam")
    with pytest.raises(TypeError, match=r"nn\.Module"):
        ls.attribute(lambda t: t, x, 0)


def test_bad_shapes():
    with pytest.raises(ValueError, match="cannot broadcast"):
        ls.attribute(mlp(), torch.randn(2, 10), 0, baselines=torch.zeros(3))
    with pytest.raises(ValueError, match="same batch size"):
        ls.attribute(nn.Bilinear(3, 4, 2), (torch.randn(2, 3), torch.randn(3, 4)), 0)
    with pytest.raises(ValueError, match="not a square grid; pass token_grid"):
        torch.manual_seed(0)
        vit = TinyViT()
        ls.attribute(
            vit, torch.randn(1, 3, 16, 16), 0, method="grad_cam", layer="block", skip_tokens=2
        )


# ---- attention and predictions -----------------------------------------------------------------


def test_attention_weights_from_encoder_layers_match_direct_call():
    torch.manual_seed(0)
    model = TinyTransformer().eval()
    ids = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        expected_out = model(ids)
    weights = attention_weights(model, ids)
    assert list(weights) == ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn"]
    # layer 0's weights, recomputed by calling the module with need_weights=True ourselves
    with torch.no_grad():
        h = model.embed(ids) + model.pos
        _, w0 = model.encoder.layers[0].self_attn(
            h, h, h, need_weights=True, average_attn_weights=False
        )
    torch.testing.assert_close(weights["encoder.layers.0.self_attn"], w0)
    assert weights["encoder.layers.1.self_attn"].shape == (2, 2, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), expected_out)  # output unchanged, hooks gone
    assert all(len(m._forward_hooks) + len(m._forward_pre_hooks) == 0 for m in model.modules())


def test_attention_mha_caller_gets_what_it_asked_for():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    model = nn.Sequential()
    model.add_module("attn", mha)
    x = torch.randn(2, 5, 8)

    class Caller(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = mha

        def forward(self, x):
            out, w = self.attn(x, x, x)  # default: need_weights=True, averaged over heads
            assert w.shape == (2, 5, 5)
            return out.sum(-1)

    weights = attention_weights(Caller(), x)
    assert weights["attn"].shape == (2, 2, 5, 5)


def test_attention_hf_style_and_rollout():
    torch.manual_seed(0)
    model = HFStyleModel().eval()
    ids = torch.randint(0, 20, (3, 6))
    weights = attention_weights(model, ids)
    assert list(weights) == ["layers.0", "layers.1"]
    roll = attention_rollout(weights)
    eye = torch.eye(6)
    a0 = 0.5 * weights["layers.0"].mean(1) + 0.5 * eye
    a1 = 0.5 * weights["layers.1"].mean(1) + 0.5 * eye
    torch.testing.assert_close(roll, a1 @ a0)
    torch.testing.assert_close(roll.sum(-1), torch.ones(3, 6))
    rel = ls.attribute(model, ids, None, method="attention")
    torch.testing.assert_close(rel, roll[:, 0])
    rel_mean = ls.attribute(model, ids, None, method="attention", query="mean", head_fusion="max")
    assert rel_mean.shape == ids.shape


def test_attention_without_attention_layers_says_what_to_do():
    with pytest.raises(ValueError, match="output_attentions"):
        attention_weights(mlp(), torch.randn(2, 10))


def test_attention_on_vit_image_gives_a_map():
    torch.manual_seed(0)
    vit = TinyViT().eval()
    out = ls.attribute(vit, torch.randn(2, 3, 16, 16), None, method="attention")
    assert out.shape == (2, 1, 16, 16)


def test_predict_topk():
    torch.manual_seed(0)
    model = mlp().train()
    x = torch.randn(4, 10)
    probs, idx = predict_topk(model, x, k=3)
    full = model.eval()(x).softmax(-1)
    model.train()
    torch.testing.assert_close(probs, full.topk(3).values)
    assert torch.equal(idx, full.topk(3).indices)
    assert model.training
    assert predict_topk(DictOutput(), x, k=2, output="logits").probs.shape == (4, 2)


@pytest.mark.parametrize(
    ("method", "kw"),
    [
        ("integrated_gradients", {"n_steps": 8, "internal_batch_size": 5}),
        ("smoothgrad", {"n_samples": 4, "internal_batch_size": 3, "seed": 0}),
        ("grad_cam", {"internal_batch_size": 1}),
    ],
)
def test_progress_reports_rising_fractions_up_to_one(method, kw):
    torch.manual_seed(0)
    seen: list[float] = []
    ls.attribute(
        SmallCNN().eval(), torch.randn(3, 3, 8, 8), 0, method=method, progress=seen.append, **kw
    )
    assert len(seen) > 1
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and seen[0] > 0


def test_attention_weights_with_padding_mask_and_nested_tensor_encoder():
    """TransformerEncoder's eval fast path packs padded batches into nested tensors."""
    torch.manual_seed(0)

    class Padded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 2)  # enable_nested_tensor=True by default

        def forward(self, x, mask):
            return self.enc(x, src_key_padding_mask=mask)

    model = Padded().eval()
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's prototype nested-tensor warning
        weights = attention_weights(model, (x, mask))
    w = weights["enc.layers.1.self_attn"]
    assert w.shape == (2, 2, 5, 5)
    assert torch.all(w[1, :, :, 3:] == 0)  # padded keys get no attention
    assert model.enc.use_nested_tensor


class ViewAfterConv(nn.Module):
    """``.view`` of a conv output: fails when the rows run in channels-last layout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc(y.view(y.shape[0], -1))


@pytest.mark.parametrize(("method", "kw"), CASES)
def test_channels_last_rows_give_the_same_attributions(method, kw, monkeypatch):
    """CNN rows run channels-last on the CPU (faster convolutions): same values as the model's own
    layout, returned contiguous; a model that cannot take that layout is run as given."""
    import layerscope.attribution.problem as problem

    torch.manual_seed(0)
    x = torch.randn(3, 3, 8, 8)
    for model in (SmallCNN().eval(), ViewAfterConv().eval()):
        layouts: list[bool] = []
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        handle = first.register_forward_pre_hook(
            lambda _m, a, seen=layouts: seen.append(
                a[0].is_contiguous(memory_format=torch.channels_last)
            )
        )
        fast = ls.attribute(model, x, 1, method=method, **kw)
        monkeypatch.setattr(problem, "CHANNELS_LAST", False)
        plain = ls.attribute(model, x, 1, method=method, **kw)
        monkeypatch.undo()
        handle.remove()
        if isinstance(fast, tuple):
            fast, plain = fast[0], plain[0]
        assert fast.is_contiguous()
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-6)
        if isinstance(model, SmallCNN):
            assert layouts[0], "a CNN's rows should reach its first conv in channels-last layout"
        else:
            assert model in problem._KEEP_LAYOUT
            assert layouts[-1] is False  # its last pass ran in the layout it was given
