"""Issue 14's measurements for ``bench/recorder.py``: the Recorder under DDP (2 processes) against
plain training and TensorBoard, bytes all-reduced, follow latency, and snapshot policies on a
~100M-parameter transformer. See ``bench/recorder.py``'s docstring for what each measures.

    PYTHONPATH=python .venv/bin/python bench/recorder.py --distributed --follow --transformer
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import layerscope as ls
from layerscope.record.budget import format_bytes

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "distributed_digits.py"
INTERLEAVED = HERE / "distributed_interleaved.py"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    paths = [str(HERE.parent / "python"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def torchrun(*args: str, wait: bool = True, script: Path = SCRIPT) -> Any:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_port()}", str(script), *args,
    ]  # fmt: skip
    if not wait:
        return subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done


def distributed(epochs: int, width: int, repeats: int) -> None:
    configs = ["none", "layerscope", "tensorboard"]
    times: dict[str, list[float]] = {c: [] for c in configs}
    cpu: dict[str, list[float]] = {c: [] for c in configs}
    faults: dict[str, list[int]] = {c: [] for c in configs}
    comm: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            order = configs if r % 2 == 0 else configs[::-1]
            for c in order:
                out = Path(tmp) / f"{c}{r}"
                store = ["--store", str(Path(tmp) / f"store-{c}{r}")] if c != "none" else []
                torchrun(
                    "--mode", "ddp", "--recorder", c, "--epochs", str(epochs + 1),
                    "--width", str(width), "--samples", "1437", "--out", str(out), *store,
                )  # fmt: skip
                info = json.loads((out / "timing.json").read_text())
                times[c] += info["epoch_s"][1:]  # epoch 0: warm-up
                cpu[c] += info["epoch_cpu_s"][1:]
                faults[c] += info["epoch_faults"][1:]
                if c == "layerscope":
                    comm["ddp"] = info
        out = Path(tmp) / "fsdp"
        torchrun(
            "--mode", "fsdp", "--epochs", "2", "--width", str(width), "--samples", "1437",
            "--out", str(out), "--store", str(Path(tmp) / "store-fsdp"),
        )  # fmt: skip
        comm["fsdp"] = json.loads((out / "timing.json").read_text())
    plain = statistics.median(times["none"])
    plain_cpu = statistics.median(cpu["none"])
    print(
        f"\nDDP, 2 processes (torchrun, gloo, CPU), digits CNN width {width}, {epochs} epochs x "
        f"{repeats} runs per config (alternating order); rank 0's epoch, median wall time and "
        "CPU time of the process (all its threads):"
    )
    for c, label in (
        ("none", "plain"),
        ("layerscope", "ls.Recorder"),
        ("tensorboard", "TensorBoard"),
    ):
        m = statistics.median(times[c])
        mc = statistics.median(cpu[c])
        print(
            f"  {label:12} wall {m * 1e3:7.1f} ms/epoch ({(m / plain - 1) * 100:+6.1f}%)   "
            f"CPU {mc * 1e3:7.1f} ms/epoch ({(mc / plain_cpu - 1) * 100:+6.1f}%)   "
            f"page faults {statistics.median(faults[c]):,.0f}/epoch"
        )
    interleaved(epochs, width, repeats)
    for mode, info in comm.items():
        b = statistics.median(info["communicated"])
        print(
            f"  {mode}: Recorder all-reduced {b:,.0f} B/epoch per rank; parameters "
            f"{info['param_bytes']:,} B ({b / info['param_bytes'] * 100:.2f}%)"
        )


def interleaved(epochs: int, width: int, repeats: int) -> None:
    """The same three configurations, one epoch each in turn in the same two processes
    (``distributed_interleaved.py``): load from other processes falls on all alike. Overhead:
    median over epochs of (epoch / plain's epoch of the same round) - 1."""
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    ratios: dict[str, dict[str, list[float]]] = {"wall": {}, "cpu": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            out = Path(tmp) / f"i{r}"
            torchrun(
                "--epochs", str(epochs + 1), "--width", str(width), "--out", str(out),
                script=INTERLEAVED,
            )  # fmt: skip
            info = json.loads((out / "interleaved.json").read_text())
            for key, into in (("wall", wall), ("cpu", cpu)):
                plain = info[key]["none"][1:]  # epoch 0: warm-up
                for c, xs in info[key].items():
                    into.setdefault(c, []).extend(xs[1:])
                    ratios[key].setdefault(c, []).extend(
                        x / p - 1 for x, p in zip(xs[1:], plain, strict=True)
                    )
    print(
        f"  interleaved in the same processes ({epochs} epochs x {repeats} runs; overhead: "
        "median of the per-round ratios; CPU: the process's, the store writer's thread "
        "attributed to the Recorder's epochs):"
    )
    for c, label in (
        ("none", "plain"),
        ("layerscope", "ls.Recorder"),
        ("tensorboard", "TensorBoard"),
    ):
        print(
            f"  {label:12} wall {statistics.median(wall[c]) * 1e3:7.1f} ms/epoch "
            f"({statistics.median(ratios['wall'][c]) * 100:+6.1f}%)   "
            f"CPU {statistics.median(cpu[c]) * 1e3:7.1f} ms/epoch "
            f"({statistics.median(ratios['cpu'][c]) * 100:+6.1f}%)"
        )


def follow(epochs: int = 12) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "run"
        job = torchrun(
            "--mode", "ddp", "--store", str(store), "--epochs", str(epochs), "--epoch-sleep", "0.7",
            wait=False,
        )  # fmt: skip
        seen: dict[int, float] = {}
        try:
            deadline = time.monotonic() + 120
            while not (store / "run.json").exists():
                if job.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(job.stderr.read()[-3000:])
                time.sleep(0.05)
            run = ls.Recorder.open(store, follow=True)
            run.on_epoch(lambda e: seen.setdefault(e, time.time()))
            job.wait(timeout=300)
            time.sleep(1.5)
            run.close()
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
        lat = [
            at - (store / "epochs" / f"{e:06d}" / "epoch.json").stat().st_mtime
            for e, at in sorted(seen.items())
            if e > 0
        ]
    print(
        f"\nfollow (Recorder.open(follow=True), poll every 0.5 s), {len(lat)} epochs written by a "
        f"DDP job: manifest landed -> listener called: median {statistics.median(lat):.2f} s, "
        f"max {max(lat):.2f} s"
    )


class Transformer(nn.Module):
    """A GPT-2-small-sized encoder stack: 32k vocabulary, d 768, 12 layers (~110M parameters)."""

    def __init__(self, vocab: int = 32000, d: int = 768, layers: int = 12) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, 12, 4 * d, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed(x)))


