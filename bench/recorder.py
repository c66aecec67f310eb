"""Training overhead of ls.Recorder vs no recording vs TensorBoard histograms.

Trains the digits CNN (bench/digits.py) for the same epochs three ways in one run:

- plain: no recording;
- Recorder: ``ls.Recorder(model, probe=x_test[:32])`` (one batch of held-out images), otherwise default settings (loss every
  step, per-parameter gradient norms every step, update ratios every 10th step, at each epoch a
  bit-exact snapshot of every parameter, fixed-bin histograms, stats, change, and the activations
  of every leaf module on the probe);
- TensorBoard: ``SummaryWriter`` logging the loss every step and a histogram of every parameter and
  every gradient each epoch (to a temporary directory);
- with ``--store``, also the Recorder writing each epoch to a temporary store (flushed at the end).

Issue 14 adds three measurements (each its own flag):

- ``--distributed``: the same digits CNN under DDP, 2 processes (``torchrun``, CPU, gloo,
  ``bench/distributed_digits.py``): plain vs Recorder (rank-aware, store on rank 0) vs TensorBoard
  ``SummaryWriter`` on rank 0 with a histogram of every parameter and gradient each epoch; rank
  0's epoch times, alternating the configurations, and again with the three interleaved epoch by
  epoch in the same two processes (``bench/distributed_interleaved.py``: steadier on a busy
  machine); the bytes the Recorder all-reduced per epoch against the parameters' bytes (also
  under FSDP2);
- ``--follow``: a DDP job writes a store; this process follows it (``Recorder.open(path,
  follow=True)``) and reports the time from each epoch's manifest landing to the listener call;
- ``--transformer``: ``epoch()`` cost and bytes on disk per epoch of a ~100M-parameter transformer
  under each snapshot policy (``snapshot=``), against one training step of that model;
- ``--long-run N``: ``epoch()`` called after every step (``axis="step"``, as in LLM training) for
  N steps of an 8-8-2 MLP and N/4 steps of a 512-512-10 one, with no view, with a live
  ``ls.timeline(rec)`` and with a live workspace (``ls.explore(..., recorder=rec)``) in the same
  process (their listeners run inside ``epoch()``): the median ``epoch()`` per fifth of the run,
  so that a cost growing with the run shows.

The runs advance side by side, one epoch each in a shuffled order, so that load from other
processes on a shared machine falls on all of them alike. Per configuration it prints the wall
time and the CPU time of the training thread (steadier when the machine is busy), their overhead
against plain as the median over epochs of the per-epoch ratio, and the time spent inside
``step()``/``epoch()``; then the memory the Recorder holds against its budget.

    PYTHONPATH=python .venv/bin/python bench/recorder.py --quick
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layerscope as ls
from digits import DigitsCNN, Training, load
from layerscope.record.budget import format_bytes


class TensorBoardLogger:
    """The usual TensorBoard loop: loss every step, histograms of weights and grads each epoch."""

    def __init__(self, model: torch.nn.Module, logdir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.model = model
        self.writer = SummaryWriter(logdir)
        self.n = 0
        self.e = 0

    def step(self, loss: torch.Tensor) -> None:
        self.writer.add_scalar("loss", loss.item(), self.n)
        self.n += 1

    def epoch(self, **metrics: float) -> None:
        for name, p in self.model.named_parameters():
            self.writer.add_histogram(name, p, self.e)
            if p.grad is not None:
                self.writer.add_histogram(name + ".grad", p.grad, self.e)
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, self.e)
        self.e += 1

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Timed:
    """Wraps a recorder to add up the wall and thread CPU time spent inside step() and epoch()."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.t_step = self.t_epoch = self.cpu = 0.0

    def step(self, **kw: Any) -> None:
        t, u = time.perf_counter(), time.thread_time()
        self.inner.step(**kw)
        self.t_step += time.perf_counter() - t
        self.cpu += time.thread_time() - u

    def epoch(self, **kw: Any) -> None:
        t, u = time.perf_counter(), time.thread_time()
        self.inner.epoch(**kw)
        self.t_epoch += time.perf_counter() - t
        self.cpu += time.thread_time() - u


def make(config: str, width: int, data: tuple, tmp: Path, i: int) -> tuple[Training, Timed | None]:
    torch.manual_seed(0)
    model = DigitsCNN(width=width)
    recorder = None
    if config == "recorder":
        recorder = Timed(ls.Recorder(model, probe=data[2][:32]))
    elif config == "recorder+store":
        recorder = Timed(ls.Recorder(model, probe=data[2][:32], store=tmp / f"run{i}"))
    elif config == "tensorboard":
        recorder = Timed(TensorBoardLogger(model, str(tmp / f"tb{i}")))
    return Training(model, data), recorder


