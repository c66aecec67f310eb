"""Stores at fsspec URLs (a real S3 server on loopback, memory://), following a run while it is
written, one writer at a time, and what the snapshot policy keeps (said in rec.thinned)."""

from __future__ import annotations

import gc
import json
import sys
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

import layerscope as ls
from layerscope.record import SnapshotPolicy, StoreError, StoreLockedError, ThinnedError
from layerscope.record.histograms import count
from layerscope.record.location import PackedArray
from layerscope.record.summary import summarize
from s3server import free_port, make_bucket, moto_server, s3_options

torch.set_num_threads(1)


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def train_epoch(model: nn.Module, rec: ls.Recorder, steps: int = 3, **metrics: float) -> int:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        loss = model(torch.randn(4, 6)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        rec.step(loss=loss)
        opt.step()
    return rec.epoch(**metrics)


def wait_for(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("s3fs")
    with moto_server() as endpoint:
        yield endpoint


def test_s3_store_on_a_moto_server_round_trips_follows_and_refuses_a_second_writer(s3):
    make_bucket(s3, "runs")
    opts = s3_options(s3)
    url = "s3://runs/exp1"
    model = tiny()
    probe = torch.randn(5, 6)
    rec = ls.Recorder(model, probe=probe, store=url, storage_options=opts)
    train_epoch(model, rec, val=0.5)
    train_epoch(model, rec, val=0.6)
    rec.flush()
    assert rec.store_path == url

    run = ls.Recorder.open(url, storage_options=opts)
    assert run.epochs == [0, 1] and run.metrics()["val"].tolist() == [0.5, 0.6]
    held = run._records[1].params["0.weight"]
    # lazy: nothing read yet (a small tensor is a byte range of the epoch's pack file)
    assert isinstance(held.path, PackedArray) and held.array is None
    for e in (0, 1):
        got = run.snapshot("0.weight", e, exact=True)
        assert np.array_equal(got.array, rec.snapshot("0.weight", e).array)
    assert np.array_equal(run.histograms("2.weight").counts, rec.histograms("2.weight").counts)
    assert np.allclose(run.scalars()["loss"], rec.scalars()["loss"])
    assert run.activation("0", 1).array.shape == (5, 8)

    # One writer at a time: a second Recorder on the same store is refused, naming the writer.
    with pytest.raises(StoreLockedError, match=r"another writer.*s3://runs/exp1.*pid"):
        ls.Recorder(tiny(), store=url, mode="append", storage_options=opts)

    # Follow: a new epoch shows within 2 s of its manifest landing, in the background.
    seen: list[tuple[int, float]] = []
    live = ls.Recorder.open(url, follow=True, interval=0.2, storage_options=opts)
    live.on_epoch(lambda e: seen.append((e, time.monotonic())))
    assert live.following and live.epochs == [0, 1]
    train_epoch(model, rec, val=0.7)
    rec.flush()
    landed = time.monotonic()
    wait_for(lambda: seen, timeout=5)
    assert seen[0][0] == 2 and seen[0][1] - landed < 2.0
    assert np.array_equal(
        live.snapshot("0.weight", 2, exact=True).array, rec.snapshot("0.weight", 2).array
    )
    # An epoch whose manifest has not landed is invisible (no rename on S3: manifest last).
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **opts)
    fs.pipe_file("runs/exp1/epochs/000003/pack.npy", b"\x93NUMPY half")
    time.sleep(0.6)
    assert live.epochs == [0, 1, 2] and len(seen) == 1
    live.close()
    assert not live.following
    view = ls.timeline(url, storage_options=opts)  # a URL: followed too
    assert view.scrubber.epochs == [0, 1, 2] and view._owned.following
    view.close()
    assert not view._owned.following
    rec.close()
    # The lock went with the writer: appending is allowed now, and the half-written epoch goes.
    rec2 = ls.Recorder(tiny(), store=url, mode="append", storage_options=opts)
    assert rec2.epochs == [0, 1, 2]
    assert not fs.exists("runs/exp1/epochs/000003")
    rec2.close()


def test_unreachable_s3_endpoint_fails_fast_with_the_url():
    pytest.importorskip("s3fs")
    opts = s3_options(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=r"s3://nowhere/run"):
        ls.Recorder(tiny(), store="s3://nowhere/run", storage_options=opts)
    with pytest.raises(StoreError, match=r"s3://nowhere/run"):
        ls.Recorder.open("s3://nowhere/run", storage_options=opts)
    assert time.monotonic() - t0 < 60


def test_wrong_s3_credentials_raise_the_filesystems_error_with_the_url():
    pytest.importorskip("s3fs")
    with moto_server(auth=True) as endpoint:
        opts = {**s3_options(endpoint), "key": "AKIAWRONGWRONGWRONG1", "secret": "nope"}
        t0 = time.monotonic()
        with pytest.raises(
            StoreError, match=r"s3://locked/run.*(Permission|Forbidden|denied|Access)"
        ):
            ls.Recorder(tiny(), store="s3://locked/run", storage_options=opts)
        with pytest.raises(StoreError, match=r"s3://locked/run"):
            ls.Recorder.open("s3://locked/run", storage_options=opts)
        assert time.monotonic() - t0 < 60


def test_a_url_whose_filesystem_is_not_installed_names_the_package(monkeypatch):
    pytest.importorskip("fsspec")
    registry = sys.modules["fsspec.registry"]
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now raises ImportError
    with pytest.raises(StoreError, match=r"needs the s3fs package.*pip install s3fs"):
        ls.Recorder(tiny(), store="s3://bucket/run")
    with pytest.raises(StoreError, match=r"s3fs"):
        ls.Recorder.open("s3://bucket/run")


def test_a_store_of_a_newer_format_is_refused(tmp_path):
    rec = ls.Recorder(tiny(), store=tmp_path / "new")
    rec.epoch()
    rec.close()
    meta = json.loads((tmp_path / "new" / "run.json").read_text())
    meta["version"] = 99
    (tmp_path / "new" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=r"newer layerscope \(store version 99"):
        ls.Recorder.open(tmp_path / "new")
    with pytest.raises(StoreError, match=r"newer layerscope"):
        ls.Recorder(tiny(), store=tmp_path / "new", mode="append")


def test_a_second_local_writer_is_refused_until_the_first_closes(tmp_path):
    rec = ls.Recorder(tiny(), store=tmp_path / "run")
    rec.epoch()
    with pytest.raises(StoreLockedError, match=r"another writer is recording into .*run"):
        ls.Recorder(tiny(), store=tmp_path / "run", mode="append")
    with pytest.raises(StoreLockedError):
        ls.Recorder(tiny(), store=tmp_path / "run", mode="overwrite")
    rec.close()
    assert not (tmp_path / "run" / "writer.json").exists()
    rec = ls.Recorder(tiny(), store=tmp_path / "run", mode="append")
    assert rec.epoch() == 1
    rec.flush()
    del rec  # dropped without close() (a re-run notebook cell): its lock goes with it
    gc.collect()
    rec = ls.Recorder(tiny(), store=tmp_path / "run", mode="append")
    assert rec.epoch() == 2
    rec.close()


def test_snapshot_policies_keep_what_they_say_and_list_the_rest(tmp_path):
    model = tiny()
    weights = []
    rec = ls.Recorder(model, store="memory://policy/every2", snapshot=2)
    for _ in range(4):
        train_epoch(model, rec)
        weights.append(model[0].weight.detach().clone())
    rec.close()
    run = ls.Recorder.open("memory://policy/every2")
    for e in (0, 2):
        assert np.array_equal(run.snapshot("0.weight", e, exact=True).array, weights[e].numpy())
    for e in (1, 3):
        s = run.snapshot("0.weight", e)
        assert not s.exact and s.array.shape == (8, 6)  # small: kept whole as the reduced image
        assert np.allclose(s.array, weights[e].numpy())
        with pytest.raises(ThinnedError, match="snapshot policy"):
            run.snapshot("0.weight", e, exact=True)
    # Histograms and stats of every epoch, equal to those of the full weights.
    h = run.histograms("0.weight")
    assert h.epochs.tolist() == [0, 1, 2, 3]
    for e in range(4):
        st = summarize(weights[e])
        assert np.array_equal(h.counts[e], count(weights[e], h.edges, st).counts)
        assert run.stats(e)["params"]["0.weight"]["norm"] == pytest.approx(st["norm"])
    listed = [(t["epoch"], t["action"]) for t in run.thinned]
    assert listed == [(1, "policy_reduced"), (3, "policy_reduced")]
    assert run.thinned == rec.thinned

    big = nn.Linear(600, 600)
    rec = ls.Recorder(big, store=tmp_path / "stats", snapshot="stats")
    rec.epoch()
    rec.close()
    stored = json.loads((tmp_path / "stats" / "epochs" / "000000" / "epoch.json").read_text())
    assert stored["params"] == {}  # no tensor stored, in the pack or beside it
    assert sorted(p.name for p in (tmp_path / "stats" / "epochs" / "000000").iterdir()) == [
        "epoch.json",
        "pack.npy",
    ]
    run = ls.Recorder.open(tmp_path / "stats")
    assert run.histograms("weight").counts.sum() == 600 * 600
    assert [t["action"] for t in run.thinned] == ["policy_stats"]
    with pytest.raises(KeyError):
        run.snapshot("weight", 0)

    rec = ls.Recorder(big, snapshot="reduced")
    rec.epoch()
    assert rec.snapshot("weight").array.size <= 256 * 256
    assert rec.nbytes < 600 * 600 * 4 / 4

    rec = ls.Recorder(big, snapshot=["bias"])
    rec.epoch()
    assert rec.snapshot("bias", exact=True).exact and not rec.snapshot("weight").exact
    assert rec.thinned[0]["tensors"] == ["weight"]
    rec = ls.Recorder(big, snapshot=SnapshotPolicy("reduced", every=3, between="stats"))
    for _ in range(3):
        rec.epoch()
    assert rec.snapshot_epochs("weight") == [0]
    with pytest.raises(ValueError, match="snapshot='sometimes'"):
        ls.Recorder(big, snapshot="sometimes")
    with pytest.raises(KeyError, match="'fc'"):
        ls.Recorder(big, snapshot=["fc"])


def test_a_0d_parameter_round_trips_with_its_shape(tmp_path):
    model = nn.Module()
    model.scale = nn.Parameter(torch.tensor(1.5))
    rec = ls.Recorder(model, store=tmp_path / "s")
    rec.epoch()
    rec.close()
    s = ls.Recorder.open(tmp_path / "s").snapshot("scale", 0, exact=True)
    assert s.shape == () and s.array.shape == () and float(s.array) == 1.5


def test_timeline_of_a_path_follows_it_keeps_the_scrub_position_and_stops_on_close(tmp_path):
    path = tmp_path / "live"
    model = tiny()
    rec = ls.Recorder(model, probe=torch.randn(3, 6), store=path, axis="step")
    train_epoch(model, rec, val=0.1)
    rec.flush()
    view = ls.timeline(str(path))
    assert view._owned is not None and view._owned.following
    assert view.scrubber.epochs == [0] and view.epoch == 0
    assert view._epoch_axis.label == "step"
    train_epoch(model, rec, val=0.2)
    rec.flush()
    wait_for(lambda: view.epoch == 1)  # at the newest: moves on with the run
    assert view.scrubber.epochs == [0, 1]
    view.epoch = 0  # the user scrubs back
    train_epoch(model, rec, val=0.3)
    rec.flush()
    wait_for(lambda: view.scrubber.frames_now()["epochs"].tolist() == [0, 1, 2])
    time.sleep(0.3)
    assert view.epoch == 0 and view.scrubber.epoch == 0  # kept
    run = view._owned
    view.close()
    assert not run.following
    rec.close()


def test_timeline_says_what_the_policy_skipped_and_what_was_sampled(tmp_path):
    model = tiny()
    rec = ls.Recorder(model, snapshot=3)
    for _ in range(5):
        train_epoch(model, rec)
    view = ls.timeline(rec)
    assert "reduced by the snapshot policy: epochs 1-2, 4" in view.notes.value
    assert "update ratios every 10th step" in view.notes.value  # the default ratio_every
    view.close()
    rec = ls.Recorder(model, store=tmp_path / "sampled", every=4, ratio_every=0)
    rec.epoch()
    rec.close()
    run = ls.Recorder.open(tmp_path / "sampled")
    assert run.sampling == {"grad_norms_every": 4, "update_ratios_every": 0}
    view = ls.timeline(run)
    assert "gradient norms every 4th step, update ratios never" in view.notes.value
    view.close()


def test_closing_a_followed_run_stops_its_thread_and_a_bad_interval_is_refused(tmp_path):
    rec = ls.Recorder(tiny(), store=tmp_path / "r")
    rec.epoch()
    rec.flush()

    def followers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("layerscope-follow")]

    assert not followers()
    run = ls.Recorder.open(tmp_path / "r", follow=True, interval=0.05)
    assert len(followers()) == 1
    run.close()
    assert not followers() and run.epochs == [0]
    with pytest.raises(ValueError, match="interval must be > 0"):
        ls.Recorder.open(tmp_path / "r", follow=True, interval=0)
    rec.close()


