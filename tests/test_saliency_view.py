"""SaliencyView on the kernel side: traits, baked payloads and their size, the re-target request
(same numbers as ls.attribute, progress messages), attention thumbnails, and bad input."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import pytest
import torch
import traitlets
from ipywidgets.widgets.widget import _remove_buffers

import layerscope as ls
from attribution_models import SmallCNN, TinyTransformer
from layerscope.widgets.saliency import (
    SALIENCY_BUDGET,
    THUMB_BUDGET,
    SaliencyView,
    display_image,
    input_kind,
)
from layerscope.wire.tiles import block_reduce


def decode(m: dict[str, Any]) -> np.ndarray:
    """The view's decoding of a baked map (codes over [-max_abs, max_abs])."""
    p = m["codes"]
    codes = np.frombuffer(p["buffer"], dtype=np.uint8).reshape(p["shape"])
    q = m["quant"]
    return q["lo"] + codes.astype(np.float64) * (q["hi"] - q["lo"]) / q["levels"]


def state_bytes(view: Any) -> tuple[int, int]:
    """(JSON bytes, binary buffer bytes) of the widget's synced data, as a saved notebook has it:
    its state without the front-end code (``_esm``/``_css``, the bundle, the same for every view)."""
    data = {k: v for k, v in view.get_state().items() if k not in ("_esm", "_css")}
    state, _paths, buffers = _remove_buffers(data)
    return len(json.dumps(state)), sum(memoryview(b).nbytes for b in buffers)


@pytest.fixture
def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return SmallCNN().eval()


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(3, 3, 32, 32)


