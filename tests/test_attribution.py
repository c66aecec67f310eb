"""ls.attribute against Captum (the reference), in float64 to a relative error of 1e-5."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import layerscope as ls
from attribution_models import SmallCNN, TinyTransformer, TinyViT, TwoInputs, mlp
from layerscope.attribution import QUADRATURES, noise_draws, noise_stdevs
from layerscope.attribution.baselines import gaussian_blur

captum_attr = pytest.importorskip("captum.attr")

RTOL = 1e-5


def close(ours: torch.Tensor, ref: torch.Tensor, rtol: float = RTOL) -> None:
    """Relative error over the whole tensor: max |ours - ref| / max |ref|."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    err = (ours - ref).abs().max() / ref.abs().max().clamp_min(1e-30)
    assert err <= rtol, f"relative error {float(err):.3g} > {rtol}"


@pytest.fixture
def mlp64():
    return mlp().double().eval()


@pytest.fixture
def cnn64():
    torch.manual_seed(1)
    return SmallCNN().double().eval()


@pytest.fixture
def tfm64():
    torch.manual_seed(2)
    return TinyTransformer().double().eval()


def x_mlp():
    torch.manual_seed(10)
    return torch.randn(6, 10, dtype=torch.float64)


def x_img():
    torch.manual_seed(11)
    return torch.randn(4, 3, 12, 12, dtype=torch.float64)


def ids():
    torch.manual_seed(12)
    return torch.randint(1, 50, (3, 12))


TARGETS = [2, [0, 1, 2, 3, 4, 0]]


@pytest.mark.parametrize("abs_", [True, False])
@pytest.mark.parametrize("target", TARGETS)
def test_gradient_matches_captum_saliency(mlp64, abs_, target):
    x = x_mlp()
    ours = ls.attribute(mlp64, x, target, method="gradient", abs=abs_)
    ref = captum_attr.Saliency(mlp64).attribute(x, target=target, abs=abs_)
    close(ours, ref)


def test_gradient_on_cnn_and_chunked(cnn64):
    x = x_img()
    ref = captum_attr.Saliency(cnn64).attribute(x, target=1, abs=False)
    close(ls.attribute(cnn64, x, 1, method="gradient", abs=False), ref)
    close(ls.attribute(cnn64, x, 1, method="gradient", abs=False, internal_batch_size=3), ref)


@pytest.mark.parametrize("target", TARGETS)
def test_input_x_gradient_matches_captum(mlp64, target):
    x = x_mlp()
    ours = ls.attribute(mlp64, x, target, method="input_x_gradient")
    close(ours, captum_attr.InputXGradient(mlp64).attribute(x, target=target))


def test_predicted_class_target_is_argmax(mlp64):
    x = x_mlp()
    pred = mlp64(x).argmax(1)
    close(
        ls.attribute(mlp64, x, None, method="gradient", abs=False),
        captum_attr.Saliency(mlp64).attribute(x, target=pred, abs=False),
    )


def test_callable_target(mlp64):
    x = x_mlp()
    ours = ls.attribute(mlp64, x, lambda out: out[:, 3] - out[:, 1], method="gradient", abs=False)
    ref3 = captum_attr.Saliency(mlp64).attribute(x, target=3, abs=False)
    ref1 = captum_attr.Saliency(mlp64).attribute(x, target=1, abs=False)
    close(ours, ref3 - ref1)