def test_reading_a_followed_run_while_its_poller_loads_epochs(tmp_path):
    model = tiny()
    rec = ls.Recorder(model, store=tmp_path / "busy")
    train_epoch(model, rec)
    rec.flush()
    run = ls.Recorder.open(tmp_path / "busy", follow=True, interval=0.01)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for _ in range(12):
                train_epoch(model, rec)
                rec.flush()
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    reads = 0
    # Bounded by time, not by a count of reads: the reads are cheap, and on a quiet machine
    # 100,000 of them took less time than the writer's 12 epochs.
    deadline = time.monotonic() + 120
    while not done.is_set() or len(run.epochs) < 13:
        # Every accessor the timeline uses, while the poller swaps new epochs in.
        run.scalars()
        run.metrics()
        run.epoch_steps()
        assert isinstance(run.parameters, list)
        if run.epochs:
            run.histograms("0.weight")
            run.grad_norms("0.weight")
        reads += 1
        # Let go of the GIL between rounds: a reader that never does starves the writer's
        # threads (each handoff waits out the 5 ms switch interval; the 12 epochs then took
        # ~17 s instead of 0.1 s, and ~minutes once these reads got cheaper).
        time.sleep(0)
        assert time.monotonic() < deadline, f"the poller loaded {run.epochs} in 120 s"
    writer.join()
    run.close()
    rec.close()
    assert not errors and run.epochs == list(range(13)) and reads > 10
    assert run.num_steps == 13 * 3