def test_image_view_traits_and_targets(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    view = ls.saliency(cnn, images, method=["gradient", "grad_cam"], labels=list("abcde"))
    assert isinstance(view, SaliencyView)
    assert view._info["kind"] == "image" and view._info["n"] == 3
    assert view._info["classes"] == 5
    assert view.methods == ["gradient", "grad_cam"]
    predicted = cnn(images).argmax(1).tolist()
    assert view.target == predicted  # target=None: the predicted class, named in the view
    s = view._samples[0]
    assert s["image"]["dtype"] == "uint8" and s["image"]["shape"] == [32, 32, 3]
    assert set(s["maps"]) == {"gradient", "grad_cam"}
    assert s["maps"]["gradient"]["codes"]["shape"] == [32, 32]
    assert s["topk"]["indices"][0] == predicted[0]
    assert abs(sum(s["topk"]["probs"]) - 1) < 0.2  # top 5 of 5 classes: all of it
    # Maps are what ls.attribute gives, summed over channels, within one quantization step.
    expected = ls.attribute(cnn, images, predicted, method="gradient").sum(1)
    for b in range(3):
        got = decode(view._samples[b]["maps"]["gradient"])
        step = view._samples[b]["maps"]["gradient"]["max_abs"] * 2 / 250
        np.testing.assert_allclose(got, expected[b].numpy(), atol=step * 0.51 + 1e-9)
    # JSON part small; arrays as binary buffers.
    json_bytes, buf_bytes = state_bytes(view)
    assert json_bytes < 64 * 1024
    assert buf_bytes >= 3 * 32 * 32 * (3 + 2)


def test_retarget_request_recomputes_like_attribute(
    cnn: torch.nn.Module, images: torch.Tensor
) -> None:
    view = ls.saliency(cnn, images, target=0, method="integrated_gradients", n_steps=8)
    sent: list[dict[str, Any]] = []
    view.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    reply, buffers = view.handle_request("retarget", {"batch": 1, "target": 3, "_id": "r1"})
    assert reply == {"batch": 1, "target": 3} and buffers == []
    assert view.target == [0, 3, 0]
    expected = ls.attribute(cnn, images[1:2], 3, method="integrated_gradients", n_steps=8)
    torch.testing.assert_close(view._maps["integrated_gradients"][1], expected[0].sum(0))
    got = decode(view._samples[1]["maps"]["integrated_gradients"])
    step = view._samples[1]["maps"]["integrated_gradients"]["max_abs"] * 2 / 250
    np.testing.assert_allclose(got, expected[0].sum(0).numpy(), atol=step * 0.51 + 1e-9)
    assert view._samples[1]["target"] == 3
    # The other samples keep their target and maps.
    full = ls.attribute(cnn, images, 0, method="integrated_gradients", n_steps=8).sum(1)
    torch.testing.assert_close(view._maps["integrated_gradients"][0], full[0])
    # Progress went out while it ran, for this request, ending at 1.
    progress = [m for m in sent if m.get("ls_progress") == 1]
    assert progress and all(m["id"] == "r1" for m in progress)
    assert progress[-1]["fraction"] == pytest.approx(1.0)
    fractions = [m["fraction"] for m in progress]
    assert fractions == sorted(fractions)


def test_retarget_errors_are_readable(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    view = ls.saliency(cnn, images, method="gradient")
    with pytest.raises(ValueError, match="out of range: the model has 5 classes"):
        view.handle_request("retarget", {"batch": 0, "target": 7})
    with pytest.raises(IndexError, match=r"sample 5 is outside 0\.\.2"):
        view.handle_request("retarget", {"batch": 5, "target": 1})
    with pytest.raises(TypeError, match="class index"):
        view.handle_request("retarget", {"batch": 0, "target": "cat"})
    before = list(view.target)
    view._method_kw["gradient"]["bogus"] = 1
    with pytest.raises(TypeError, match="bogus"):
        view.handle_request("retarget", {"batch": 0, "target": 1})
    assert view.target == before


def test_sample_trait_refuses_out_of_range(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    view = ls.saliency(cnn, images, method="gradient")
    view.batch = 2
    with pytest.raises(traitlets.TraitError, match=r"sample 7 is outside 0\.\.2"):
        view.batch = 7
    assert view.batch == 2


def test_bad_inputs_raise_at_call_time(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="unknown method 'saliencee'"):
        ls.saliency(cnn, images, method="saliencee")
    with pytest.raises(ValueError, match=r"out of range|class"):
        ls.saliency(cnn, images, target=9, method="gradient")
    with pytest.raises(ValueError, match="2 entries for 3 samples"):
        ls.saliency(cnn, images, target=[0, 1], method="gradient")
    with pytest.raises(TypeError, match="callable target"):
        ls.saliency(cnn, images, target=lambda out: out[:, 0], method="gradient")
    with pytest.raises(TypeError, match="labels= must be a list"):
        ls.saliency(cnn, images, labels="abc", method="gradient")
    with pytest.raises(ValueError, match="labels= has 2 names but the model scores 5 classes"):
        ls.saliency(cnn, images, labels=["a", "b"], method="gradient")
    with pytest.raises(ValueError, match="tokens= is for token"):
        ls.saliency(cnn, images, tokens=["a"], method="gradient")
    with pytest.raises(ValueError, match="got shape"):
        ls.saliency(cnn, images[0], method="gradient")  # (C, H, W): no batch dim
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        ls.saliency(cnn, images.numpy(), method="gradient")
    tt = TinyTransformer().eval()
    ids = torch.randint(0, 50, (1, 12))
    with pytest.raises(ValueError, match="3 strings for 12 positions"):
        ls.saliency(tt, ids, tokens=["a", "b", "c"], method="gradient")


def test_model_comes_back(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    cnn = SmallCNN(norm=True).train()
    for p in cnn.parameters():
        p.grad = torch.full_like(p, 0.5)
    stats = cnn.features[1].running_mean.clone()
    with pytest.warns(UserWarning, match="train mode"):
        view = ls.saliency(cnn, images, method="gradient")
    view.handle_request("retarget", {"batch": 0, "target": 1})
    assert cnn.training and all(m.training for m in cnn.modules())
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in cnn.parameters())
    torch.testing.assert_close(cnn.features[1].running_mean, stats)


def test_big_batches_bake_within_budget() -> None:
    torch.manual_seed(0)
    cnn = SmallCNN().eval()
    x = torch.randn(24, 3, 224, 224)
    view = ls.saliency(cnn, x, method=["gradient", "grad_cam"])
    _json, buf = state_bytes(view)
    assert buf <= SALIENCY_BUDGET
    side = view._samples[0]["image"]["shape"]
    assert side[0] < 224 and side[0] >= 16  # shrunk to fit, every sample kept
    assert len(view._samples) == 24


def test_tokens_and_attention_thumbnails() -> None:
    torch.manual_seed(0)
    tt = TinyTransformer(length=2048).eval()
    ids = torch.randint(0, 50, (2, 2048))
    tokens = ["<b>x</b>"] + [f"t{i}" for i in range(1, 2048)]
    view = ls.saliency(tt, ids, method="gradient", tokens=tokens)
    assert view._info["kind"] == "tokens"
    assert view.tokens == tokens
    s = view._samples[0]
    assert s["maps"]["gradient"]["codes"]["shape"] == [2048]
    assert s["ids"]["shape"] == [2048]
    expected = ls.attribute(tt, ids, view.target, method="gradient")  # (N, L): embedding summed
    got = decode(s["maps"]["gradient"])
    np.testing.assert_allclose(
        got, expected[0].numpy(), atol=s["maps"]["gradient"]["max_abs"] / 245
    )
    a = view._attention
    assert a["layers"] == ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn"]
    assert a["heads"] == 2 and a["shape"] == [2048, 2048]
    assert a["codes"]["shape"] == [2, 2, *a["thumb"]]
    assert np.prod(a["codes"]["shape"]) <= THUMB_BUDGET
    _json, buf = state_bytes(view)
    assert buf <= SALIENCY_BUDGET
    # Clicking a thumbnail opens that matrix in the heatmap (the view's TensorView data).
    weights = ls.attribution.attention_weights(tt, ids)
    view.attention_open = [1, 0]
    torch.testing.assert_close(view.data, weights["encoder.layers.1.self_attn"][0, 0])
    assert view._meta["shape"] == [2048, 2048]
    view.batch = 1
    assert view._attention["batch"] == 1
    torch.testing.assert_close(view.data, weights["encoder.layers.1.self_attn"][1, 0])
    view.attention_open = [5, 0]
    assert "attention layer 5 is outside 0..1" in view._error


def test_features_and_per_sample_tokens() -> None:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(10, 4))
    x = torch.randn(2, 10)
    names = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]]
    view = ls.saliency(mlp, x, target=[1, 2], method="input_x_gradient", tokens=names)
    assert view._info["kind"] == "features" and view.target == [1, 2]
    assert view.tokens == names
    assert view._attention == {}


