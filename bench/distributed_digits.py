"""The digits CNN trained by ``torchrun`` (DDP or FSDP2 ``fully_shard``, CPU + gloo), recorded.

Run by the tests (tests/test_record_distributed.py) and by ``bench/recorder.py``::

    torchrun --nproc_per_node=2 bench/distributed_digits.py --mode fsdp --store runs/exp1 \\
        --epochs 3 --out /tmp/ref

Each rank trains on its half of the training set. ``--recorder``: ``layerscope`` (default),
``tensorboard`` (a ``SummaryWriter`` on rank 0 with a histogram of every parameter and gradient
each epoch: the usual way, which gathers FSDP2 parameters to do it) or ``none``. With ``--out``,
rank 0 saves, after each epoch, the full parameters (gathered here, for the test's reference
only) and what the Recorder communicated, and ``timing.json`` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import DigitsCNN, accuracy, load


def full(p: torch.Tensor) -> np.ndarray:
    from torch.distributed.tensor import DTensor

    t = p.full_tensor() if isinstance(p, DTensor) else p
    return t.detach().cpu().numpy().copy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("ddp", "fsdp"), default="ddp")
    ap.add_argument(
        "--recorder", choices=("layerscope", "tensorboard", "none"), default="layerscope"
    )
    ap.add_argument("--store", default=None)
    ap.add_argument("--storage-options", default=None, help="JSON for fsspec")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--samples", type=int, default=320)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", default=None)
    ap.add_argument("--snapshot", default="auto")
    ap.add_argument("--reduce", default=None)
    ap.add_argument("--every", type=int, default=1, help="Recorder(every=): norms every k steps")
    ap.add_argument("--no-probe", action="store_true", help="Recorder without a probe")
    ap.add_argument("--epoch-sleep", type=float, default=0.0, help="seconds after each epoch")
    ap.add_argument(
        "--extra-epoch-rank", type=int, default=-1, help="this rank calls epoch() once more"
    )
    ap.add_argument("--perturb-rank", type=int, default=-1, help="DDP: this rank changes a weight")
    ap.add_argument(
        "--other-model-rank", type=int, default=-1, help="this rank records a wider model (a bug)"
    )
    ap.add_argument(
        "--fail-store-rank", type=int, default=-1, help="this rank's store writes fail (disk full)"
    )
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--marker", default=None, help="rank 0 touches MARKER.EPOCH after each epoch")
    ap.add_argument("--tail-steps", type=int, default=0, help="steps after the last epoch()")
    ap.add_argument(
        "--ref-norms",
        action="store_true",
        help="with --out: rank 0 also saves every step's gradient norms and update ratios, "
        "computed here from the full tensors (the tests' reference; not timed by the benchmark)",
    )
    args = ap.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = DigitsCNN(width=args.width)
    if args.mode == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (world,))
        for layer in (*model.features, *model.classifier):
            if any(True for _ in layer.parameters(recurse=False)):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        trained: nn.Module = model
    else:
        trained = nn.parallel.DistributedDataParallel(model)
    x_train, y_train, x_test, y_test = load()
    x_train, y_train = x_train[: args.samples][rank::world], y_train[: args.samples][rank::world]
    opt = torch.optim.Adam(trained.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rec = None
    writer = None
    if args.recorder == "layerscope":
        import layerscope as ls

        snapshot: object = args.snapshot
        if isinstance(snapshot, str) and snapshot.isdigit():
            snapshot = int(snapshot)
        recorded: nn.Module = trained
        if args.other_model_rank == rank:  # a bug the Recorder must name, not hang on
            recorded = DigitsCNN(width=args.width + 1)
        rec = ls.Recorder(
            recorded,
            probe=None if args.no_probe else x_test[:8],
            every=args.every,
            store=args.store,
            snapshot=snapshot,
            reduce=args.reduce,
            timeout=args.timeout,
            storage_options=json.loads(args.storage_options) if args.storage_options else None,
        )
        if args.fail_store_rank == rank:  # a test: as if this rank's disk were full
            import errno

            from layerscope.record import store as store_module

            def disk_full(*_: object, **__: object) -> None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            store_module.write_file = disk_full  # type: ignore[assignment]
    elif args.recorder == "tensorboard" and rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(args.store)
    out = Path(args.out) if args.out else None
    gen = torch.Generator().manual_seed(rank)
    epoch_times, epoch_cpu, epoch_faults = [], [], []
    losses: list[float] = []  # this rank's, for the tests' reference (reduce="mean" or rank 0's)
    ref: dict[str, list[list[float]]] = {"grad": [], "ratio": []}  # --ref-norms

    def train_step(idx: torch.Tensor) -> None:
        loss = loss_fn(trained(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if rec is not None:
            rec.step(loss=loss)
        if out is not None:
            losses.append(float(loss))
        if args.ref_norms:  # full tensors on every rank (FSDP2: a collective), rank 0 saves
            before = {n: full(p) for n, p in model.named_parameters()}
            ref["grad"].append(
                [float(np.linalg.norm(full(p.grad))) for _, p in model.named_parameters()]
            )
        opt.step()
        if args.ref_norms:
            ref["ratio"].append(
                [
                    float(np.linalg.norm(full(p) - before[n]) / np.linalg.norm(before[n]))
                    for n, p in model.named_parameters()
                ]
            )

    for e in range(args.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        trained.train()
        order = torch.randperm(len(x_train), generator=gen)
        for start in range(0, len(order), args.batch):
            train_step(order[start : start + args.batch])
        if args.perturb_rank == rank and e == 1:
            with torch.no_grad():
                model.classifier[3].bias.add_(1.0)
        acc = accuracy(trained, x_test, y_test)
        if rec is not None:
            rec.epoch(val_acc=acc)
            if args.extra_epoch_rank == rank and e == args.epochs - 1:
                rec.epoch(val_acc=acc)
        if args.recorder == "tensorboard":
            # The usual TensorBoard way: every parameter and gradient, whole, on rank 0.
            fulls = {n: full(p) for n, p in model.named_parameters()}
            grads = {n: full(p.grad) for n, p in model.named_parameters() if p.grad is not None}
            if writer is not None:
                for n, a in fulls.items():
                    writer.add_histogram(n, a, e)
                for n, a in grads.items():
                    writer.add_histogram(n + ".grad", a, e)
                writer.add_scalar("val_acc", acc, e)
                writer.flush()
        epoch_times.append(time.perf_counter() - t0)
        epoch_cpu.append(time.process_time() - c0)  # all threads: gloo's, the store writer's
        # pages touched for the first time (minor faults), all threads: costly on a VM
        epoch_faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        if out is not None:
            params = {n: full(p) for n, p in model.named_parameters()}
            out.mkdir(parents=True, exist_ok=True)
            np.save(out / f"losses{rank}.npy", np.asarray(losses))
            if args.ref_norms and rank == 0:
                names = [n for n, _ in model.named_parameters()]
                np.savez(
                    out / "ref_norms.npz", names=names, **{k: np.asarray(v) for k, v in ref.items()}
                )
            if rank == 0:
                np.savez(out / f"params{e}.npz", **params)
        if args.marker and rank == 0:
            Path(f"{args.marker}.{e}").write_text(str(os.getpid()))
        if args.epoch_sleep:
            time.sleep(args.epoch_sleep)
    for start in range(0, args.tail_steps * args.batch, args.batch):  # steps after the last epoch
        train_step(torch.arange(start, start + args.batch) % len(x_train))
    if rec is not None:
        rec.close()
        if args.ref_norms and out is not None and rank == 0:  # this process's history, closed
            names = [n for n, _ in model.named_parameters()]
            np.savez(out / "recorded_norms.npz", **{n: rec.grad_norms(n) for n in names})
            np.savez(
                out / "ref_norms.npz", names=names, **{k: np.asarray(v) for k, v in ref.items()}
            )
    if writer is not None:
        writer.close()
    if out is not None and rank == 0:
        info = {
            "epoch_s": epoch_times,
            "epoch_cpu_s": epoch_cpu,
            "epoch_faults": epoch_faults,
            "communicated": rec.communicated if rec is not None else [],
            "param_bytes": sum(p.numel() * 4 for p in model.parameters()),
            "rank": rank,
        }
        (out / "timing.json").write_text(json.dumps(info))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
