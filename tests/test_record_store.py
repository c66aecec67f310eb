"""ls.Recorder's store: written as training goes, crash-safe, reopened read-only in a new process."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import layerscope as ls
import layerscope.record.store as store_module
from digits import DigitsCNN, load, train
from layerscope.record import RecorderWarning, StoreConflictError, StoreError

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    x_train, y_train, x_test, y_test = load()
    return x_train[:320], y_train[:320], x_test[:64], y_test[:64]


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT / "tests")])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def record_run(path: Path, data, epochs: int = 3, **kw) -> ls.Recorder:
    torch.manual_seed(0)
    model = DigitsCNN(width=4)
    rec = ls.Recorder(model, probe=data[2][:8], store=path, **kw)
    train(model, epochs, recorder=rec, data=data)
    rec.flush()
    return rec


@pytest.mark.slow
def test_reopen_in_a_new_process_reads_back_every_accessor(tmp_path, data):
    path = tmp_path / "exp1"
    rec = record_run(path, data, epochs=3)
    rec.pin(1)
    rec.close()
    expected = {}
    for e in rec.epochs:
        for name in rec.parameters:
            expected[f"p/{e}/{name}"] = rec.snapshot(name, e).array
        for layer in rec.layers:
            expected[f"a/{e}/{layer}"] = rec.activation(layer, e).array
    for name in rec.parameters:
        expected[f"g/{name}"] = rec.grad_norms(name)
        expected[f"r/{name}"] = rec.update_ratios(name)
        expected[f"h/{name}"] = rec.histograms(name).counts
        expected[f"e/{name}"] = rec.histograms(name).edges
    expected["loss"] = rec.scalars()["loss"]
    expected["val_acc"] = rec.metrics()["val_acc"]
    np.savez(tmp_path / "expected.npz", **expected)
    summary = {
        "epochs": rec.epochs,
        "pinned": rec.pinned,
        "stats": rec.stats(2)["params"]["features.0.weight"]["std"],
        "change": rec.change(2),
        "layer_change": rec.layer_change(0, 2),
        "steps": rec.epoch_steps().tolist(),
    }
    (tmp_path / "expected.json").write_text(json.dumps(summary))

    child = run_python(
        """
        import json, sys
        import numpy as np
        import layerscope as ls
        path, tmp = sys.argv[1], sys.argv[2]
        run = ls.Recorder.open(path)
        exp = np.load(tmp + "/expected.npz")
        summary = json.load(open(tmp + "/expected.json"))
        assert "torch.nn" not in repr(run)
        for key in exp.files:
            kind, _, rest = key.partition("/")
            if kind == "p":
                e, name = rest.split("/", 1)
                s = run.snapshot(name, int(e), exact=True)
                got = s.array
                assert s.source == "disk" and s.exact
            elif kind == "a":
                e, name = rest.split("/", 1)
                got = run.activation(name, int(e)).array
            elif kind == "g":
                got = run.grad_norms(rest)
            elif kind == "r":
                got = run.update_ratios(rest)
            elif kind == "h":
                got = run.histograms(rest).counts
            elif kind == "e":
                got = run.histograms(rest).edges
            elif key == "loss":
                got = run.scalars()["loss"]
            else:
                got = run.metrics()[key]
            assert got.dtype == exp[key].dtype, key
            assert np.array_equal(got, exp[key], equal_nan=True), key
        assert run.epochs == summary["epochs"] and run.pinned == summary["pinned"]
        assert run.epoch_steps().tolist() == summary["steps"]
        assert run.stats(2)["params"]["features.0.weight"]["std"] == summary["stats"]
        assert run.change(2) == summary["change"]
        lc = run.layer_change(0, 2)
        assert all(abs(lc[k] - v) < 1e-12 for k, v in summary["layer_change"].items())
        print("OK", len(exp.files))
        """,
        str(path),
        str(tmp_path),
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("OK")


KILLED_WRITER = """
import os, sys, time
from pathlib import Path
import numpy as np
import torch
import layerscope as ls
import layerscope.record.store as store
from digits import DigitsCNN, load, train

torch.set_num_threads(1)
path, marker, expected = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
real_write = store.write_file

