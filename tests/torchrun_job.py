"""A 2-process ``torchrun`` job of ``bench/distributed_digits.py`` for the tests: the command,
its environment (this checkout's package first), a bounded run, and kill -9 of the whole job."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from browser import free_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "distributed_digits.py"


def torchrun_cmd(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(SCRIPT),
        *args,
    ]


def env() -> dict[str, str]:
    paths = [str(ROOT / "python"), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "OMP_NUM_THREADS": "1",
    }


def torchrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        torchrun_cmd(*args), env=env(), capture_output=True, text=True, timeout=timeout
    )


def kill_job(job: subprocess.Popen) -> None:
    """kill -9 torchrun and its workers (they run in sessions of their own)."""
    import psutil

    if job.poll() is not None:
        return
    procs = [psutil.Process(job.pid), *psutil.Process(job.pid).children(recursive=True)]
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    psutil.wait_procs(procs[1:], timeout=30)
