"""ls.Recorder in memory: what step() and epoch() record, budgets and thinning, bad inputs."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import layerscope as ls
from digits import DigitsCNN, load, train
from layerscope.record import RecorderWarning, ThinnedError, parse_budget
from layerscope.record.histograms import choose_edges, count
from layerscope.record.thinning import choose_drop, reduce_array

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    x_train, y_train, x_test, y_test = load()
    return x_train[:320], y_train[:320], x_test[:64], y_test[:64]


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return DigitsCNN(width=4)


class Tiny(nn.Module):
    """A model with BatchNorm and Dropout, to check what epoch() must give back."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.relu(self.bn(self.fc1(x)))))


def tiny_steps(model: nn.Module, rec, n: int, opt=None, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(n):
        x = torch.randn(16, 6, generator=g)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        rec.step(loss=loss)
        opt.step()


# -- what is recorded --------------------------------------------------------------------------


def test_snapshots_are_bit_exact_at_every_epoch(data):
    model = small_model()
    rec = ls.Recorder(model, probe=data[2][:8])
    expected: list[dict[str, torch.Tensor]] = []
    train(
        model,
        4,
        recorder=rec,
        data=data,
        on_epoch=lambda e: expected.append({k: v.clone() for k, v in model.named_parameters()}),
    )
    assert rec.epochs == [0, 1, 2, 3]
    for e, params in enumerate(expected):
        for name, value in params.items():
            snap = rec.snapshot(name, e, exact=True)
            assert snap.exact and snap.shape == tuple(value.shape) and snap.dtype == "float32"
            assert snap.array.dtype == np.float32
            assert np.array_equal(snap.array, value.detach().numpy()), (name, e)
    # they really differ between epochs (training moved them)
    w0 = rec.snapshot("features.0.weight", 0).array
    assert not np.array_equal(w0, rec.snapshot("features.0.weight", 3).array)


def test_step_series_epoch_metrics_and_activations(data):
    model = small_model()
    rec = ls.Recorder(model, probe=data[2][:8], layers=["features.1", "classifier.3"])
    accs = train(model, 2, recorder=rec, data=data)
    steps = rec.num_steps
    assert steps == 2 * 10  # 320 samples / batch 32
    loss = rec.scalars()["loss"]
    assert loss.shape == (steps,) and np.isfinite(loss).all()
    assert np.allclose(rec.metrics()["val_acc"], accs)
    assert rec.epoch_steps().tolist() == [10, 20]
    assert rec.layers == ["features.1", "classifier.3"]
    act = rec.activation("classifier.3", 1)
    assert act.exact and act.shape == (8, 10)
    stats = rec.stats(1)
    assert set(stats["activations"]) == {"features.1", "classifier.3"}
    dead = stats["activations"]["features.1"]["dead"]
    assert 0.0 <= dead <= 1.0
    assert stats["params"]["classifier.3.weight"]["nan"] == 0
    for name in rec.parameters:
        g = rec.grad_norms(name)
        assert g.shape == (steps,) and np.isfinite(g).all() and (g >= 0).all()


def test_grad_norm_and_update_ratio_values():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    rec = ls.Recorder(model, ratio_every=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    expected_norms, expected_ratios = [], []
    for i in range(3):
        loss = model(torch.randn(4, 5)).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        rec.step(loss=loss, lr=0.05, batch=i)
        expected_norms.append(float(model.weight.grad.norm()))
        before = model.weight.detach().clone()
        opt.step()
        with torch.no_grad():
            expected_ratios.append(float((model.weight - before).norm() / before.norm()))
    rec.epoch()
    assert np.allclose(rec.grad_norms("weight"), expected_norms, rtol=1e-5)
    # the last step's update is measured by epoch(), after the final opt.step()
    assert np.allclose(rec.update_ratios("weight"), expected_ratios, rtol=1e-4)
    assert rec.scalars()["batch"].tolist() == [0, 1, 2]


def test_update_ratio_is_nan_when_the_optimizer_did_not_step():
    model = nn.Linear(3, 2)
    rec = ls.Recorder(model, ratio_every=1)
    for i in range(4):
        model(torch.randn(2, 3)).sum().backward()  # gradient accumulation: step every 2nd batch
        rec.step(loss=torch.tensor(1.0))
        if i % 2 == 1:
            with torch.no_grad():
                model.weight -= 0.1 * model.weight.grad
            model.zero_grad()
    rec.epoch()
    r = rec.update_ratios("weight")
    assert math.isnan(r[0]) and r[1] > 0 and math.isnan(r[2]) and r[3] > 0
    assert math.isnan(rec.update_ratios("bias")[1])  # the bias was not updated either


def test_update_ratios_are_measured_every_tenth_step_by_default():
    model = Tiny()
    rec = ls.Recorder(model)
    tiny_steps(model, rec, 25)
    rec.epoch()
    r = rec.update_ratios("fc1.weight")
    assert np.flatnonzero(np.isfinite(r)).tolist() == [0, 10, 20]
    off = ls.Recorder(model, ratio_every=0)
    tiny_steps(model, off, 3)
    off.epoch()
    assert np.isnan(off.update_ratios("fc1.weight")).all() and off._ref is None
    assert np.isfinite(off.grad_norms("fc1.weight")).all()


def test_every_measures_grads_on_every_kth_step_only():
    model = Tiny()
    rec = ls.Recorder(model, every=3)
    tiny_steps(model, rec, 7)
    rec.epoch()
    g = rec.grad_norms("fc1.weight")
    assert np.isfinite(g[[0, 3, 6]]).all()
    assert np.isnan(g[[1, 2, 4, 5]]).all()
    assert np.isfinite(rec.scalars()["loss"]).all()


def test_step_does_not_read_back_to_the_host(monkeypatch):
    model = Tiny()
    rec = ls.Recorder(model)
    tiny_steps(model, rec, 1)

    def forbidden(*args, **kwargs):
        raise AssertionError("step() synchronised with the host")

    with monkeypatch.context() as m:
        for attr in ("item", "cpu", "numpy", "tolist", "__float__", "__bool__", "__int__"):
            m.setattr(torch.Tensor, attr, forbidden)
        tiny_steps(model, rec, 5, seed=1)
    rec.epoch()
    assert np.isfinite(rec.grad_norms("fc2.weight")).all()


def test_histograms_use_the_same_bins_every_epoch():
    model = Tiny()
    rec = ls.Recorder(model, bins=16)
    for _ in range(3):
        tiny_steps(model, rec, 3)
        rec.epoch()
    with torch.no_grad():
        model.fc1.weight.mul_(100.0)  # far outside the first epoch's range
        model.fc1.weight[0, 0] = float("nan")
        model.fc1.weight[0, 1] = float("-inf")
    rec.epoch()
    h = rec.histograms("fc1.weight")
    assert h.edges.shape == (17,)
    assert h.epochs.tolist() == [0, 1, 2, 3]
    assert h.counts.shape == (4, 16)
    n = model.fc1.weight.numel()
    assert (h.counts.sum(1) + h.underflow + h.overflow + h.nan == n).all()
    assert h.underflow[:3].sum() + h.overflow[:3].sum() == 0  # headroom holds normal training
    assert h.nan[3] == 1 and h.underflow[3] >= 1 and h.overflow[3] > 0
    assert np.array_equal(h.edges, choose_edges(*_range(rec, "fc1.weight"), 16))


def _range(rec, name):
    s = rec.stats(0)["params"][name]
    return s["min"], s["max"]


def test_change_and_layer_change(data):
    model = small_model()
    rec = ls.Recorder(model)
    train(model, 3, recorder=rec, data=data)
    w1 = rec.snapshot("classifier.3.weight", 1).array.astype(np.float64)
    w2 = rec.snapshot("classifier.3.weight", 2).array.astype(np.float64)
    assert rec.change(2)["classifier.3.weight"] == pytest.approx(
        np.linalg.norm(w2 - w1) / np.linalg.norm(w1)
    )
    assert rec.change(0) == {}
    b1 = rec.snapshot("classifier.3.bias", 1).array.astype(np.float64)
    b2 = rec.snapshot("classifier.3.bias", 2).array.astype(np.float64)
    num = np.sum((w2 - w1) ** 2) + np.sum((b2 - b1) ** 2)
    den = np.sum(w1**2) + np.sum(b1**2)
    overlay = rec.layer_change()  # last epoch vs the one before
    assert set(overlay) == {"features.0", "features.2", "classifier.1", "classifier.3"}
    assert overlay["classifier.3"] == pytest.approx(math.sqrt(num / den))
    assert rec.layer_change(0, 2)["features.0"] > 0


def test_layer_change_of_every_module_equals_brute_force(data):
    model = small_model()
    rec = ls.Recorder(model)
    train(model, 3, recorder=rec, data=data)
    want: dict[str, list[float]] = {}
    for name in rec.parameters:
        a = rec.snapshot(name, 0).array.astype(np.float64)
        b = rec.snapshot(name, 2).array.astype(np.float64)
        num, den = want.setdefault(name.rpartition(".")[0], [0.0, 0.0])
        want[name.rpartition(".")[0]] = [num + np.sum((b - a) ** 2), den + np.sum(a**2)]
    got = rec.layer_change(0, 2)
    assert set(got) == set(want)
    for module, (num, den) in want.items():
        assert got[module] == pytest.approx(math.sqrt(num / den), rel=1e-6), module


def test_epoch_keeps_the_promises():
    torch.manual_seed(0)
    model = Tiny()
    rec = ls.Recorder(model, probe=torch.randn(10, 6))
    tiny_steps(model, rec, 3)
    model.train()
    model.fc2.weight.requires_grad_(False)
    grads = {n: (p.grad, p.grad.clone()) for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    rec.epoch()
    assert model.training and model.bn.training and model.drop.training
    assert not model.fc2.weight.requires_grad and model.fc1.weight.requires_grad
    for n, p in model.named_parameters():
        if n in grads:
            assert p.grad is grads[n][0] and torch.equal(p.grad, grads[n][1])
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), n
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    assert set(rec.layers) == {"fc1", "bn", "drop", "fc2"}


# -- budget and thinning -----------------------------------------------------------------------


def test_thinning_keeps_first_last_and_pinned_and_says_what_it_dropped():
    model = nn.Linear(100, 100)  # 40 kB of weights an epoch
    rec = ls.Recorder(model, budget=200_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for e in range(12):
            with torch.no_grad():
                model.weight.add_(0.01)
            rec.epoch(val=e)
            if e == 3:
                rec.pin()
            assert rec.nbytes <= rec.budget
    assert rec.epochs == list(range(12))
    kept = rec.snapshot_epochs("weight")
    assert {0, 3, 11} <= set(kept) and len(kept) < 12
    dropped = {t["epoch"] for t in rec.thinned if t["action"] == "dropped"}
    assert dropped == set(range(12)) - set(kept)
    assert all("weight" in t["tensors"] and not t["on_disk"] for t in rec.thinned)
    assert any(
        issubclass(w.category, RecorderWarning) and "rec.thinned" in str(w.message) for w in caught
    )
    gone = min(dropped)
    with pytest.raises(ThinnedError, match=f"epoch {gone}"):
        rec.snapshot("weight", gone)
    for e in (0, 3, 11):
        assert rec.snapshot("weight", e, exact=True).exact
    # histograms, stats, metrics and change survive thinning for every epoch
    assert rec.histograms("weight").epochs.tolist() == list(range(12))
    assert rec.metrics()["val"].tolist() == list(range(12))
    assert rec.stats(gone)["params"]["weight"]["numel"] == 100 * 100
    assert rec.pinned == [3]
    # kept epochs stay evenly spread: no gap much larger than the average
    gaps = np.diff(kept)
    assert gaps.max() <= 2 * max(1, round(11 / (len(kept) - 1)))


def test_big_tensors_are_kept_at_reduced_resolution_first():
    model = nn.Linear(400, 400)  # 160k values > reduced_elements
    rec = ls.Recorder(model, budget=2_400_000, reduced_elements=4096)
    with pytest.warns(RecorderWarning, match="reduced resolution"):
        for _ in range(5):
            rec.epoch()
    assert rec.nbytes <= rec.budget
    old = rec.snapshot("weight", 0)
    assert not old.exact and old.array.size <= 4096 and old.shape == (400, 400)
    assert old.array.dtype == np.float32
    assert rec.snapshot("weight", 4).exact
    with pytest.raises(ThinnedError, match="reduced resolution"):
        rec.snapshot("weight", 0, exact=True)
    assert any(t["action"] == "reduced" and t["epoch"] == 0 for t in rec.thinned)


def _numpy_bytes_reachable(obj, model) -> int:
    """Bytes of the distinct numpy buffers reachable from ``obj`` (an independent count)."""
    seen_obj: set[int] = set()
    seen_buf: dict[int, int] = {}
    skip = {id(model)}
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen_obj or id(o) in skip:
            continue
        seen_obj.add(id(o))
        if isinstance(o, np.ndarray):
            if not isinstance(o, np.memmap):
                base = o
                while isinstance(base.base, np.ndarray):
                    base = base.base
                seen_buf[base.__array_interface__["data"][0]] = base.nbytes
            continue
        if isinstance(o, (torch.Tensor, str, bytes, int, float, type)):
            continue
        if isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set)):
            stack.extend(o)
        elif hasattr(o, "__dict__"):
            stack.extend(vars(o).values())
    return sum(seen_buf.values())


def test_budget_is_respected_counting_every_array_held(data):
    model = small_model()
    budget = 150_000
    rec = ls.Recorder(model, probe=data[2][:8], budget=budget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecorderWarning)
        train(model, 6, recorder=rec, data=data)
    held = _numpy_bytes_reachable(rec, model)
    assert held <= budget, held
    assert rec.nbytes <= budget
    assert rec.thinned


def _counted_afresh(rec) -> int:
    return rec._log.nbytes + sum(r.nbytes for r in rec._records.values())


def test_nbytes_stays_exact_and_an_epoch_counts_only_its_own_record(data, monkeypatch):
    """rec.nbytes is kept as a running count: exact through thinning and histograms filled in
    later, and an epoch() of a long run does not walk every record (that was quadratic)."""
    from layerscope.record.history import EpochRecord

    model = small_model()
    rec = ls.Recorder(model, probe=data[2][:8], budget=150_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecorderWarning)
        train(model, 6, recorder=rec, data=data)
    assert rec.thinned  # arrays were reduced and dropped along the way
    assert rec.nbytes == _counted_afresh(rec)
    rec.stats(0)  # histograms and stats filled in from what is held
    rec.histograms("features.0.weight")
    assert rec.nbytes == _counted_afresh(rec)

    counted: list[int] = []
    real = EpochRecord.nbytes.fget
    monkeypatch.setattr(
        EpochRecord, "nbytes", property(lambda r: counted.append(r.epoch) or real(r))
    )
    tiny = Tiny()
    long_run = ls.Recorder(tiny)
    for _ in range(40):
        tiny_steps(tiny, long_run, 1)
        long_run.epoch()
    assert len(counted) <= 40 + 1  # each record once when added (and all once at the first count)
    assert long_run.nbytes == _counted_afresh(long_run)


def test_nbytes_of_a_reopened_store_counts_what_it_loaded(tmp_path, data):
    model = small_model()
    rec = ls.Recorder(model, probe=data[2][:8], store=tmp_path / "run")
    train(model, 2, recorder=rec, data=data)
    rec.close()
    run = ls.Recorder.open(tmp_path / "run")
    assert run.nbytes == _counted_afresh(run)
    run.stats(1)
    assert run.nbytes == _counted_afresh(run)


# -- bad inputs --------------------------------------------------------------------------------


def test_nan_and_non_scalar_losses_are_recorded_and_flagged():
    model = Tiny()
    rec = ls.Recorder(model)
    tiny_steps(model, rec, 2)
    with pytest.warns(RecorderWarning, match="not a scalar"):
        rec.step(loss=torch.tensor([1.0, 3.0]))
    rec.step(loss=torch.tensor(float("nan")))
    rec.step(loss=float("inf"))
    rec.step(loss=np.float32(0.5))
    with pytest.warns(RecorderWarning, match="NaN or Inf at 2 step"):
        rec.epoch()
    loss = rec.scalars()["loss"]
    assert loss[2] == 2.0 and math.isnan(loss[3]) and loss[4] == math.inf and loss[5] == 0.5
    flags = {(f["flag"], f["step"]) for f in rec.flags}
    assert {("non_scalar", 2), ("nan_loss", 3), ("nan_loss", 4)} <= flags
    with pytest.raises(TypeError, match="must be a number or a scalar tensor"):
        rec.step(loss="0.3")
    with pytest.raises(TypeError, match=re.escape("epoch(acc=...)")):
        rec.epoch(acc=[0.1])


def test_parameters_added_and_removed_between_epochs():
    model = Tiny()
    rec = ls.Recorder(model)
    tiny_steps(model, rec, 2)
    rec.epoch()
    model.extra = nn.Linear(2, 2)
    rec.epoch()
    del model.extra
    model.fc2 = nn.Linear(8, 3)  # same name, a new parameter object
    tiny_steps(model, rec, 2)
    rec.epoch()
    changes = [f for f in rec.flags if f["flag"] == "parameters_changed"]
    assert changes[0]["added"] == ["extra.weight", "extra.bias"] and changes[0]["epoch"] == 1
    assert changes[1]["removed"] == ["extra.weight", "extra.bias"]
    assert changes[1]["replaced"] == ["fc2.weight", "fc2.bias"]
    assert rec.snapshot_epochs("extra.weight") == [1]
    assert rec.histograms("extra.weight").epochs.tolist() == [1]
    assert np.isnan(rec.grad_norms("extra.weight")).all()
    assert np.isfinite(rec.grad_norms("fc2.weight")[-2:]).all()  # the new fc2 is followed
    with pytest.raises(KeyError, match=re.escape("extra.weight")):
        rec.snapshot("extra.weight", 2)


def test_model_moved_to_another_dtype_mid_training():
    torch.manual_seed(0)
    model = Tiny()
    rec = ls.Recorder(model, probe=torch.randn(4, 6), ratio_every=1)
    tiny_steps(model, rec, 2)
    model.to("cpu")  # a no-op move is not a change
    tiny_steps(model, rec, 1)
    model.double()
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        loss = model(torch.randn(16, 6, generator=g, dtype=torch.float64)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        rec.step(loss=loss)
        opt.step()
    rec.epoch()  # the float32 probe follows the model to float64
    moves = [f for f in rec.flags if f["flag"] == "device_changed"]
    assert len(moves) == 1 and moves[0]["step"] == 3 and moves[0]["to"] == "cpu/float64"
    assert rec.snapshot("fc1.weight").dtype == "float64"
    assert np.isfinite(rec.grad_norms("fc1.weight")).all()
    assert np.isfinite(rec.update_ratios("fc1.weight")[3:]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_moved_to_cuda_mid_training():
    torch.manual_seed(0)
    model = Tiny()
    rec = ls.Recorder(model, probe=torch.randn(4, 6))
    tiny_steps(model, rec, 2)
    model.cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        loss = model(torch.randn(16, 6, device="cuda")).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        rec.step(loss=loss)
        opt.step()
    rec.epoch()
    assert rec.snapshot("fc1.weight").array.shape == (8, 6)
    assert np.isfinite(rec.grad_norms("fc1.weight")).all()
    assert np.isfinite(rec.scalars()["loss"]).all()
    assert any(f["flag"] == "device_changed" for f in rec.flags)


def test_bad_arguments_get_clear_errors():
    model = Tiny()
    with pytest.raises(TypeError, match=re.escape("torch.nn.Module")):
        ls.Recorder("model")
    with pytest.raises(ValueError, match="'512MB'"):
        ls.Recorder(model, budget="lots")
    with pytest.raises(ValueError, match="every"):
        ls.Recorder(model, every=0)
    with pytest.raises(KeyError, match="fc3"):
        ls.Recorder(model, layers=["fc3"])
    with pytest.raises(KeyError, match="params"):
        ls.Recorder(model, params=["nope"])
    with pytest.raises(TypeError, match="probe"):
        ls.Recorder(model, probe="x")
    with pytest.raises(ValueError, match="store="):
        ls.Recorder(model, mode="append")
    rec = ls.Recorder(model)
    with pytest.raises(LookupError, match="no epoch recorded yet"):
        rec.snapshot("fc1.weight")
    rec.epoch()
    with pytest.raises(KeyError, match=re.escape("Did you mean 'fc1.weight'")):
        rec.snapshot("fc1.weigth", 0)
    with pytest.raises(KeyError, match=re.escape("recorded epochs: [0]")):
        rec.snapshot("fc1.weight", 7)


def test_params_filter_records_only_the_chosen_parameters():
    model = Tiny()
    rec = ls.Recorder(model, params=["fc1", "fc2.bias"])
    tiny_steps(model, rec, 1)
    rec.epoch()
    assert rec.parameters == ["fc1.weight", "fc1.bias", "fc2.bias"]


# -- helpers -----------------------------------------------------------------------------------


def test_parse_budget():
    assert parse_budget("512MB") == 512_000_000
    assert parse_budget("2GB") == 2_000_000_000
    assert parse_budget("1.5 GiB") == int(1.5 * 2**30)
    assert parse_budget(1234) == 1234
    with pytest.raises(ValueError):
        parse_budget("-3MB")


def test_choose_drop_keeps_an_even_spacing():
    kept = list(range(10))
    for _ in range(6):
        kept.remove(choose_drop(kept, protected=[0, 9]))
    assert kept[0] == 0 and kept[-1] == 9 and len(kept) == 4
    assert max(np.diff(kept)) <= 4
    assert choose_drop([0, 5], protected=[]) is None


def test_reduce_array_block_means_and_nan():
    a = np.arange(64, dtype=np.float32).reshape(8, 8)
    a[0, 0] = np.nan
    r = reduce_array(a, 16)
    assert r.shape == (4, 4) and np.isnan(r[0, 0])
    assert r[3, 3] == pytest.approx(a[6:, 6:].mean())
    assert reduce_array(np.ones((3, 5, 7)), 10).size <= 10


def test_count_puts_out_of_range_values_in_under_and_overflow():
    h = count(
        torch.tensor([-5.0, 0.25, 0.75, 1.0, 7.0, float("inf"), float("nan")]),
        np.array([0.0, 0.5, 1.0]),
    )
    assert h.counts.tolist() == [1, 2] and h.underflow == 1 and h.overflow == 2 and h.nan == 1


# -- framework adapters (optional imports) -----------------------------------------------------


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` unimportable (None in sys.modules) and forget the made adapters, so the
    missing-library message is tested where the library is installed too."""
    import sys

    from layerscope.record import adapters

    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(adapters, "_made", {})


def test_lightning_adapter_says_what_to_install(monkeypatch):
    _without(monkeypatch, "lightning", "lightning.pytorch", "pytorch_lightning")
    with pytest.raises(ImportError, match="pip install lightning"):
        from layerscope.record.adapters import LightningRecorder  # noqa: F401


def test_hf_adapter_says_what_to_install(monkeypatch):
    _without(monkeypatch, "transformers")
    with pytest.raises(ImportError, match="pip install transformers"):
        from layerscope.record.adapters import HFRecorder  # noqa: F401


def test_recorder_log_attaches_scalars_to_the_last_step():
    model = Tiny()
    rec = ls.Recorder(model)
    with pytest.raises(LookupError, match="step"):
        rec.log(loss=1.0)
    rec.step()
    rec.log(loss=torch.tensor(0.25), lr=0.1)
    rec.epoch()
    assert rec.scalars()["loss"].tolist() == [0.25] and rec.scalars()["lr"].tolist() == [0.1]


def test_lightning_adapter_records_steps_and_epochs(tmp_path):
    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl
    from layerscope.record.adapters import LightningRecorder

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(6, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = (self.net(x) - y).pow(2).mean()
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(0)
    ds = torch.utils.data.TensorDataset(
        torch.randn(64, 6, generator=g), torch.randn(64, 1, generator=g)
    )
    module = Module()
    rec = ls.Recorder(module, ratio_every=1)
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[LightningRecorder(rec)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, torch.utils.data.DataLoader(ds, batch_size=16))
    assert rec.epochs == [0, 1] and rec.num_steps == 8
    assert np.isfinite(rec.scalars()["loss"]).all()
    assert np.isfinite(rec.grad_norms("net.weight")).all()
    assert np.isfinite(rec.update_ratios("net.weight")).all()


def test_hf_adapter_records_steps_and_epochs(tmp_path):
    from transformers import Trainer, TrainingArguments

    from layerscope.record.adapters import HFRecorder

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(6, 1)

        def forward(self, x, labels=None):
            out = self.net(x)
            return {"loss": (out - labels).pow(2).mean(), "logits": out}

    class Data(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 32

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"x": torch.randn(6, generator=g), "labels": torch.randn(1, generator=g)}

    model = Model()
    rec = ls.Recorder(model)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
    )
    Trainer(model=model, args=args, train_dataset=Data(), callbacks=[HFRecorder(rec)]).train()
    assert rec.epochs == [0, 1] and rec.num_steps == 8
    assert np.isfinite(rec.scalars()["loss"]).all()


def test_adapters_drive_the_recorder_through_their_hooks(monkeypatch):
    """The hook logic, with stand-in base classes (the real libraries are optional)."""
    import sys
    import types

    from layerscope.record import adapters

    class Base:
        pass

    lightning = types.ModuleType("lightning")
    lightning_pytorch = types.ModuleType("lightning.pytorch")
    lightning_pytorch.Callback = Base
    transformers = types.ModuleType("transformers")
    transformers.TrainerCallback = Base
    monkeypatch.setitem(sys.modules, "lightning", lightning)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", lightning_pytorch)
    monkeypatch.setitem(sys.modules, "transformers", transformers)
    monkeypatch.setattr(adapters, "_made", {})

    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for make in (adapters.LightningRecorder, adapters.HFRecorder):
        rec = ls.Recorder(model, ratio_every=1)
        cb = make(rec)
        for _ in range(3):
            loss = model(torch.randn(8, 6)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            if make is adapters.LightningRecorder:
                cb.on_before_optimizer_step(None, model, opt)
                opt.step()
                cb.on_train_batch_end(None, model, {"loss": loss.detach()}, None, 0)
            else:
                cb.on_pre_optimizer_step(None, None, None)
                opt.step()
                cb.on_step_end(None, None, None)
                cb.on_log(
                    None, None, None, logs={"loss": float(loss.detach()), "learning_rate": 0.1}
                )
        if make is adapters.LightningRecorder:
            trainer = types.SimpleNamespace(callback_metrics={"val_acc": torch.tensor(0.5)})
            cb.on_train_epoch_end(trainer, model)
            assert rec.metrics()["val_acc"].tolist() == [0.5]
        else:
            state = types.SimpleNamespace(log_history=[{"loss": 1.0}, {"eval_loss": 0.75}])
            cb.on_epoch_end(None, state, None)
            assert rec.metrics()["eval_loss"].tolist() == [0.75]
            assert rec.scalars()["learning_rate"].tolist() == [0.1] * 3
        assert rec.num_steps == 3 and np.isfinite(rec.scalars()["loss"]).all()
        assert np.isfinite(rec.grad_norms("fc1.weight")).all()
        assert np.isfinite(rec.update_ratios("fc1.weight")).all()
        with pytest.raises(TypeError, match=re.escape("ls.Recorder")):
            make("not a recorder")


def test_on_epoch_callbacks_and_a_failing_probe_do_not_stop_training():
    model = Tiny()
    rec = ls.Recorder(model, probe=torch.randn(4, 6))
    seen = []
    stop = rec.on_epoch(seen.append)
    stop_failing = rec.on_epoch(lambda e: 1 / 0)
    with pytest.warns(RecorderWarning, match="callback failed"):
        rec.epoch()
    stop()
    stop_failing()
    model.fc1 = nn.Linear(5, 8)  # no longer takes the probe's 6 features
    with pytest.warns(RecorderWarning, match="probe forward pass failed"):
        assert rec.epoch() == 1
    assert seen == [0]
    assert rec.layers and rec.stats(1)["activations"] == {}
    assert any(f["flag"] == "probe_failed" and f["epoch"] == 1 for f in rec.flags)
    assert all(not m._forward_hooks for m in model.modules())


def test_long_runs_keep_per_parameter_step_series_at_a_lower_rate_within_budget():
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(10)])  # 20 parameters, tiny
    rec = ls.Recorder(model, budget=60_000, ratio_every=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.warns(RecorderWarning, match="step series before step"):
        for _ in range(3):
            for _ in range(100):
                loss = model(torch.randn(4, 2)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                rec.step(loss=loss)
                opt.step()
            rec.epoch()
    assert rec.nbytes <= rec.budget
    decimated = [t for t in rec.thinned if t["action"] == "steps_decimated"]
    assert decimated and decimated[0]["before_step"] > 0
    g = rec.grad_norms("0.weight")
    cut = decimated[-1]["before_step"]
    assert np.isfinite(g[cut:]).all()  # recent steps whole
    assert np.isnan(g[:cut]).any() and np.isfinite(g[:cut]).any()  # older ones at a lower rate
    assert np.isfinite(rec.scalars()["loss"]).all()  # the loss is never thinned
    r = rec.update_ratios("0.weight")
    # update ratios stay defined where grads were kept (NaN only where a float32 update was 0)
    assert np.isfinite(r[np.isfinite(g)]).mean() > 0.9
    assert rec.snapshot("0.weight", 2, exact=True).exact


@pytest.mark.parametrize("snapshot", ["full", ["2"], "stats"])
def test_epoch_on_two_threads_records_what_one_thread_does(monkeypatch, snapshot):
    # A big CPU model under torch's one thread is summarised on two threads (recorder's
    # PARALLEL_ELEMENTS, lowered here): the same stats, histograms, snapshots and changes.
    from layerscope.record import recorder as recorder_module

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 700), nn.ReLU(), nn.Linear(700, 400))
    recs = {threads: ls.Recorder(model, snapshot=snapshot, budget="1GB") for threads in (1, 2)}
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.01)
        for threads, rec in recs.items():
            limit = 1 if threads == 2 else 1 << 40
            monkeypatch.setattr(recorder_module, "PARALLEL_ELEMENTS", limit)
            rec.epoch()
    one, two = recs[1], recs[2]
    assert two._pool is not None and one._pool is None
    for e in range(3):
        assert one.stats(e)["params"] == two.stats(e)["params"]
        assert one._records[e].change == two._records[e].change
        assert one.thinned == two.thinned
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert np.array_equal(one.histograms(name).counts, two.histograms(name).counts)
        if snapshot != "stats":
            for e in range(3):
                a, b = one.snapshot(name, e), two.snapshot(name, e)
                assert a.exact == b.exact and np.array_equal(a.array, b.array)
    if snapshot == "full":  # the change measured in chunks, against numpy's
        w = [one.snapshot("2.weight", e).array.astype(np.float64) for e in (1, 2)]
        want = np.linalg.norm(w[1] - w[0]) / np.linalg.norm(w[0])
        assert one._records[2].change["2.weight"] == pytest.approx(want, rel=1e-5)
    two.close()
    assert two._pool is None


def test_fused_summary_of_a_big_tensor_equals_the_separate_passes():
    from layerscope.record.summary import FUSED_MIN, summarize, summarize_fused

    torch.manual_seed(0)
    w = torch.randn(FUSED_MIN + 12345) * 0.02
    w[:1000] = 0.0
    edges = choose_edges(float(w.min()), float(w.max()), 64)
    stats, hist = summarize_fused(w, edges)
    want = summarize(w)
    assert stats.keys() == want.keys()
    for key in (
        "shape",
        "dtype",
        "numel",
        "zeros",
        "nan",
        "posinf",
        "neginf",
        "finite",
        "min",
        "max",
    ):
        assert stats[key] == want[key], key
    for key in ("mean", "std", "norm"):
        assert stats[key] == pytest.approx(want[key], rel=1e-5), key
    assert np.array_equal(hist.counts, count(w, edges, want).counts)
    assert hist.counts.sum() == w.numel() and (hist.underflow, hist.overflow, hist.nan) == (0, 0, 0)
    assert summarize_fused(w)[1] is None  # no edges: stats only
    # A big mean over a small spread (the one-pass variance cancels): recomputed around the mean.
    shifted = w + 1000.0
    assert summarize_fused(shifted)[0]["std"] == pytest.approx(float(w.double().std()), rel=1e-3)
    # NaN/Inf, values outside the bins, small, other dtypes or devices: the separate passes.
    bad = w.clone()
    bad[-1] = float("nan")
    assert summarize_fused(bad, edges) is None
    assert summarize_fused(w * 10, edges) is None
    assert summarize_fused(w[:1000]) is None and summarize_fused(w.double()) is None


def test_histogram_counts_stay_exact_past_2_to_the_24_in_a_bin():
    # torch.histc counts in float32: 2**24 + 1 rounds to 2**24. Counted in chunks, as int64.
    from layerscope.record.distributed import local_histogram
    from layerscope.record.summary import summarize

    t = torch.zeros(2**24 + 1)
    edges = np.array([-1.0, 1.0])
    assert count(t, edges).counts.tolist() == [2**24 + 1]
    assert count(t, edges, summarize(t)).counts.tolist() == [2**24 + 1]
    assert local_histogram(t, edges).tolist() == [2**24 + 1, 0, 0]


def test_histograms_counted_with_numpy_equal_torch_histc_to_the_value():
    # histograms.histc counts CPU tensors with numpy in histc's own float arithmetic; values on
    # and next to every edge (where another rounding would move them) land where histc puts them.
    from layerscope.record.histograms import histc

    rng = np.random.default_rng(0)
    for trial in range(120):
        dtype = (np.float32, np.float64)[trial % 2]
        a = rng.standard_normal(int(rng.integers(1, 2000)) if trial % 20 else 200_000)
        a = (a * 10.0 ** rng.integers(-6, 4)).astype(dtype)
        lo, hi = float(a.min()), float(a.max())
        edges = np.linspace(
            lo + (hi - lo) * rng.uniform(-0.3, 0.3),
            hi + (hi - lo) * rng.uniform(-0.3, 0.3),
            int(rng.integers(2, 130)),
        )
        if not edges[0] < edges[-1]:
            continue
        on = edges.astype(dtype)
        a = np.concatenate([a, on, np.nextafter(on, np.inf), np.nextafter(on, -np.inf), [np.nan]])
        t = torch.from_numpy(a.astype(dtype))
        bins, lo_e, hi_e = len(edges) - 1, float(edges[0]), float(edges[-1])
        want = torch.histc(t, bins=bins, min=lo_e, max=hi_e).to(torch.int64).numpy()
        assert np.array_equal(histc(t, bins, lo_e, hi_e), want), trial


def test_statistics_of_many_tensors_at_once_equal_those_of_each_alone():
    # distributed.local_summaries batches the small CPU float32 tensors (one concatenation);
    # the same moments and counts as local_moments/local_histogram tensor by tensor, with NaN,
    # Inf, zeros and values outside the edges among them.
    from layerscope.record.distributed import local_histogram, local_moments, local_summaries

    rng = np.random.default_rng(1)
    xs = [torch.from_numpy(rng.standard_normal(n).astype(np.float32)) for n in (5, 300, 70, 9000)]
    xs[1][:100] = 0.0
    xs[2][3] = float("nan")
    xs.append(torch.zeros(0))
    xs.append(torch.randn(3, 40).t())  # not contiguous
    edges = [choose_edges(-1.0, 1.0, 16) for _ in xs]  # standard normals overflow these

    def edges_for(i: int, lo: float, hi: float) -> np.ndarray:
        return edges[i]

    got = local_summaries(xs, edges_for)
    for i, x in enumerate(xs):
        (m, lo, hi), h = got[i]
        want_m, want_lo, want_hi = local_moments(x)
        assert m[:5] == want_m[:5] and m[5:] == pytest.approx(want_m[5:], rel=1e-12), i
        assert (lo, hi) == (want_lo, want_hi) or (math.isnan(lo) and math.isnan(want_lo)), i
        assert np.array_equal(h, local_histogram(x, edges[i], (want_m, want_lo, want_hi))), i
    assert got[3][1][-1] > 0 and got[3][1][-2] > 0  # under- and overflow counted


def test_a_step_series_read_whole_keeps_the_later_of_a_repeated_step():
    from layerscope.record.steplog import Series

    series = Series(
        [
            (np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0])),
            (np.array([2, 3]), np.array([30.0, 4.0])),  # step 2 again: the later value
            (np.array([5, 5, 6]), np.array([5.0, 50.0, 6.0])),  # twice in one segment
            (np.array([9]), np.array([9.0])),  # past the steps asked for
        ]
    )
    np.testing.assert_array_equal(series.dense(8), [1, 2, 30, 4, np.nan, 50, 6, np.nan])
    assert series.dense(0).shape == (0,) and np.isnan(Series().dense(3)).all()
    # A recorder whose epoch() is called every step adds a segment a step to each series; read
    # after every epoch (as a live view does), each read extends what the last one made.
    model = nn.Linear(2, 1)
    rec = ls.Recorder(model, ratio_every=0)
    norms = []
    for s in range(60):
        model.zero_grad()
        model(torch.randn(4, 2)).square().mean().backward()
        norms.append([float(p.grad.norm()) for p in model.parameters()])
        rec.step(loss=float(s))
        if s % 10 == 0:
            rec.log(loss=-1.0)  # log() overwrites the step's loss
        rec.epoch()
        if s % 3 == 0:
            rec.scalars()  # read now and then: kept, then extended
            rec.grad_norms("weight")
    want = [-1.0 if s % 10 == 0 else float(s) for s in range(len(norms))]
    assert rec.scalars()["loss"].tolist() == want
    for j, name in enumerate(("weight", "bias")):
        np.testing.assert_allclose(rec.grad_norms(name), [n[j] for n in norms], rtol=1e-6)
    for key, kept in rec._log.series.items():  # the same as a read from nothing
        np.testing.assert_array_equal(kept.dense(70), Series(list(kept.segments)).dense(70), key)
    series = rec._log.series["loss"]
    assert len(series.segments) >= 60  # (one a step: what the kept read saves walking)
    held = rec._log.nbytes
    rec._log._recount()
    assert rec._log.nbytes == held
    # A series whose segments were replaced (decimated) is read afresh.
    rec._log.decimate(40)
    np.testing.assert_allclose(
        rec.grad_norms("weight")[:40:2], [n[0] for n in norms[:40:2]], rtol=1e-6
    )
    assert np.isnan(rec.grad_norms("weight")[1:40:2]).all()