def measure(configs: list[str], epochs: int, width: int, data: tuple, tmp: Path, i: int) -> dict:
    runs = {c: make(c, width, data, tmp, i) for c in configs}
    wall = {c: [] for c in configs}
    cpu = {c: [] for c in configs}
    order = list(configs)
    shuffle = random.Random(i).shuffle
    for e in range(epochs):
        shuffle(order)
        for c in order:
            training, recorder = runs[c]
            t, u = time.perf_counter(), time.thread_time()
            training.epoch(recorder)
            if e == epochs - 1 and recorder is not None and hasattr(recorder.inner, "flush"):
                recorder.inner.flush()  # the last epoch's write counts too
            wall[c].append(time.perf_counter() - t)
            cpu[c].append(time.thread_time() - u)
    out = {}
    for c in configs:
        recorder = runs[c][1]
        out[c] = {"wall": wall[c], "cpu": cpu[c]}
        if recorder is not None:
            out[c].update(step=recorder.t_step, epoch=recorder.t_epoch, calls_cpu=recorder.cpu)
            if isinstance(recorder.inner, ls.Recorder):
                out[c].update(held=recorder.inner.nbytes, budget=recorder.inner.budget)
            recorder.inner.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--width", type=int, default=32, help="channels of the first conv (DigitsCNN)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier timings)")
    ap.add_argument("--store", action="store_true", help="also time the Recorder writing a store")
    ap.add_argument("--quick", action="store_true", help="4 epochs, 2 repeats")
    ap.add_argument("--distributed", action="store_true", help="DDP, 2 processes (issue 14)")
    ap.add_argument("--follow", action="store_true", help="follow latency (issue 14)")
    ap.add_argument("--transformer", action="store_true", help="snapshot policies, ~100M params")
    ap.add_argument(
        "--long-run", type=int, default=0, metavar="N", help="epoch() every step for N steps"
    )
    args = ap.parse_args()
    if args.distributed or args.follow or args.transformer or args.long_run:
        from recorder_distributed import run_issue14

        run_issue14(args)
        return
    if args.quick:
        args.epochs, args.repeats = 4, 2
    torch.set_num_threads(args.threads)
    data = load()
    configs = ["plain", "recorder", "tensorboard"] + (["recorder+store"] if args.store else [])
    with tempfile.TemporaryDirectory() as tmp:
        measure(configs, 1, args.width, data, Path(tmp), -1)  # warm-up: allocator, kernels, imports
        reps = [
            measure(configs, args.epochs, args.width, data, Path(tmp), i)
            for i in range(args.repeats)
        ]
    n_params = sum(p.numel() for p in DigitsCNN(width=args.width).parameters())
    steps_per_epoch = -(-len(data[0]) // 32)
    print(
        f"digits CNN width {args.width} ({n_params:,} parameters), {args.epochs} epochs x "
        f"{steps_per_epoch} steps, batch 32, {args.threads} thread(s), {args.repeats} repeats"
    )
    print(
        f"{'config':15} {'wall s':>7} {'overhead':>9} {'CPU s':>7} {'overhead':>9} "
        f"{'in step()':>10} {'in epoch()':>11} {'CPU in calls':>13}"
    )

    def total(c: str, key: str) -> float:
        return statistics.median(sum(r[c][key]) for r in reps)

    def overhead(c: str, key: str) -> float:
        ratios = [x / p for r in reps for x, p in zip(r[c][key], r["plain"][key], strict=True)]
        return (statistics.median(ratios) - 1) * 100

    for c in configs:
        line = (
            f"{c:15} {total(c, 'wall'):7.3f} {overhead(c, 'wall'):8.1f}% {total(c, 'cpu'):7.3f} "
            f"{overhead(c, 'cpu'):8.1f}%"
        )
        if c != "plain":
            st = statistics.median(r[c]["step"] for r in reps) / (args.epochs * steps_per_epoch)
            ep = statistics.median(r[c]["epoch"] for r in reps) / args.epochs
            calls = statistics.median(r[c]["calls_cpu"] / sum(r["plain"]["cpu"]) for r in reps)
            line += f" {st * 1e6:7.0f} us {ep * 1e3:8.1f} ms {calls * 100:11.1f}%"
        print(line)
    print(
        "wall/CPU s: median over repeats of the total; CPU is the training thread's CPU time. "
        "overhead: median over epochs of (epoch time / plain's same epoch) - 1. in step()/epoch(): "
        "wall time per call. CPU in calls: thread CPU time inside step()+epoch() / plain's CPU "
        "time (the recorder's own cost; TensorBoard also writes on a background thread)."
    )
    held = max(r["recorder"]["held"] for r in reps)
    budget = reps[0]["recorder"]["budget"]
    print(f"Recorder memory held: {format_bytes(held)} of a {format_bytes(budget)} budget")


if __name__ == "__main__":
    main()
