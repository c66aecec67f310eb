"""ls.inspect.collect on real models: statistics and top-k equal a brute-force computation over
the whole dataset at once, the memory cap subsamples by its stated rule, the model comes back as
it was, and every bad input gets a clear error."""

from __future__ import annotations

import contextlib
import importlib
import threading

import numpy as np
import pytest
import torch
from torch import nn

import layerscope as ls
from dataset_models import TinyTransformer, tokens, trained_digits
from layerscope.inspect import fused
from layerscope.inspect.batches import DatasetError

LAYERS = ["features.1", "features.4", "classifier.2"]
# the module (the package attribute ls.inspect.collect is the function)
collect_module = importlib.import_module("layerscope.inspect.collect")
scores_module = importlib.import_module("layerscope.inspect.scores")


def brute(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """(N, U, P) of a layer over the whole dataset in one forward pass."""
    out = ls.inspect.capture(model, x, layers=[layer])[layer]
    if out.dim() == 2:
        return out.unsqueeze(-1)
    if out.dim() == 3:
        return out.transpose(1, 2)
    return out.flatten(2)


# collect reduces consecutive batches together up to CHUNK_VALUES values: every batch alone (0),
# chunks of two batches (2**17 here), and the default (one chunk for these 600 samples)
CHUNKINGS = [0, 2**17, collect_module.CHUNK_VALUES]


# On the CPU collect reduces each batch in one pass of the fused kernel (fused.py, numba); the
# torch path (accelerators, or no numba) chunks batches as above. The tests run both.
# With a core torch's threads leave free, the fused path reduces on a worker thread.
PATHS = [("fused", None), ("fused-worker", None)] + [("torch", c) for c in CHUNKINGS]
assert fused.available(), "numba is a test dependency: the fused kernel must run here"


@pytest.fixture(
    scope="module",
    params=PATHS,
    ids=["fused", "fused-worker", "torch-batch", "torch-chunks", "torch-default"],
)
def digits_collected(request):
    model, (x, y, _, _) = trained_digits()
    x, y = x[:600], y[:600]
    path, chunk = request.param
    with pytest.MonkeyPatch.context() as mp, two_threads():
        mp.setattr(fused, "ENABLED", path.startswith("fused"))
        mp.setattr(collect_module, "_spare_core", lambda: path == "fused-worker")
        mp.setattr(fused, "MIN_VALUES", 0)  # these small datasets would take the torch path
        if chunk is not None:
            mp.setattr(collect_module, "CHUNK_VALUES", chunk)
        col = ls.inspect.collect(model, (x, y), layers=LAYERS, batch_size=64, progress=False)
    return model, x, y, col


@pytest.fixture(params=["fused", "fused-worker", "torch"])
def kernel(request, monkeypatch):
    """Run a test through the fused kernel (on the main thread, and on the worker thread)
    and through the torch path."""
    monkeypatch.setattr(fused, "ENABLED", request.param.startswith("fused"))
    monkeypatch.setattr(collect_module, "_spare_core", lambda: request.param == "fused-worker")
    monkeypatch.setattr(fused, "MIN_VALUES", 0)  # these small datasets would take the torch path
    return request.param


@contextlib.contextmanager
def two_threads():
    """collect chunks batches only with several torch threads: make sure the tests chunk."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Skips(nn.Module):
    """A model with a layer its forward never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.used, self.unused = nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        return self.used(x)


@pytest.mark.parametrize("layer", LAYERS)
def test_statistics_equal_brute_force(digits_collected, layer):
    model, x, _, col = digits_collected
    v = brute(model, x, layer).double()
    per_unit = v.transpose(0, 1).reshape(v.shape[1], -1).numpy()
    s = col[layer].stats
    np.testing.assert_allclose(s["mean"], per_unit.mean(1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s["std"], per_unit.std(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s["frac_zero"], (per_unit == 0).mean(1))
    np.testing.assert_allclose(s["max"], per_unit.max(1), rtol=1e-6)
    edges = s["edges"]
    for u in range(0, v.shape[1], 7):
        vals = per_unit[u]
        inside = vals[(vals >= edges[0]) & (vals <= edges[-1])]
        np.testing.assert_array_equal(
            s["hist"][u], np.histogram(inside, edges.astype(np.float32))[0]
        )
        assert s["hist"][u].sum() + s["under"][u] + s["over"][u] == vals.size
    assert np.isnan(s["frac_saturated"]).all()  # ReLU is not bounded above: not applicable


@pytest.mark.parametrize("layer", LAYERS)
def test_top_k_equals_argsort(digits_collected, layer):
    model, x, _, col = digits_collected
    v = brute(model, x, layer)
    per_sample, pos = v.max(dim=2)  # (N, U)
    s = col[layer].stats
    for u in range(v.shape[1]):
        order = np.argsort(-per_sample[:, u].numpy(), kind="stable")[:20]
        np.testing.assert_array_equal(s["top_index"][u], order)
        np.testing.assert_allclose(s["top_value"][u], per_sample[order, u].numpy())
        np.testing.assert_array_equal(s["top_pos"][u], pos[order, u].numpy())


def test_representations_predictions_and_loss(digits_collected):
    model, x, y, col = digits_collected
    out = brute(model, x, "features.4")
    np.testing.assert_allclose(
        col["features.4"].reps.astype(np.float32), out.mean(2).numpy(), rtol=2e-3, atol=2e-3
    )
    assert col["features.4"].reps.dtype == np.float16
    with torch.no_grad():
        logits = model(x)
    np.testing.assert_array_equal(col.predictions, logits.argmax(1).numpy())
    np.testing.assert_allclose(
        col.loss, nn.functional.cross_entropy(logits, y, reduction="none").numpy(), rtol=1e-5
    )
    np.testing.assert_array_equal(col.labels, y.numpy())
    assert col.correct.mean() > 0.8
    assert torch.equal(col.sample(5), x[5])


@pytest.mark.parametrize("chunk", CHUNKINGS)
def test_memory_cap_subsamples_by_stride_keeps_full_stats(chunk, monkeypatch):
    monkeypatch.setattr(collect_module, "CHUNK_VALUES", chunk)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # collect chunks with 2+ threads
    model, (x, _, _, _) = trained_digits()
    x = x[:300]
    full = ls.inspect.collect(model, x, layers=["classifier.2"], progress=False, batch_size=50)
    # 128 float16 = 256 bytes a sample: 64 samples fit in 16 KiB, so the stride grows to 8.
    capped = ls.inspect.collect(
        model, x, layers=["classifier.2"], progress=False, batch_size=50, max_bytes=64 * 256
    )
    assert capped.rep_stride == 8
    np.testing.assert_array_equal(capped.rep_index, np.arange(0, 300, 8))
    np.testing.assert_array_equal(capped["classifier.2"].reps, full["classifier.2"].reps[::8])
    assert any("every 8th" in n for n in capped.notes)
    # batches of an iterable (its length unknown before the pass): the same rows
    batches = [x[i : i + 50] for i in range(0, 300, 50)]
    listed = ls.inspect.collect(
        model, batches, layers=["classifier.2"], progress=False, max_bytes=64 * 256
    )
    np.testing.assert_array_equal(listed.rep_index, capped.rep_index)
    np.testing.assert_array_equal(listed["classifier.2"].reps, capped["classifier.2"].reps)
    for k in ("mean", "std", "hist", "top_index"):
        np.testing.assert_array_equal(
            capped["classifier.2"].stats[k], full["classifier.2"].stats[k]
        )


def test_dataloader_and_iterable_match_tensor():
    model, (x, y, _, _) = trained_digits()
    x, y = x[:200], y[:200]
    ref = ls.inspect.collect(model, (x, y), layers=["features.4"], progress=False, batch_size=64)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)
    via_loader = ls.inspect.collect(model, loader, layers=["features.4"], progress=False)
    gen = ((x[i : i + 32], y[i : i + 32]) for i in range(0, 200, 32))
    via_gen = ls.inspect.collect(model, gen, layers=["features.4"], progress=False)
    for other in (via_loader, via_gen):
        np.testing.assert_allclose(
            other["features.4"].stats["mean"], ref["features.4"].stats["mean"], rtol=1e-6
        )
        np.testing.assert_array_equal(
            other["features.4"].stats["top_index"], ref["features.4"].stats["top_index"]
        )
    assert torch.equal(via_loader.sample(3), x[3])
    assert via_gen.sample(3) is None  # a generator cannot be indexed again


def test_model_comes_back_unchanged():
    model, (x, _, _, _) = trained_digits()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ls.inspect.collect(model, x[:64], layers=LAYERS, progress=False)
    assert model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())
    model.eval()


@pytest.mark.usefixtures("kernel")
def test_transformer_tokens_and_saturation():
    torch.manual_seed(0)
    model = TinyTransformer()
    model.mlp.append(nn.Tanh())
    t = tokens(48)
    col = ls.inspect.collect(model, t, layers=["encoder", "mlp.2"], progress=False, batch_size=16)
    enc = col["encoder"]
    assert enc.layout == "seq" and enc.units == 16 and enc.reps.shape == (48, 16)
    v = ls.inspect.capture(model, t, layers=["mlp.2"])["mlp.2"].transpose(1, 2).double()
    per_unit = v.transpose(0, 1).reshape(16, -1).numpy()
    sat = ((per_unit <= -0.98) | (per_unit >= 0.98)).mean(1)
    np.testing.assert_allclose(col["mlp.2"].stats["frac_saturated"], sat)
    top = col["encoder"].top(0)
    assert len(top) == 20 and 0 <= top[0][2] < 12
    assert col.predictions is not None and col.loss is None
    # a token layer (N, T, D), read units last: everything equals a brute-force computation
    out = ls.inspect.capture(model, t, layers=["encoder"])["encoder"]  # (N, T, D)
    s = enc.stats
    per_unit = out.double().permute(2, 0, 1).reshape(16, -1).numpy()
    np.testing.assert_allclose(s["mean"], per_unit.mean(1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s["std"], per_unit.std(1), rtol=1e-5)
    np.testing.assert_array_equal(s["max"], per_unit.max(1))
    e = s["edges"].astype(np.float32)
    for u in range(16):
        inside = per_unit[u][(per_unit[u] >= e[0]) & (per_unit[u] <= e[-1])]
        np.testing.assert_array_equal(s["hist"][u], np.histogram(inside, e)[0])
    key, pos = out.max(dim=1)  # (N, D): each sample's max over tokens, and its token
    for u in range(16):
        order = np.argsort(-key[:, u].numpy(), kind="stable")[:20]
        np.testing.assert_array_equal(s["top_index"][u], order)
        np.testing.assert_array_equal(s["top_pos"][u], pos[order, u].numpy())
    np.testing.assert_allclose(enc.reps, out.mean(1).numpy(), rtol=2e-3, atol=2e-3)  # float16


@pytest.mark.usefixtures("kernel")
def test_nan_counted_not_dropped():
    model = nn.Sequential(nn.Linear(4, 3))
    x = torch.randn(20, 4)
    x[3, 0] = float("nan")
    col = ls.inspect.collect(model, x, layers=["0"], progress=False)
    s = col["0"].stats
    assert (s["nonfinite"] == 1).all() and (s["count"] == 19).all()
    assert np.isfinite(s["mean"]).all()
    assert col["0"].nonfinite_reps == 1
    assert any("NaN/Inf" in n for n in col.notes)
    assert 3 not in s["top_index"]


@pytest.mark.usefixtures("kernel")
def test_nan_and_inf_in_a_conv_layer_counted_stats_over_finite_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
    x = torch.randn(70, 1, 6, 6)
    x[3, 0, 2, 2] = float("nan")  # spreads to a 3x3 patch of every channel
    x[40, 0, 0, 0] = float("inf")
    col = ls.inspect.collect(model, x, layers=["0"], progress=False, batch_size=32)
    v = ls.inspect.capture(model, x, layers=["0"])["0"].double().transpose(0, 1).reshape(4, -1)
    s = col["0"].stats
    finite = torch.isfinite(v)
    np.testing.assert_array_equal(s["nonfinite"], (~finite).sum(1).numpy())
    np.testing.assert_array_equal(s["nan"], torch.isnan(v).sum(1).numpy())
    for u in range(4):
        vals = v[u][finite[u]].numpy()
        np.testing.assert_allclose(s["mean"][u], vals.mean(), rtol=1e-6)
        np.testing.assert_allclose(s["std"][u], vals.std(), rtol=1e-5)
        assert s["max"][u] == vals.max() and s["min"][u] == vals.min()
        assert s["hist"][u].sum() + s["under"][u] + s["over"][u] == vals.size
    # top-k by each sample's largest finite value (sample 3 keeps its finite positions)
    out = ls.inspect.capture(model, x, layers=["0"])["0"].flatten(2)
    keyed = torch.where(torch.isfinite(out), out, -torch.inf).amax(2)
    for u in range(4):
        order = np.argsort(-keyed[:, u].numpy(), kind="stable")[:20]
        np.testing.assert_array_equal(s["top_index"][u], order)
    assert col["0"].nonfinite_reps == 2
    assert any("2 samples have NaN/Inf" in n for n in col.notes)


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("shape", [(5,), (3, 2, 2)], ids=["vector", "conv"])
def test_a_sample_with_nan_or_huge_values_mid_batch_takes_the_careful_kernel_from_there(shape):
    # batches of 16: sample 21 (mid batch 1) has a NaN, sample 37 (mid batch 2) values near
    # 1e20, whose squares no float32 sum holds; the kernel's stats equal float64 brute force
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, *shape, generator=g)
    x[21].view(-1)[1] = float("nan")
    x[37] = 1e20 * (1 + 0.1 * torch.randn(shape, generator=g))
    col = ls.inspect.collect(
        nn.Sequential(nn.Identity()), x, layers=["0"], batch_size=16, progress=False
    )
    v = x.double().reshape(64, shape[0], -1).transpose(0, 1).reshape(shape[0], -1).numpy()
    s = col["0"].stats
    finite = np.isfinite(v)
    np.testing.assert_array_equal(s["nonfinite"], (~finite).sum(1))
    np.testing.assert_array_equal(s["count"], finite.sum(1))
    for u in range(shape[0]):
        vals = v[u][finite[u]]
        np.testing.assert_allclose(s["mean"][u], vals.mean(), rtol=1e-6)
        np.testing.assert_allclose(s["std"][u], vals.std(), rtol=1e-5)
        assert s["max"][u] == np.float32(vals.max()) and s["min"][u] == np.float32(vals.min())
        assert s["hist"][u].sum() + s["under"][u] + s["over"][u] == vals.size
    # sample 37, the one of values near 1e20, leads every unit's top-k
    assert (s["top_index"][:, 0] == 37).all()


def test_bad_inputs():
    model, (x, y, _, _) = trained_digits()
    with pytest.raises(DatasetError, match="empty"):
        ls.inspect.collect(model, x[:0], progress=False)
    with pytest.raises(DatasetError, match="empty"):
        ls.inspect.collect(model, iter([]), progress=False)
    with pytest.raises(DatasetError, match="labels have 5 entries but the data has 10"):
        ls.inspect.collect(model, x[:10], labels=y[:5], progress=False)
    seq = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    shifting = [torch.randn(4, 1, 8, 8), torch.randn(4, 1, 4, 16)]
    with pytest.raises(DatasetError, match=r"batch 1 has samples of shape \(1, 4, 16\)"):
        ls.inspect.collect(seq, shifting, progress=False)
    with pytest.raises(KeyError, match=r"no module at path 'features\.9'"):
        ls.inspect.collect(model, x[:4], layers=["features.9"], progress=False)

    with pytest.raises(RuntimeError, match="layer 'unused' did not run"):
        ls.inspect.collect(Skips(), torch.randn(3, 4), layers=["unused"], progress=False)
    with pytest.raises(ValueError, match="pool must be"):
        ls.inspect.collect(model, x[:4], pool="median", progress=False)
    with pytest.raises(DatasetError, match="labels must hold numbers"):
        ls.inspect.collect(model, x[:3], labels=["cat", "dog", "cat"], progress=False)
    soft = ls.inspect.collect(model, x[:4], labels=torch.rand(4, 10), progress=False)
    assert soft.loss is None and any("no per-sample loss" in n for n in soft.notes)
    listed = ls.inspect.collect(model, x[:4], labels=[1, 2, 3, 4], progress=False)
    np.testing.assert_array_equal(listed.labels, [1, 2, 3, 4])
    assert listed.loss is not None
    with pytest.raises(ValueError, match="labels range over"):
        ls.inspect.collect(model, (x[:4], torch.tensor([0, 1, 2, 99])), progress=False)


@pytest.mark.parametrize("chunk", [640, scores_module.CHUNK_VALUES])
def test_scores_of_every_batch_are_exact_and_checked(chunk, monkeypatch):
    """Class scores are turned into predictions a chunk of batches at a time (after the first
    batch, alone): every sample's prediction and loss is still its own, and a wrong label in a
    later batch is still reported."""
    monkeypatch.setattr(scores_module, "CHUNK_VALUES", chunk)  # 640: two batches of 32 x 10
    model, (x, y, _, _) = trained_digits()
    x, y = x[:150], y[:150]
    with torch.no_grad():
        logits = model(x)
    ce = nn.functional.cross_entropy(logits, y, reduction="none")

    def doubled(out, t):
        return 2 * nn.functional.cross_entropy(out, t, reduction="none")

    col = ls.inspect.collect(model, (x, y), batch_size=32, loss_fn=doubled, progress=False)
    np.testing.assert_allclose(col.loss, 2 * ce.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(col.predictions, logits.argmax(1).numpy())
    np.testing.assert_allclose(col.probability, logits.softmax(1).amax(1).numpy(), rtol=1e-5)
    wrong = y.clone()
    wrong[100] = 99
    with pytest.raises(ValueError, match=r"labels range over 0\.\.99"):
        ls.inspect.collect(model, (x, wrong), batch_size=32, progress=False)
    with pytest.raises(ValueError, match="one loss per sample"):
        ls.inspect.collect(
            model,
            (x, y),
            batch_size=32,
            progress=False,
            loss_fn=lambda out, t: nn.functional.cross_entropy(out, t),
        )


@pytest.mark.usefixtures("kernel")
def test_std_of_a_large_offset_keeps_its_precision():
    # values 1e4 + N(0, 0.05): a batch's float32 mean is off by up to ~1e-3, which a plain
    # sum of squared deviations would add to the variance
    g = torch.Generator().manual_seed(0)
    x = 1e4 + 0.05 * torch.randn(3000, 3, generator=g) + torch.tensor([0.0, 1.0, -3.0])
    col = ls.inspect.collect(nn.Sequential(nn.Identity()), x, layers=["0"], progress=False)
    per_unit = x.double().t().numpy()
    np.testing.assert_allclose(col["0"].stats["mean"], per_unit.mean(1), rtol=1e-9)
    np.testing.assert_allclose(col["0"].stats["std"], per_unit.std(1), rtol=1e-5)


@pytest.mark.usefixtures("kernel")
def test_bounded_outputs_histogram_zeros_and_saturation_equal_numpy():
    torch.manual_seed(0)
    x = torch.randn(900, 6) * 40  # saturates: exactly 0.0 and the top bound in float32
    for act, (lo, hi) in ((nn.Sigmoid(), (0.0, 1.0)), (nn.ReLU6(), (0.0, 6.0))):
        model = nn.Sequential(nn.Linear(6, 5), act)
        col = ls.inspect.collect(model, x, layers=["1"], progress=False, batch_size=128)
        vals = ls.inspect.capture(model, x, layers=["1"])["1"].double().t().numpy()
        s = col["1"].stats
        e = s["edges"].astype(np.float32)
        assert e[0] == lo and e[-1] == hi
        assert (vals == hi).any() and (vals == 0).any()  # the edge cases occur
        m = 0.01 * (hi - lo)
        for u in range(vals.shape[0]):
            np.testing.assert_array_equal(s["hist"][u], np.histogram(vals[u], e)[0])
            assert s["under"][u] == 0 and s["over"][u] == 0
            assert s["frac_zero"][u] == (vals[u] == 0).mean()
            sat = (vals[u] <= np.float32(lo + m)) | (vals[u] >= np.float32(hi - m))
            assert s["frac_saturated"][u] == sat.mean()


def test_one_shot_data_read_twice_says_what_to_pass():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = torch.randn(20, 4)
    gen = (x[i : i + 5] for i in range(0, 20, 5))
    assert ls.inspect.collect(model, gen, progress=False).n == 20
    with pytest.raises(DatasetError, match="generator that was read to its end already"):
        ls.inspect.collect(model, gen, progress=False)
    it = iter([x[:5]])
    ls.inspect.collect(model, it, progress=False)
    with pytest.raises(DatasetError, match=r"can be read only once.*a DataLoader, or a list"):
        ls.inspect.collect(model, it, progress=False)


def test_skip_missing_leaves_out_layers_that_do_not_run():
    col = ls.inspect.collect(Skips(), torch.randn(6, 4), skip_missing=True, progress=False)
    assert list(col.layers) == ["used"]
    assert any("'unused'" in n and "left out" in n for n in col.notes)


@pytest.mark.usefixtures("kernel")
def test_a_mean_that_overflows_float32_is_counted_as_non_finite():
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.full((6, 1, 4, 4), 3e37)  # finite values whose sum over 16 positions is not
    x[0] = 1.0
    col = ls.inspect.collect(nn.Sequential(conv), x, layers=["0"], progress=False)
    assert (col["0"].stats["nonfinite"] == 0).all()
    assert col["0"].nonfinite_reps == 5
    assert any("5 samples have NaN/Inf" in n for n in col.notes)


@pytest.mark.usefixtures("kernel")
def test_representations_beyond_float16_are_kept_in_float32():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    x = torch.randn(40, 3)
    x[30] = 1e6  # a later batch holds values float16 cannot: the rows so far become float32
    col = ls.inspect.collect(nn.Sequential(lin), x, layers=["0"], batch_size=8, progress=False)
    with torch.no_grad():
        out = lin(x)
    assert col["0"].reps.dtype == np.float32
    # rows kept before the switch went through float16 (relative precision 2**-11)
    np.testing.assert_allclose(col["0"].reps, out.numpy(), rtol=1e-3, atol=1e-3)
    assert col["0"].nonfinite_reps == 0


def test_an_error_while_reducing_on_the_worker_is_raised_and_the_model_is_left_clean(
    monkeypatch,
):
    monkeypatch.setattr(fused, "MIN_VALUES", 0)
    monkeypatch.setattr(collect_module, "_spare_core", lambda: True)
    unitstats = importlib.import_module("layerscope.inspect.unitstats")
    update = unitstats.UnitStats.update_native

    def failing(self, v, start):
        if start >= 64:
            raise MemoryError(f"no room for batch {start}")
        update(self, v, start)

    monkeypatch.setattr(unitstats.UnitStats, "update_native", failing)
    model, (x, _, _, _) = trained_digits()
    with pytest.raises(MemoryError, match="no room for batch 64"):
        ls.inspect.collect(model, x[:256], layers=["features.4"], batch_size=32, progress=False)
    assert not model.features[4]._forward_hooks
    assert not any(t.name.startswith("layerscope-collect") for t in threading.enumerate())