def slow_write(p, chunks):
    real_write(p, chunks)
    if ".tmp-000005" in str(p):  # epoch 5 is half written: hang here until killed
        marker.write_text(str(os.getpid()))
        time.sleep(300)

store.write_file = slow_write
x_train, y_train, x_test, y_test = load()
data = (x_train[:320], y_train[:320], x_test[:64], y_test[:64])
torch.manual_seed(0)
model = DigitsCNN(width=4)
rec = ls.Recorder(model, probe=x_test[:8], store=path)

def save_expected(e):
    np.savez(expected / f"{e}.npz", **{k: v.detach().numpy() for k, v in model.named_parameters()})

train(model, 8, recorder=rec, data=data, on_epoch=save_expected)
time.sleep(300)
"""


@pytest.mark.slow
def test_kill_9_while_writing_epoch_5_leaves_epochs_0_to_4_readable(tmp_path):
    path, marker, expected = tmp_path / "run", tmp_path / "writing", tmp_path / "expected"
    expected.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT / "tests")])}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path), str(marker), str(expected)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline, "the child never reached epoch 5"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert any(p.name.startswith(".tmp-000005") for p in (path / "epochs").iterdir())

    run = ls.Recorder.open(path)
    assert run.epochs == [0, 1, 2, 3, 4]
    for e in run.epochs:
        want = np.load(expected / f"{e}.npz")
        for name in want.files:
            assert np.array_equal(run.snapshot(name, e, exact=True).array, want[name]), (name, e)
        assert run.histograms("features.0.weight").counts.shape[0] == 5
    assert run.num_steps == 50
    assert np.isfinite(run.scalars()["loss"]).all()

    # and training can go on from there
    model = DigitsCNN(width=4)
    rec = ls.Recorder(model, store=path, mode="append")
    assert not any(p.name.startswith(".tmp-") for p in (path / "epochs").iterdir())
    rec.step(loss=1.0)
    assert rec.epoch() == 5
    rec.close()
    run = ls.Recorder.open(path)
    assert run.epochs == [0, 1, 2, 3, 4, 5] and run.num_steps == 51


def test_rerunning_a_cell_writes_a_new_run_beside_the_old_one(tmp_path, data):
    # A notebook user re-runs the cell that made the Recorder: nothing raises, nothing is lost.
    path = tmp_path / "exp"
    record_run(path, data, epochs=2).close()
    model = DigitsCNN(width=4)
    for k in (2, 3):
        rec = ls.Recorder(model, store=path)
        assert rec._store.path == tmp_path / f"exp-{k}"
        assert f"store {tmp_path / f'exp-{k}'} (a new run: {path} holds an earlier one)" in repr(
            rec
        )
        rec.step(loss=0.25)
        rec.epoch()
        rec.close()
        assert ls.Recorder.open(tmp_path / f"exp-{k}").epochs == [0]
    assert ls.Recorder.open(path).epochs == [0, 1]  # the first run is untouched
    fresh = ls.Recorder(model, store=tmp_path / "fresh")
    assert "a new run" not in repr(fresh) and fresh._store.path == tmp_path / "fresh"
    fresh.close()


def test_an_existing_run_is_kept_appended_overwritten_or_refused(tmp_path, data):
    path = tmp_path / "exp"
    record_run(path, data, epochs=2).close()
    model = DigitsCNN(width=4)
    with pytest.raises(
        StoreConflictError, match=r"already holds a recorded run \(2 epochs\).*mode='append'"
    ):
        ls.Recorder(model, store=path, mode="refuse")
    with pytest.raises(ValueError, match="mode must be"):
        ls.Recorder(model, store=path, mode="replace")

    rec = ls.Recorder(model, store=path, mode="append")
    assert rec.epochs == [0, 1] and rec.num_steps == 20
    rec.step(loss=0.5)
    assert rec.epoch(val_acc=1.0) == 2
    assert rec.change(2)  # against epoch 1, read from the store
    rec.close()
    run = ls.Recorder.open(path)
    assert run.epochs == [0, 1, 2] and run.scalars()["loss"][20] == 0.5
    assert run.histograms("features.0.weight").epochs.tolist() == [0, 1, 2]

    rec = ls.Recorder(model, store=path, mode="overwrite")
    rec.epoch()
    rec.close()
    assert ls.Recorder.open(path).epochs == [0]

    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(StoreConflictError, match="holds no layerscope run"):
        ls.Recorder(model, store=other, mode="overwrite")
    assert (other / "todo.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    ls.Recorder(model, store=empty).close()  # an empty directory is fine
    with pytest.raises(FileNotFoundError, match="no recorded run"):
        ls.Recorder.open(other)


def test_store_that_cannot_be_created_raises_a_clear_error(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=re.escape(str(blocker / "run"))):
        ls.Recorder(model, store=blocker / "run")

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(StoreError, match=r"read-only.*|Read-only") as info:
        ls.Recorder(model, store=tmp_path / "ro")
    assert str(tmp_path / "ro") in str(info.value)


def test_full_disk_mid_training_warns_once_and_goes_on_in_memory(tmp_path, data, monkeypatch):
    real = store_module.write_file

    def full_from_epoch_2(p, chunks):
        if ".tmp-000002" in str(p) or ".tmp-000003" in str(p):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(p, chunks)

    monkeypatch.setattr(store_module, "write_file", full_from_epoch_2)
    path = tmp_path / "full"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = record_run(path, data, epochs=4)
        rec.close()
    msgs = [str(w.message) for w in caught if issubclass(w.category, RecorderWarning)]
    assert len(msgs) == 1, msgs
    assert str(path) in msgs[0] and "disk is full" in msgs[0] and "in memory only" in msgs[0]
    assert isinstance(rec.store_error, StoreError)
    assert rec.epochs == [0, 1, 2, 3] and rec.store_path is None
    assert rec.snapshot("features.0.weight", 3).exact
    run = ls.Recorder.open(path)
    assert run.epochs == [0, 1]
    assert not any(p.name.startswith(".tmp-") for p in (path / "epochs").iterdir())


def test_thinned_epochs_are_read_back_exactly_from_the_store(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(100, 100)
    expected = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = ls.Recorder(model, store=tmp_path / "thin", budget=130_000)
        for _ in range(8):
            with torch.no_grad():
                model.weight.mul_(1.01)
            rec.epoch()
            expected.append(model.weight.detach().clone().numpy())
    assert any("keeps them at full resolution" in str(w.message) for w in caught)
    rec.flush()
    dropped = [t["epoch"] for t in rec.thinned if t["action"] == "dropped"]
    assert dropped and all(t["on_disk"] for t in rec.thinned)
    assert rec.nbytes <= rec.budget
    for e in range(8):
        s = rec.snapshot("weight", e, exact=True)
        assert np.array_equal(s.array, expected[e])
        assert s.source == ("disk" if e in dropped else "memory")
    assert rec.snapshot_epochs("weight") == list(range(8))
    rec.close()


def test_readers_ignore_half_written_and_stray_directories(tmp_path, data):
    path = tmp_path / "exp"
    record_run(path, data, epochs=2).close()
    (path / "epochs" / ".tmp-000002-999").mkdir()
    (path / "epochs" / ".tmp-000002-999" / "p0.npy").write_bytes(b"\x93NUMPY garbage")
    (path / "epochs" / "000007").mkdir()  # a number without a manifest
    run = ls.Recorder.open(path)
    assert run.epochs == [0, 1]
    run.refresh()
    assert run.epochs == [0, 1]


def test_flags_and_activation_stats_are_stored(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    rec = ls.Recorder(model, probe=torch.randn(5, 3), store=tmp_path / "f")
    rec.step(loss=1.0)
    rec.step(loss=float("nan"))
    with pytest.warns(RecorderWarning, match="NaN"):
        rec.epoch()
    model.extra = nn.Linear(4, 4)  # appended to the Sequential: still takes the probe
    rec.epoch()
    rec.close()
    run = ls.Recorder.open(tmp_path / "f")
    flags = run.flags
    assert [f["flag"] for f in flags] == ["nan_loss", "parameters_changed"]
    assert flags == rec.flags
    acts = run.stats(0)["activations"]
    assert set(acts) == {"0", "1"} and acts["1"]["dead"] == rec.stats(0)["activations"]["1"]["dead"]


V2 = Path(__file__).resolve().parent / "data" / "store_v2"


def test_a_version_2_store_still_opens_and_appending_marks_it_version_3(tmp_path):
    # tests/data/store_v2: written by layerscope's store version 2 (a file per tensor, hist.npz,
    # steps.npz): Sequential(Linear(3, 4), ReLU, Linear(4, 2)), 2 epochs of 3 steps.
    expected = np.load(str(V2) + "-expected.npz")
    run = ls.Recorder.open(V2)
    assert run.meta["version"] == 2 and run.epochs == [0, 1]
    for e in (0, 1):
        for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
            assert np.array_equal(run.snapshot(name, e, exact=True).array, expected[f"{e}/{name}"])
    h = run.histograms("0.weight")
    assert h.counts.sum(axis=1).tolist() == [12, 12]
    assert len(run.scalars()["loss"]) == 6 and run.metrics()["acc"].tolist() == [0.5, 0.6]
    assert run.activation("0", 1).array.shape == (5, 4)

    import shutil

    copy = tmp_path / "v2"
    shutil.copytree(V2, copy)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    rec = ls.Recorder(model, store=copy, mode="append")
    rec.epoch(acc=0.7)
    rec.close()
    assert json.loads((copy / "run.json").read_text())["version"] == store_module.VERSION
    again = ls.Recorder.open(copy)
    assert again.epochs == [0, 1, 2]
    assert np.array_equal(again.snapshot("0.weight", 1, exact=True).array, expected["1/0.weight"])
    assert np.array_equal(
        again.snapshot("0.weight", 2, exact=True).array, model[0].weight.detach().numpy()
    )


@pytest.mark.parametrize("where", ["local", "memory"])
def test_small_tensors_share_one_pack_file_big_ones_get_their_own(tmp_path, where):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(600, 600), nn.ReLU(), nn.Linear(600, 3))  # 1.44 MB, 7 kB
    url = tmp_path / "run" if where == "local" else f"memory://packtest-{os.getpid()}/run"
    rec = ls.Recorder(model, probe=torch.randn(4, 600), store=url)
    for e in range(2):
        for _ in range(3):
            model(torch.randn(8, 600)).square().mean().backward()
            rec.step(loss=torch.tensor(float(e)))
            with torch.no_grad():
                for p in model.parameters():
                    p.sub_(0.01 * p.grad)
                    p.grad = None
        rec.epoch()
    rec.close()
    run = ls.Recorder.open(url)
    m = json.loads(run.loc.read_bytes("epochs/000001/epoch.json"))
    assert m["params"]["0.weight"]["file"] == "params/p0.npy"  # over 1 MiB: a file of its own
    assert {m["params"][n]["file"] for n in ("0.bias", "2.weight", "2.bias")} == {"pack.npy"}
    assert {a["file"] for a in m["acts"].values()} == {"pack.npy"}
    assert sorted(run.loc.listdir("epochs/000001")) == ["epoch.json", "pack.npy", "params"]
    # The pack is a valid .npy of bytes: any numpy reads it.
    pack = np.load(io.BytesIO(run.loc.read_bytes("epochs/000001/pack.npy")))
    assert pack.dtype == np.uint8 and pack.ndim == 1
    for e in (0, 1):
        for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
            got = run.snapshot(name, e, exact=True)
            assert got.source == "disk" and got.exact
            assert np.array_equal(got.array, rec.snapshot(name, e).array)
        for layer in ("0", "1", "2"):
            assert np.array_equal(run.activation(layer, e).array, rec.activation(layer, e).array)
    for name in ("0.weight", "2.bias"):
        a, b = run.histograms(name), rec.histograms(name)
        assert np.array_equal(a.counts, b.counts) and np.array_equal(a.edges, b.edges)
        assert a.counts.sum() + a.underflow.sum() + a.overflow.sum() == 2 * np.prod(
            rec.snapshot(name, 0).shape
        )
    assert run.scalars()["loss"].tolist() == [0.0] * 3 + [1.0] * 3
    assert np.array_equal(run.grad_norms("0.weight"), rec.grad_norms("0.weight"), equal_nan=True)
    assert np.array_equal(
        run.update_ratios("0.weight"), rec.update_ratios("0.weight"), equal_nan=True
    )
