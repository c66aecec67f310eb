"""Training overhead of ls.Recorder vs no recording vs TensorBoard histograms.

Trains the digits CNN (bench/digits.py) for the same epochs three ways in one run, interleaved
(plain, Recorder, TensorBoard, plain, ...) so that load from other processes hits all alike:

- plain: no recording;
- Recorder: ``ls.Recorder(model, probe=x_test[:64])`` with default settings (loss every step,
  per-parameter grad norms and update ratios every step, an epoch snapshot of every parameter,
  histograms, stats and the activations of every leaf module on the probe);
- TensorBoard: ``SummaryWriter`` logging the loss every step and a histogram of every parameter and
  every gradient each epoch (to a temporary directory);
- with ``--store``, also the Recorder writing each epoch to a temporary store.

Prints the median time per configuration, the overhead against plain, and the memory the
Recorder holds against its budget.

    PYTHONPATH=python .venv/bin/python bench/recorder.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layerscope as ls
from digits import DigitsCNN, load, train
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

    def close(self) -> None:
        self.writer.close()


class Timed:
    """Wraps a recorder to add up the time spent inside step() and epoch()."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.t_step = 0.0
        self.t_epoch = 0.0

    def step(self, **kw) -> None:
        t = time.perf_counter()
        self.inner.step(**kw)
        self.t_step += time.perf_counter() - t

    def epoch(self, **kw) -> None:
        t = time.perf_counter()
        self.inner.epoch(**kw)
        self.t_epoch += time.perf_counter() - t


def run(config: str, epochs: int, width: int, data, tmp: Path, i: int) -> dict:
    torch.manual_seed(0)
    model = DigitsCNN(width=width)
    recorder = None
    if config == "recorder":
        recorder = Timed(ls.Recorder(model, probe=data[2][:64]))
    elif config == "recorder+store":
        recorder = Timed(ls.Recorder(model, probe=data[2][:64], store=tmp / f"run{i}"))
    elif config == "tensorboard":
        recorder = Timed(TensorBoardLogger(model, str(tmp / f"tb{i}")))
    t, c = time.perf_counter(), time.process_time()
    train(model, epochs, recorder=recorder, data=data)
    if config == "recorder+store":
        recorder.inner.flush()  # the write of the last epoch counts too
    out = {"time": time.perf_counter() - t, "cpu": time.process_time() - c}
    if recorder is not None:
        out.update(step=recorder.t_step, epoch=recorder.t_epoch)
        if isinstance(recorder.inner, ls.Recorder):
            out.update(held=recorder.inner.nbytes, budget=recorder.inner.budget)
            recorder.inner.close()
        else:
            recorder.inner.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--width", type=int, default=32, help="channels of the first conv (DigitsCNN)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: stable timings on a shared machine)",
    )
    ap.add_argument("--store", action="store_true", help="also time the Recorder writing a store")
    ap.add_argument("--quick", action="store_true", help="3 epochs, 3 repeats")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.repeats = 3, 3
    torch.set_num_threads(args.threads)
    data = load()
    configs = ["plain", "recorder", "tensorboard"] + (["recorder+store"] if args.store else [])
    results: dict[str, list[dict]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        run("plain", 1, args.width, data, Path(tmp), -1)  # warm-up: allocator, kernels, imports
        run("tensorboard", 1, args.width, data, Path(tmp), -1)
        for i in range(args.repeats):
            for c in configs:
                results[c].append(run(c, args.epochs, args.width, data, Path(tmp), i))
    n_params = sum(p.numel() for p in DigitsCNN(width=args.width).parameters())
    steps = args.epochs * -(-len(data[0]) // 32)
    print(
        f"digits CNN width {args.width} ({n_params:,} parameters), {args.epochs} epochs x "
        f"{steps // args.epochs} steps, batch 32, {args.threads} thread(s), median of {args.repeats}"
    )
    plain = statistics.median(r["time"] for r in results["plain"])
    plain_cpu = statistics.median(r["cpu"] for r in results["plain"])
    print(
        f"{'config':16} {'wall s':>8} {'overhead':>9} {'CPU s':>8} {'overhead':>9} "
        f"{'per step()':>11} {'per epoch()':>12}"
    )
    for c in configs:
        med = statistics.median(r["time"] for r in results[c])
        cpu = statistics.median(r["cpu"] for r in results[c])
        line = (
            f"{c:16} {med:8.3f} {(med - plain) / plain * 100:8.1f}% {cpu:8.3f} "
            f"{(cpu - plain_cpu) / plain_cpu * 100:8.1f}%"
        )
        if c != "plain":
            st = statistics.median(r["step"] for r in results[c])
            ep = statistics.median(r["epoch"] for r in results[c])
            line += f" {st / steps * 1e6:8.0f} us {ep / args.epochs * 1e3:9.1f} ms"
        print(line)
    print(
        "wall: median elapsed time; CPU: median process CPU time (steadier on a shared machine); "
        "per call: wall time inside step()/epoch()"
    )
    held = [r["held"] for r in results["recorder"]]
    print(
        f"Recorder memory held: {format_bytes(max(held))} of a {format_bytes(results['recorder'][0]['budget'])} budget"
    )


if __name__ == "__main__":
    main()