@pytest.mark.parametrize("ig_method", QUADRATURES)
def test_integrated_gradients_methods_match_captum(cnn64, ig_method):
    x = x_img()
    ours, delta = ls.attribute(
        cnn64,
        x,
        3,
        method="integrated_gradients",
        n_steps=8,
        ig_method=ig_method,
        return_convergence_delta=True,
    )
    ref, ref_delta = captum_attr.IntegratedGradients(cnn64).attribute(
        x, target=3, n_steps=8, method=ig_method, return_convergence_delta=True
    )
    # Captum rounds its step sizes (and Riemann alphas) to float32: ~1e-7 apart from ours
    close(ours, ref)
    # both deltas are round-off sized here; compare them on the scale of what they measure
    scale = float(ours.flatten(1).sum(1).abs().max())
    torch.testing.assert_close(delta, ref_delta, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("baseline", ["zero", 0.25, "tensor", "blur", "uniform"])
def test_integrated_gradients_baselines_match_captum(cnn64, baseline):
    x = x_img()
    torch.manual_seed(3)
    given = torch.rand_like(x) if baseline == "tensor" else baseline
    ours = ls.attribute(
        cnn64, x, 0, method="integrated_gradients", baselines=given, n_steps=10, seed=7
    )
    if baseline == "zero":
        ref_b = torch.zeros_like(x)
    elif baseline == 0.25:
        ref_b = torch.full_like(x, 0.25)
    elif baseline == "blur":
        ref_b = gaussian_blur(x, 5.0)
    elif baseline == "uniform":
        g = torch.Generator().manual_seed(7)
        ref_b = x.min() + (x.max() - x.min()) * torch.rand(x.shape, generator=g, dtype=x.dtype)
    else:
        ref_b = given
    ref = captum_attr.IntegratedGradients(cnn64).attribute(x, baselines=ref_b, target=0, n_steps=10)
    close(ours, ref)


def test_blur_baseline_is_a_blur():
    x = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    x[0, 0, 4, 4] = 1.0
    b = gaussian_blur(x, 1.0)
    assert abs(float(b.sum()) - 1.0) < 1e-9  # mass kept
    assert b[0, 0, 4, 4] < 1.0 and b[0, 0, 4, 5] > 0 and torch.allclose(b, b.transpose(2, 3))


def test_integrated_gradients_chunked_equals_one_batch(cnn64):
    x = x_img()
    whole = ls.attribute(cnn64, x, 2, n_steps=12, internal_batch_size=10_000)
    for rows in (1, 5, 7):
        close(ls.attribute(cnn64, x, 2, n_steps=12, internal_batch_size=rows), whole, rtol=1e-12)
    close(ls.attribute(cnn64, x, 2, n_steps=12, memory_budget=1), whole, rtol=1e-12)


def test_integrated_gradients_tuple_inputs_match_captum():
    torch.manual_seed(4)
    model = TwoInputs().double().eval()
    x, y = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    ours = ls.attribute(model, (x, y), 1, n_steps=16)
    ref = captum_attr.IntegratedGradients(model).attribute((x, y), target=1, n_steps=16)
    assert isinstance(ours, tuple) and len(ours) == 2
    close(ours[0], ref[0])
    close(ours[1], ref[1])


def test_completeness_sum_equals_output_difference(cnn64):
    """Attributions sum to f(x) - f(baseline) within the reported delta (f computed here)."""
    x = x_img()
    baseline = 0.1
    attr, delta = ls.attribute(
        cnn64, x, 4, n_steps=50, baselines=baseline, return_convergence_delta=True
    )
    with torch.no_grad():
        diff = cnn64(x)[:, 4] - cnn64(torch.full_like(x, baseline))[:, 4]
    total = attr.flatten(1).sum(1)
    torch.testing.assert_close(total - diff, delta, rtol=0, atol=1e-12)
    assert (delta.abs() <= 1e-3 * diff.abs().clamp_min(1e-6)).all(), (delta, diff)


def test_integrated_gradients_at_embedding_matches_layer_ig(tfm64):
    t = ids()
    base = torch.zeros_like(t)
    ours, delta = ls.attribute(
        tfm64,
        t,
        1,
        method="integrated_gradients",
        baselines=base,
        n_steps=16,
        embedding="embed",
        embedding_reduce=None,
        return_convergence_delta=True,
    )
    lig = captum_attr.LayerIntegratedGradients(tfm64, tfm64.embed)
    ref, ref_delta = lig.attribute(
        t, baselines=base, target=1, n_steps=16, return_convergence_delta=True
    )
    close(ours, ref)
    scale = float(ours.flatten(1).sum(1).abs().max())
    torch.testing.assert_close(delta, ref_delta, rtol=0, atol=1e-5 * scale)
    # default: one value per token (sum over the embedding dim), found without naming the layer
    close(ls.attribute(tfm64, t, 1, baselines=base, n_steps=16), ref.sum(-1))


def test_gradient_at_embedding_matches_layer_gradient(tfm64):
    t = ids()
    ours = ls.attribute(tfm64, t, 2, method="gradient", abs=False, embedding_reduce=None)
    ref = captum_attr.LayerGradientXActivation(
        tfm64, tfm64.embed, multiply_by_inputs=False
    ).attribute(t, target=2)
    close(ours, ref)


@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_matches_captum_saliency_over_same_noise(cnn64, variant):
    """Captum's NoiseTunnel draws from the global RNG in its own layout; we feed the same draws
    (regenerated with noise_draws) to Captum's Saliency and reduce them the same way."""
    x = x_img()
    n, seed = 6, 123
    ours = ls.attribute(
        cnn64,
        x,
        1,
        method="smoothgrad",
        n_samples=n,
        stdevs=0.3,
        variant=variant,
        seed=seed,
        abs=False,
    )
    sal = captum_attr.Saliency(cnn64)
    stds = noise_stdevs([x], 0.3)
    draws = [sal.attribute(x + e[0], target=1, abs=False) for e in noise_draws([x], stds, n, seed)]
    stack = torch.stack(draws)
    ref = {
        "smoothgrad": stack.mean(0),
        "smoothgrad_sq": (stack**2).mean(0),
        "vargrad": (stack**2).mean(0) - stack.mean(0) ** 2,
    }[variant]
    close(ours, ref)


def test_smoothgrad_around_integrated_gradients(mlp64):
    x = x_mlp()
    ours = ls.attribute(
        mlp64,
        x,
        0,
        method="smoothgrad",
        base="integrated_gradients",
        n_samples=4,
        stdevs=0.2,
        seed=5,
        n_steps=8,
    )
    ig = captum_attr.IntegratedGradients(mlp64)
    draws = [
        ig.attribute(x + e[0], target=0, n_steps=8)
        for e in noise_draws([x], noise_stdevs([x], 0.2), 4, 5)
    ]
    close(ours, torch.stack(draws).mean(0))


def test_smoothgrad_seed_reproducible_and_chunk_independent(cnn64):
    x = x_img()
    a = ls.attribute(cnn64, x, 1, method="smoothgrad", n_samples=5, seed=9)
    b = ls.attribute(cnn64, x, 1, method="smoothgrad", n_samples=5, seed=9, internal_batch_size=3)
    c = ls.attribute(cnn64, x, 1, method="smoothgrad", n_samples=5, seed=10)
    close(a, b, rtol=1e-12)
    assert not torch.allclose(a, c)
    state = torch.random.get_rng_state()
    ls.attribute(cnn64, x, 1, method="smoothgrad", n_samples=2)
    assert torch.equal(state, torch.random.get_rng_state()), (
        "smoothgrad must not use the global RNG"
    )


@pytest.mark.parametrize("layer", [None, "features.0", "features.3"])
def test_grad_cam_matches_captum(cnn64, layer):
    x = x_img()
    ours = ls.attribute(cnn64, x, [0, 1, 2, 3], method="grad_cam", layer=layer)
    module = cnn64.get_submodule(layer or "features.3")
    cam = captum_attr.LayerGradCam(cnn64, module).attribute(
        x, target=[0, 1, 2, 3], relu_attributions=True
    )
    ref = captum_attr.LayerAttribution.interpolate(cam, (12, 12), interpolate_mode="bilinear")
    close(ours, ref)


def test_grad_cam_vit_tokens_on_patch_grid():
    """Captum's LayerGradCam reads dim 1 as channels, so token layouts are checked by hand."""
    torch.manual_seed(5)
    vit = TinyViT().double().eval()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    ours = ls.attribute(vit, x, 1, method="grad_cam", layer="block")
    acts = []
    h = vit.block.register_forward_hook(lambda m, i, o: acts.append(o))
    out = vit(x)[:, 1].sum()
    h.remove()
    (g,) = torch.autograd.grad(out, acts[0])
    a = acts[0][:, 1:].transpose(1, 2).reshape(2, 16, 4, 4)
    g = g[:, 1:].transpose(1, 2).reshape(2, 16, 4, 4)
    ref = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    close(ours, F.interpolate(ref, (16, 16), mode="bilinear"))
    explicit = ls.attribute(
        vit, x, 1, method="grad_cam", layer="block", token_grid=(4, 4), skip_tokens=1
    )
    close(explicit, ours, rtol=1e-12)


def test_grad_cam_per_token_for_token_inputs(tfm64):
    t = ids()
    ours = ls.attribute(tfm64, t, 0, method="grad_cam", layer="encoder.layers.1")
    acts = []
    h = tfm64.encoder.layers[1].register_forward_hook(lambda m, i, o: acts.append(o))
    with torch.enable_grad():
        score = tfm64(t)[:, 0].sum()
    h.remove()
    (g,) = torch.autograd.grad(score, acts[0])
    ref = F.relu((g.mean(1, keepdim=True) * acts[0]).sum(-1))
    assert ours.shape == t.shape
    close(ours, ref.detach())