def transformer(threads: int) -> None:
    torch.manual_seed(0)
    model = Transformer()
    n = sum(p.numel() for p in model.parameters())
    x = torch.randint(0, 32000, (2, 64))
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    t0 = time.perf_counter()
    c0 = time.thread_time()
    loss = nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten())
    loss.backward()
    opt.step()
    opt.zero_grad()
    step_s = time.perf_counter() - t0
    step_cpu = time.thread_time() - c0
    print(
        f"\n~100M transformer: {n / 1e6:.1f}M parameters ({format_bytes(n * 4)} float32); one "
        f"training step (batch 2 x 64 tokens, {threads} thread(s)): {step_s:.2f} s, CPU "
        f"{step_cpu:.2f} s. epoch(): mean of epochs 0 and 1 (wall, and CPU of the "
        "process: all its threads); write: the store's background thread, waited for by flush()"
    )
    print(
        f"  {'snapshot=':30} {'epoch() s':>10} {'CPU s':>6} {'write s':>8} {'on disk/epoch':>14} "
        f"{'held':>10}"
    )
    policies: list[tuple[str, Any]] = [
        ("'full'", "full"),
        ("'auto' (> 256 MB)", "auto"),
        ("'reduced'", "reduced"),
        ("10 (full every 10)", 10),
        ("['head'] (full), rest reduced", ["head"]),
        ("'stats'", "stats"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, policy) in enumerate(policies):
            store = Path(tmp) / f"p{i}"
            rec = ls.Recorder(model, store=store, snapshot=policy, budget="4GB")
            epoch_s, cpu_s, write_s = [], [], []
            for _ in range(2):
                with torch.no_grad():
                    model.head.bias.add_(1e-3)
                # The process's CPU: epoch() may summarise a big model on two threads.
                t0, c0 = time.perf_counter(), time.process_time()
                rec.epoch()
                t1 = time.perf_counter()
                cpu_s.append(time.process_time() - c0)
                rec.flush()
                epoch_s.append(t1 - t0)
                write_s.append(time.perf_counter() - t1)
            rec.close()
            sizes = [
                sum(
                    f.stat().st_size
                    for f in (store / "epochs" / f"{e:06d}").rglob("*")
                    if f.is_file()
                )
                for e in (0, 1)
            ]
            # Epoch 1 is what a policy keeps between its full snapshots (epoch 0 is always full
            # for "every k"); both are printed where they differ.
            print(
                f"  {label:30} {statistics.mean(epoch_s):10.2f} {statistics.mean(cpu_s):6.2f} "
                f"{statistics.mean(write_s):8.2f} "
                f"{format_bytes(sizes[1]):>14} {format_bytes(rec.nbytes):>10}"
                + (f"  (epoch 0: {format_bytes(sizes[0])})" if sizes[0] != sizes[1] else "")
            )
            del rec


def run_issue14(args: Any) -> None:
    torch.set_num_threads(args.threads)
    if args.distributed:
        distributed(4 if args.quick else 8, args.width, 2 if args.quick else 3)
    if args.follow:
        follow()
    if args.transformer:
        transformer(args.threads)
    if args.long_run:
        long_run(args.long_run)
    load = os.getloadavg()
    print(f"\nload average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 cores)")


def _count_sent(widget: Any, sent: list[int]) -> None:
    """Add the binary bytes ``widget``'s comm sends to ``sent[0]``."""
    send = widget.comm.send

    def counting(data: Any = None, metadata: Any = None, buffers: Any = None, **kw: Any) -> Any:
        sent[0] += sum(memoryview(b).nbytes for b in buffers or ())
        return send(data=data, metadata=metadata, buffers=buffers, **kw)

    widget.comm.send = counting


def long_run(steps: int) -> None:
    """``epoch()`` after every step (no store) for ``steps`` steps of an 8-8-2 MLP and a quarter
    of them of a 512-512-10 MLP (a 512 x 512 weight: frames that fill the view's budget),
    without a view, with a live ``ls.timeline(rec)`` and with a live workspace
    (``ls.explore(model, x, recorder=rec)``): the median call per fifth of the run, and the
    median binary bytes the view sends to the front end per call (its comm's buffers)."""
    import warnings

    from layerscope.record import RecorderWarning

    for width, n, outs in ((8, steps, 2), (512, steps // 4, 10)):
        block = max(1, n // 5)
        print(
            f"\nepoch() after every step (axis='step'), {5 * block:,} steps of the {width}-{width}-"
            f"{outs} MLP; median epoch() per block of {block:,} calls (ms):"
        )
        header = " | ".join(f"{b * block:,}-{(b + 1) * block - 1:,}" for b in range(5))
        print(f"  {'':22} {header}")
        for label in ("no view", "live ls.timeline(rec)", "live ls.explore(...)"):
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, outs))
            x = torch.randn(16, width)
            rec = ls.Recorder(model, axis="step", probe=x[:4])
            view: Any = None
            sent = [0]
            if label.startswith("live ls.timeline"):
                view = ls.timeline(rec)
                _count_sent(view.scrubber, sent)
            elif label.startswith("live ls.explore"):
                view = ls.explore(model, x[:4], recorder=rec)
                _count_sent(view, sent)
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            blocks: list[list[float]] = [[] for _ in range(5)]
            nbytes: list[list[int]] = [[] for _ in range(5)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RecorderWarning)  # the budget's thinning
                for s in range(5 * block):
                    opt.zero_grad()
                    loss = model(x).square().mean()
                    loss.backward()
                    opt.step()
                    rec.step(loss=loss)
                    t, before = time.perf_counter(), sent[0]
                    rec.epoch()
                    blocks[s // block].append(time.perf_counter() - t)
                    nbytes[s // block].append(sent[0] - before)
            row = " | ".join(f"{statistics.median(b) * 1e3:.2f}" for b in blocks)
            print(f"  {label:22} {row}")
            if view is not None:
                row = " | ".join(f"{statistics.median(b) / 1e3:.1f}" for b in nbytes)
                print(f"  {'  kB sent / call':22} {row}")
            if view is not None:
                view.close()
