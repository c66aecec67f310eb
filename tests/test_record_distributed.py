"""The Recorder inside ``torchrun --nproc_per_node=2`` (CPU, gloo): DDP and FSDP2 ``fully_shard``.

Each test starts a real 2-process job running ``bench/distributed_digits.py`` (the digits CNN),
with a bounded timeout, and checks the store it wrote against the unsharded parameters that the
job saved separately (gathered there for the reference only).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import layerscope as ls
from digits import DigitsCNN, load
from layerscope.inspect.capture import capture
from layerscope.record import ThinnedError
from layerscope.record.histograms import count
from layerscope.record.summary import summarize
from layerscope.record.thinning import reduce_array
from torchrun_job import env, kill_job, torchrun, torchrun_cmd

BINS = 64
pytestmark = pytest.mark.slow
_communicated: dict[tuple[str, int], list[int]] = {}


@pytest.mark.parametrize(("mode", "width"), [("ddp", 4), ("fsdp", 4), ("fsdp", 12)])
def test_statistics_from_shards_equal_the_unsharded_models(tmp_path, mode, width):
    store, ref = tmp_path / "run", tmp_path / "ref"
    # DDP: rank 1 changes a replicated weight (said, not hidden); step values averaged over ranks.
    extra = ["--perturb-rank", "1", "--reduce", "mean"] if mode == "ddp" else []
    # FSDP2 at width 12: full snapshots at even epochs, each rank's reduced image at odd ones.
    reduced = (mode, width) == ("fsdp", 12)
    if reduced:
        extra = ["--snapshot", "2"]
    done = torchrun(
        "--mode", mode, "--store", str(store), "--out", str(ref), "--epochs", "2",
        "--width", str(width), "--ref-norms", "--tail-steps", "2", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    run = ls.Recorder.open(store)
    assert run.epochs == [0, 1] and run.meta["model"] == "DigitsCNN" and run.meta["world"] == 2
    names = run.parameters
    assert names[0] == "features.0.weight"  # DDP's "module." prefix is not there
    for e in run.epochs:
        full = np.load(ref / f"params{e}.npz")
        assert sorted(full.files) == sorted(names)
        for name in names:
            w = torch.from_numpy(full[name])
            want = summarize(w)
            got = run.stats(e)["params"][name]
            for key in ("shape", "numel", "nan", "posinf", "neginf", "finite", "min", "max"):
                assert got[key] == want[key], (name, e, key)
            for key in ("mean", "std", "norm", "zeros"):
                assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), (name, e, key)
            h = run.histograms(name)
            assert np.array_equal(h.counts[e], count(w, h.edges, want).counts), (name, e)
            if reduced and e % 2:
                # Stacked from the shards' reduced images: the whole parameter's reduced image.
                snap = run.snapshot(name, e)
                assert not snap.exact, name
                want_img = reduce_array(full[name], 256 * 256)
                assert snap.array.shape == want_img.shape, name
                assert np.allclose(snap.array, want_img, rtol=1e-5, atol=1e-7), name
                with pytest.raises(ThinnedError, match="snapshot policy"):
                    run.snapshot(name, e, exact=True)
                continue
            # Full-resolution snapshots: per shard on disk (FSDP2), whole again when read.
            snap = run.snapshot(name, e, exact=True)
            assert np.array_equal(np.asarray(snap.array), full[name]), (name, e)
    if reduced:
        assert [(t["epoch"], t["action"]) for t in run.thinned] == [(1, "policy_reduced")]
        assert run.snapshot("classifier.1.weight", 1).array.shape == (128, 384)  # 128 x 768 / 2
    if mode == "fsdp":
        shard_files = list((store / "shards" / "000000").glob("r*/*.npy"))
        assert {p.parent.name for p in shard_files} == {"r0", "r1"}
        # Every parameter is sharded: none in rank 0's epoch (its pack, or a file of its own).
        manifest = json.loads((store / "epochs" / "000000" / "epoch.json").read_text())
        assert all("shards" in entry for entry in manifest["params"].values())
        assert not (store / "epochs" / "000000" / "params").exists()
    # Gradient norms are those of the synchronized gradients: the same under DDP and FSDP2.
    loss = run.scalars()["loss"]
    ranks = [np.load(ref / f"losses{r}.npy") for r in (0, 1)]
    want = (ranks[0] + ranks[1]) / 2 if mode == "ddp" else ranks[0]  # reduce="mean" / rank 0's
    assert np.allclose(loss, want, rtol=1e-6) and not np.allclose(ranks[0], ranks[1])
    g = run.grad_norms("classifier.3.weight")
    assert np.isfinite(g).all() and len(g) == run.num_steps == 10
    # Every step's norms are the synchronized gradients' (under DDP measured by rank 1 alone,
    # under FSDP2 summed from the shards), and the update ratio of step 0 (ratio_every=10) the
    # one rank 0 computed from the full weights.
    norms = np.load(ref / "ref_norms.npz")
    recorded = np.load(ref / "recorded_norms.npz")  # rank 0's history after close(): 2 more steps
    for j, name in enumerate(norms["names"]):
        assert np.allclose(run.grad_norms(name), norms["grad"][:10, j], rtol=1e-5, atol=1e-7), name
        assert len(norms["grad"]) == len(recorded[name]) == 12, name
        assert np.allclose(recorded[name], norms["grad"][:, j], rtol=1e-5, atol=1e-7), name
        ratio = run.update_ratios(name)
        assert np.isfinite(ratio[0]) and np.isnan(ratio[1:]).all(), name
        assert ratio[0] == pytest.approx(norms["ratio"][0, j], rel=1e-4, abs=1e-7), name
    # Communication per epoch: a few values per tensor plus the histogram bins (and, sharded,
    # the step norms), never the parameters.
    timing = json.loads((ref / "timing.json").read_text())
    n = len(names)
    steps = 5
    # (DDP: plus, at epoch 1, the row of the tensor rank 1 changed again, from rank 0)
    bound = 8 * (8 + n * (2 + 2 + 7 + BINS + 2) + steps * 3 * n + (9 + BINS + 2))
    assert all(0 < b <= bound for b in timing["communicated"]), (timing, bound)
    _communicated[(mode, width)] = timing["communicated"]
    if (mode, width) == ("fsdp", 12):
        assert timing["param_bytes"] > 10 * max(timing["communicated"])
        if ("fsdp", 4) in _communicated:  # 9x the parameters, the same bytes
            assert timing["communicated"] == _communicated[("fsdp", 4)]
    if mode == "ddp":  # rank 1 changed a replicated weight at epoch 1: said, rank 0's recorded
        flags = [f for f in run.flags if f["flag"] == "params_differ_between_ranks"]
        assert len(flags) == 1 and flags[0]["epoch"] == 1
        assert flags[0]["params"] == ["classifier.3.bias"]
    # The probe's activations (under DDP run and written by rank 1, listed by rank 0's
    # manifest): those of the model with each epoch's parameters, with their stats.
    model = DigitsCNN(width=width)
    probe = load()[2][:8]
    assert run.layers == ["features.0", "features.1", "features.2", "features.3", "features.4",
                          "classifier.0", "classifier.1", "classifier.2", "classifier.3"]  # fmt: skip
    for e in run.epochs:
        full = np.load(ref / f"params{e}.npz")
        if mode == "ddp" and e == 1:  # rank 1's copy of the bias it changed ran its probe
            full = {**full, "classifier.3.bias": full["classifier.3.bias"] + 1.0}
        model.load_state_dict({k: torch.from_numpy(v) for k, v in full.items()})
        want = capture(model, probe)
        stats = run.stats(e)["activations"]
        for layer in run.layers:
            got = run.activation(layer, e).array
            assert np.allclose(got, want[layer].numpy(), rtol=1e-5, atol=1e-6), (layer, e)
            assert stats[layer]["shape"] == list(got.shape) and "dead" in stats[layer]


@pytest.mark.parametrize(
    ("flag", "said"),
    [
        ("--extra-epoch-rank=0", "called rec.epoch() a different number of times"),
        ("--other-model-rank=1", "ranks hold models with different parameter names or shapes"),
    ],
    ids=["epochs-differ", "models-differ"],
)
def test_ranks_that_disagree_fail_clearly_without_hanging(flag, said):
    """One rank calls epoch() once more, or records another model: both ranks say so, and the
    job ends (collectives with a timeout) instead of hanging."""
    t0 = time.monotonic()
    done = torchrun("--mode", "ddp", "--epochs", "1", flag, "--timeout", "20", timeout=90)
    assert done.returncode != 0
    assert "DistributedRecorderError" in done.stderr
    assert said in done.stderr
    assert "rank 0" in done.stderr and "rank 1" in done.stderr  # both ranks say it
    assert time.monotonic() - t0 < 60


def test_a_rank_whose_store_writes_fail_stops_every_rank_writing_without_waiting(tmp_path):
    """Rank 1 (which writes the probe's activations under DDP) cannot write: rank 0 learns it
    from the next collective and stops writing too, instead of waiting minutes for its files;
    both say so, and the training goes on to the end."""
    t0 = time.monotonic()
    done = torchrun(
        "--mode", "ddp", "--store", str(tmp_path / "run"), "--epochs", "2",
        "--fail-store-rank", "1", timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert time.monotonic() - t0 < 60
    assert "could not write rank 1's shards of epoch 0" in done.stderr
    assert "No space left on device" in done.stderr
    assert "another rank could not write its files" in done.stderr or (
        "rank(s) [1] could not write their files of epoch 0" in done.stderr
    )
    assert ls.Recorder.open(tmp_path / "run").epochs == []  # epoch 0 waited for rank 1's files


def test_kill_9_mid_epoch_leaves_the_written_epochs_readable_while_a_follower_watches(tmp_path):
    store, ref, marker = tmp_path / "run", tmp_path / "ref", tmp_path / "epoch"
    job = subprocess.Popen(
        torchrun_cmd(
            "--mode",
            "fsdp",
            "--store",
            str(store),
            "--out",
            str(ref),
            "--epochs",
            "50",
            "--epoch-sleep",
            "0.5",
            "--marker",
            str(marker),
        ),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 90
        while not (store / "run.json").exists():
            assert job.poll() is None, job.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        run = ls.Recorder.open(store, follow=True, interval=0.2)
        run.on_epoch(lambda e: seen.setdefault(e, time.time()))
        while not Path(f"{marker}.3").exists():
            assert job.poll() is None, job.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the job never reached epoch 3"
            time.sleep(0.05)
        time.sleep(0.2)  # into epoch 4's training
        kill_job(job)
        time.sleep(0.6)
        run.close()
    finally:
        kill_job(job)
    assert job.returncode == -signal.SIGKILL
    # The follower saw each epoch within 2 s of its manifest landing.
    for e, at in seen.items():
        landed = (store / "epochs" / f"{e:06d}" / "epoch.json").stat().st_mtime
        assert at - landed < 2.0, (e, at - landed)
    after = ls.Recorder.open(store)
    assert after.epochs[:4] == [0, 1, 2, 3] and after.epochs == list(range(len(after.epochs)))
    assert set(seen) <= set(after.epochs) and {1, 2, 3} <= set(seen)
    for e in after.epochs:
        if (ref / f"params{e}.npz").exists():
            full = np.load(ref / f"params{e}.npz")
            for name in full.files:
                assert np.array_equal(after.snapshot(name, e, exact=True).array, full[name])
    # The killed writer's lock is stale: a new writer may append.
    assert (store / "writer.json").exists()
    rec = ls.Recorder(torch.nn.Linear(2, 2), store=store, mode="append")
    assert rec.epoch() == len(after.epochs)
    rec.close()
