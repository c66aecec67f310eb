"""The ten root causes found by running every API on real architectures (issue 12), one test (or
a few) each, on the smallest model that shows it; the whole zoo runs in tests/test_zoo.py."""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import layerscope as ls
from hf_zoo import CASES
from layerscope.attribution import attention_weights

os.environ["HF_HUB_OFFLINE"] = "1"


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


# -- 1. modules whose children never run are layers --


def test_mha_capture_gives_its_output():
    mha, (x, _, _), _ = CASES["mha"].build()
    acts = ls.inspect.capture(mha, x, x, x)
    assert list(acts) == [""] and acts[""].shape == (2, 5, 16)
    view = ls.activations(mha, x, x, x)
    assert view.layer == "" and tuple(view._act["shape"]) == (2, 5, 16)


def test_transformer_self_attention_outputs_are_captured():
    model, args, _ = CASES["transformer"].build()
    acts = ls.inspect.capture(model, *args)
    assert "encoder.layers.0.self_attn" in acts
    assert "decoder.layers.0.multihead_attn" in acts
    # out_proj never runs as a module: never listed as a layer that produced nothing
    assert not any(k.endswith("out_proj") for k in acts)


def test_bare_rnn_and_quantized_linear_are_layers():
    for name in ("lstm", "gru"):
        model, args, _ = CASES[name].build()
        assert list(ls.inspect.capture(model, *args)) == [""]
    model, args, _ = CASES["quantized"].build()
    acts = ls.inspect.capture(model, *args)
    assert set(acts) == {"0", "1", "2"} and acts["2"].shape == (2, 3)


def test_recorder_probe_records_layers_that_ran():
    mha, (x, _, _), _ = CASES["mha"].build()
    rec = ls.Recorder(mha, probe=(x, x, x))
    rec.step(loss=1.0)
    rec.epoch()
    assert rec.layers == [""] or "" in rec.activation_epochs("")


# -- 2. parametrizations belong to their owner --


def test_weight_norm_layer_reports_its_activation():
    model, (x,), _ = CASES["weight_norm"].build()
    acts = ls.inspect.capture(model, x)
    assert set(acts) == {"0", "1", "2"}
    assert acts["0"].shape == (2, 32)
    g = ls.inspect.trace(model, x)
    names = [n.name for n in g.nodes if n.kind == "module"]
    assert names and not any("parametrizations" in n for n in names), names
    assert g.nodes[1].params > 0  # the owner counts the weight's originals


def test_wav2vec2_positional_conv_is_one_layer():
    model, args, _ = quiet(CASES["wav2vec2"].build)
    acts = ls.inspect.capture(model, *args)
    assert not any("parametrizations" in k for k in acts)
    assert any(k.endswith("pos_conv_embed.conv") for k in acts), list(acts)


# -- 3. saliency for sequences, signals and video (views: tests/test_saliency_kinds_browser.py) --


@pytest.mark.parametrize(
    ("case", "kind", "grid"),
    [
        ("sequence_classifier", "sequence", [6, 8]),
        ("audio_conv", "signal", [1, 64]),
        ("whisper", "signal", [8, 32]),
        ("video3d", "video", [4, 8, 8]),
        ("videomae", "video", [4, 16, 16]),
    ],
)
def test_saliency_takes_sequences_signals_and_video(case, kind, grid):
    model, args, kwargs = quiet(CASES[case].build)
    view = quiet(
        ls.saliency,
        model,
        args,
        0,
        method=["gradient", "integrated_gradients"],
        n_steps=4,
        output=CASES[case].output,
        **kwargs,
    )
    assert view._info["kind"] == kind
    sample = view._samples[0]
    assert sample["grid"] == grid
    for m in ("gradient", "integrated_gradients"):
        assert sample["maps"][m]["max_abs"] > 0
        assert "totals" in sample["maps"][m]


def test_saliency_signal_map_matches_attribute():
    model, (x,), _ = CASES["audio_conv"].build()
    view = ls.saliency(model, x, 1, method="gradient")
    expected = ls.attribute(model, x, 1, method="gradient")
    assert torch.allclose(view._maps["gradient"], expected)
    cam = ls.attribute(model, x, 1, method="grad_cam")  # last Conv1d, resized to the signal
    assert cam.shape == (2, 1, 64)


