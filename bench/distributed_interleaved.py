"""DDP (``torchrun``, 2 processes, CPU + gloo): plain vs ``ls.Recorder`` vs TensorBoard, one epoch
each in turn in the same processes, so that load from other processes falls on all three alike.

Run by ``bench/recorder.py --distributed`` beside the separate runs of ``distributed_digits.py``
(the same model, data, batch, optimizer and Recorder settings: ``probe=x_test[:8]``, the default
snapshot policy, a store on rank 0; TensorBoard: a ``SummaryWriter`` on rank 0 with a histogram
of every parameter and gradient each epoch, flushed)::

    torchrun --nproc_per_node=2 bench/distributed_interleaved.py --epochs 9 --out /tmp/inter

Rank 0 measures each epoch's wall time and its process CPU time (all threads: gloo's too). The
store's writer thread works in the background after a Recorder epoch, into the next epoch of
whichever configuration comes next: its CPU is taken out of the epochs it ran in and its total
is shared out over the Recorder's epochs (read from the thread's own CPU clock).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import DigitsCNN, accuracy, load
from distributed_digits import full

CONFIGS = ("none", "layerscope", "tensorboard")


def writer_cpu() -> float:
    """CPU seconds of the Recorder store's writer thread(s) in this process so far."""
    total = 0.0
    for t in threading.enumerate():
        if t.name.startswith("layerscope-store") and t.ident is not None:
            total += time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--samples", type=int, default=1437)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    x_train, y_train, x_test, y_test = load()
    x_train, y_train = x_train[: args.samples][rank::world], y_train[: args.samples][rank::world]
    out = Path(args.out)  # the same path on every rank: the store's (rank 0 writes it)
    runs: dict[str, dict[str, Any]] = {}
    for c in CONFIGS:
        torch.manual_seed(0)
        model = DigitsCNN(width=args.width)
        ddp = nn.parallel.DistributedDataParallel(model)
        run: dict[str, Any] = {
            "model": model,
            "ddp": ddp,
            "opt": torch.optim.Adam(ddp.parameters(), lr=1e-3),
            "gen": torch.Generator().manual_seed(rank),
            "rec": None,
            "writer": None,
        }
        if c == "layerscope":
            import layerscope as ls

            run["rec"] = ls.Recorder(ddp, probe=x_test[:8], store=out / "store")
        elif c == "tensorboard" and rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            run["writer"] = SummaryWriter(str(out / "tb"))
        runs[c] = run
    loss_fn = nn.CrossEntropyLoss()
    wall: dict[str, list[float]] = {c: [] for c in CONFIGS}
    cpu: dict[str, list[float]] = {c: [] for c in CONFIGS}
    order = list(CONFIGS)
    for e in range(args.epochs):
        order = order[1:] + order[:1]  # each configuration in each position in turn
        for c in order:
            run = runs[c]
            ddp, opt, rec = run["ddp"], run["opt"], run["rec"]
            t0, c0, w0 = time.perf_counter(), time.process_time(), writer_cpu()
            ddp.train()
            perm = torch.randperm(len(x_train), generator=run["gen"])
            for start in range(0, len(perm), args.batch):
                idx = perm[start : start + args.batch]
                loss = loss_fn(ddp(x_train[idx]), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if rec is not None:
                    rec.step(loss=loss)
                opt.step()
            acc = accuracy(ddp, x_test, y_test)
            if rec is not None:
                rec.epoch(val_acc=acc)
            if c == "tensorboard":  # as distributed_digits.py: every parameter and gradient
                model = run["model"]
                fulls = {n: full(p) for n, p in model.named_parameters()}
                grads = {n: full(p.grad) for n, p in model.named_parameters() if p.grad is not None}
                if run["writer"] is not None:
                    for n, a in fulls.items():
                        run["writer"].add_histogram(n, a, e)
                    for n, a in grads.items():
                        run["writer"].add_histogram(n + ".grad", a, e)
                    run["writer"].add_scalar("val_acc", acc, e)
                    run["writer"].flush()
            wall[c].append(time.perf_counter() - t0)
            cpu[c].append(time.process_time() - c0 - (writer_cpu() - w0))
    rec = runs["layerscope"]["rec"]
    before = writer_cpu()
    rec.flush()
    written = writer_cpu()
    rec.close()
    if runs["tensorboard"]["writer"] is not None:
        runs["tensorboard"]["writer"].close()
    if rank == 0:
        share = written / args.epochs  # the writer's whole CPU, over the Recorder's epochs
        cpu["layerscope"] = [x + share for x in cpu["layerscope"]]
        out.mkdir(parents=True, exist_ok=True)
        info = {"wall": wall, "cpu": cpu, "writer_cpu_s": written, "flush_cpu_s": written - before}
        (out / "interleaved.json").write_text(json.dumps(info))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