def test_input_helpers() -> None:
    assert input_kind(torch.zeros(1, 3, 4, 4)) == "image"
    assert input_kind(torch.zeros(1, 4, dtype=torch.long)) == "tokens"
    assert input_kind(torch.zeros(1, 4)) == "features"
    img = display_image(torch.tensor([[[0.0, 2.0], [4.0, float("nan")]]]), (2, 2))
    assert img.shape == (2, 2, 1) and img.dtype == np.uint8
    assert img[0, 0, 0] == 0 and img[1, 0, 0] == 255
    many = display_image(torch.randn(5, 8, 8), (4, 4))
    assert many.shape == (4, 4, 1)
    assert block_reduce(torch.ones(4, 4), (2, 2)).shape == (2, 2)


def test_example_notebook_runs() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    root = pathlib.Path(__file__).resolve().parent.parent
    nb = nbformat.read(root / "notebooks" / "saliency.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(root)}}
    )
    client.execute()
    last = nb.cells[-1].outputs[-1]["data"]["text/plain"]
    assert last == "(4, 2, 'tokens')"
    widgets = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "data" in o]
    assert sum("application/vnd.jupyter.widget-view+json" in o["data"] for o in widgets) == 2


def test_options_go_to_the_methods_that_take_them(
    cnn: torch.nn.Module, images: torch.Tensor
) -> None:
    view = ls.saliency(cnn, images[:1], method=["gradient", "integrated_gradients"], n_steps=4)
    assert view._method_kw == {"gradient": {}, "integrated_gradients": {"n_steps": 4}}
    with pytest.raises(TypeError, match="no method in"):
        ls.saliency(cnn, images[:1], method="gradient", n_steps=4)


def test_methods_trait_computes_new_methods(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    view = ls.saliency(cnn, images[:2], method="gradient", target=[1, 2])
    view.methods = ["grad_cam", "gradient"]
    assert view._info["methods"] == ["grad_cam", "gradient"] and view._error == ""
    expected = ls.attribute(cnn, images[:2], [1, 2], method="grad_cam")[:, 0]
    torch.testing.assert_close(view._maps["grad_cam"], expected)
    assert set(view._samples[1]["maps"]) == {"grad_cam", "gradient"}
    view.methods = ["nope"]
    assert "unknown method 'nope'" in view._error
    assert view._info["methods"] == ["grad_cam", "gradient"]


def test_recompute_follows_a_changed_model(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    """After training (here: new weights), ``recompute`` predicts and attributes again; a sample
    whose class the user picked keeps it, the others follow the new prediction."""
    view = ls.saliency(cnn, images, method=["gradient", "grad_cam"])
    view.handle_request("retarget", {"batch": 2, "target": 4})
    with torch.no_grad():
        for p in cnn.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    predicted = cnn(images).argmax(1).tolist()
    view.recompute()
    assert view.target == [predicted[0], predicted[1], 4]
    for m in ("gradient", "grad_cam"):
        for b, t in enumerate(view.target):
            expected = ls.attribute(cnn, images[b : b + 1], t, method=m)
            torch.testing.assert_close(view._maps[m][b], expected[0].sum(0))
    with torch.no_grad():
        probs = torch.softmax(cnn(images), 1)
    top = view._samples[0]["topk"]
    assert top["indices"][0] == predicted[0]
    assert top["probs"][0] == pytest.approx(float(probs[0].max()), rel=1e-5)
    assert view._error == ""