def test_saliency_input_kind_overrides_the_guess():
    model, (x,), _ = CASES["sequence_classifier"].build()
    with pytest.raises(ValueError, match="input_kind"):
        ls.saliency(model, x, input_kind="pictures")
    view = ls.saliency(model, x, 0, method="gradient", input_kind="signal")
    assert view._info["kind"] == "signal"


# -- 4. attention is found by what it is --


def is_attention(w: torch.Tensor) -> bool:
    """(N, heads, q, k), non-negative, rows summing to 1 (the test's own definition)."""
    rows = w.sum(-1)
    return (
        w.dim() == 4
        and bool((w >= 0).all())
        and bool(torch.allclose(rows, torch.ones_like(rows), atol=1e-3))
    )


def test_t5_position_bias_is_not_attention():
    model, args, kwargs = quiet(CASES["t5"].build)
    weights = quiet(attention_weights, model, args, forward_kwargs=kwargs)
    assert weights
    for path, w in weights.items():
        assert is_attention(w), path
        assert w.shape[0] == 2  # the batch; position_bias has 1
    rows = weights["decoder.block.0.layer.1.EncDecAttention"].sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4)
    from layerscope.attribution.attention import is_attention as library_is_attention

    assert not library_is_attention(torch.randn(1, 2, 4, 4))  # a position bias
    # the saliency view with attention thumbnails for encoder and decoder (different shapes)
    view = quiet(ls.saliency, model, args, (0, 5), method="gradient", output="logits", **kwargs)
    assert len(view._attention["layers"]) == 6


def test_sdpa_models_give_their_attention():
    model, args, kwargs = quiet(CASES["bert"].build)
    impl = model.config._attn_implementation
    weights = quiet(attention_weights, model, args, forward_kwargs=kwargs)
    assert len(weights) == 2 and all(is_attention(w) for w in weights.values())
    assert model.config._attn_implementation == impl  # given back


# -- 5. nested tensors from TransformerEncoder's fast path --


def test_nested_tensor_outputs_are_padded_with_nan():
    model, (x,), kwargs = CASES["transformer_encoder_padded"].build()
    acts = quiet(ls.inspect.capture, model, x, **kwargs)
    inner = acts["layers.0.linear2"]
    assert not inner.is_nested and inner.shape == (2, 5, 16)
    assert inner[1, 3:].isnan().all() and not inner[0].isnan().any()
    view = quiet(ls.activations, model, x, layer="layers.0.linear2", **kwargs)
    assert tuple(view._act["shape"]) == (2, 5, 16)


# -- 6. an embedding called twice is attributed at one call --


def _true_gradient_first_call(model, src, tgt, target):
    store = {}

    def hook(_m, _i, out):
        if "leaf" not in store:
            leaf = out.detach().requires_grad_(True)
            store["leaf"] = leaf
            return leaf
        return None

    h = model.embed.register_forward_hook(hook)
    try:
        out = model(src, tgt=tgt)
        out[:, target].sum().backward()
    finally:
        h.remove()
    return store["leaf"].grad


def test_shared_embedding_is_attributed_at_one_call():
    model, (src,), kwargs = CASES["shared_seq2seq"].build()
    expected = _true_gradient_first_call(model, src, kwargs["tgt"], 1)
    got = ls.attribute(
        model, src, 1, method="gradient", abs=False, embedding_reduce=None, forward_kwargs=kwargs
    )
    torch.testing.assert_close(got, expected)
    for p in model.parameters():
        p.grad = None
    # the second call: the target tokens' embedding
    got2 = ls.attribute(
        model,
        src,
        1,
        method="gradient",
        embedding="embed",
        embedding_call=1,
        embedding_reduce=None,
        forward_kwargs=kwargs,
    )
    assert got2.shape == (2, 5, 8) and not torch.allclose(got2, got)
    with pytest.raises(ValueError, match="embedding_call"):
        ls.attribute(model, src, 1, embedding="embed", embedding_call=5, forward_kwargs=kwargs)


# -- 7. no gradient path: an error naming where it breaks, never zeros --


def test_quantized_model_attribution_names_the_break():
    model, (x,), _ = CASES["quantized"].build()
    with pytest.raises(ValueError, match=r"module '0' \(Linear\).*linear_dynamic"):
        quiet(ls.attribute, model, x, 0, method="gradient")


def test_integer_cast_names_the_op():
    class Cast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 2)

        def forward(self, x):
            return self.b(self.a(x).round().long().float())

    with pytest.raises(ValueError, match="op 'long'"):
        ls.attribute(Cast(), torch.randn(2, 4), 0, method="integrated_gradients", n_steps=2)


# -- 8. the default embedding is the one that embedded the ids --


def test_bart_default_embedding_is_the_one_called():
    model, (ids,), kwargs = quiet(CASES["bart"].build)
    first = next(m for m in model.modules() if isinstance(m, nn.Embedding))
    assert first is model.model.shared  # never called: the encoder has its own module
    got = quiet(
        ls.attribute, model, ids, (0, 5), method="gradient", output="logits", forward_kwargs=kwargs
    )
    assert got.shape == (2, 6) and got.abs().sum() > 0
    named = quiet(
        ls.attribute,
        model,
        ids,
        (0, 5),
        method="gradient",
        output="logits",
        embedding="model.encoder.embed_tokens",
        forward_kwargs=kwargs,
    )
    torch.testing.assert_close(got, named)


def test_t5_shared_embedding_attributes_the_encoder_ids():
    model, (ids,), kwargs = quiet(CASES["t5"].build)
    got = quiet(
        ls.attribute, model, ids, (0, 5), method="gradient", output="logits", forward_kwargs=kwargs
    )
    assert got.shape == ids.shape  # (2, 6) source tokens, not the (2, 4) decoder ids


# -- 9. 0-d parameters round-trip through the store --


def test_zero_d_parameter_round_trips_through_the_store():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.logit_scale = nn.Parameter(torch.tensor(2.5))
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            return self.lin(x) * self.logit_scale

    with tempfile.TemporaryDirectory() as d:
        rec = ls.Recorder(Scaled(), store=f"{d}/run")
        rec.step(loss=1.0)
        rec.epoch()
        rec.close()
        run = ls.Recorder.open(f"{d}/run")
        snap = run.snapshot("logit_scale", 0, exact=True)
        assert snap.array.shape == () and snap.array.dtype == np.float32
        assert float(snap.array) == 2.5


# -- 10. tracing a compiled model compiles nothing --


def test_trace_of_compiled_model_does_not_recompile():
    import torch._dynamo
    from torch._dynamo.utils import counters

    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(2, 8)
    torch._dynamo.reset()
    compiled = torch.compile(model)
    compiled(x)
    graphs = counters["stats"]["unique_graphs"]
    g1 = ls.inspect.trace(compiled, x)
    g2 = ls.inspect.trace(compiled, x)
    assert counters["stats"]["unique_graphs"] == graphs, "tracing compiled a new graph"
    assert [n.name for n in g1.nodes] == [n.name for n in g2.nodes]
    assert [n.name for n in g1.nodes if n.kind == "module"] == ["Linear", "ReLU", "Linear"]


# -- Grad-CAM at the last ViT block, and the model's keyword arguments --


def test_grad_cam_all_zero_warns_and_names_layers_with_signal():
    model, (x,), _ = quiet(CASES["vit"].build)
    with pytest.warns(UserWarning, match=r"all zero.*vit\.layers\.0"):
        cam = ls.attribute(model, x, 0, method="grad_cam", layer="vit.layers.1", output="logits")
    assert cam.abs().max() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cam0 = ls.attribute(model, x, 0, method="grad_cam", layer="vit.layers.0", output="logits")
    assert cam0.abs().max() > 0


def test_entry_points_take_the_models_keyword_arguments():
    model, (ids,), kwargs = quiet(CASES["t5"].build)
    view = quiet(ls.activations, model, ids, **kwargs)
    assert any(k.startswith("decoder.") for k in view._acts)
    direct = quiet(ls.attribute, model, ids, (0, 5), method="gradient", output="logits", **kwargs)
    via = quiet(
        ls.attribute, model, ids, (0, 5), method="gradient", output="logits", forward_kwargs=kwargs
    )
    torch.testing.assert_close(direct, via)
    sal = quiet(ls.saliency, model, ids, (0, 5), method="gradient", output="logits", **kwargs)
    assert sal._kw["forward_kwargs"].keys() == kwargs.keys()
    rec = ls.Recorder(model, probe=(ids,), probe_kwargs=kwargs)
    rec.step(loss=1.0)
    quiet(rec.epoch)
    assert any(k.startswith("decoder.") for k in rec.layers)
