"""A notebook in real JupyterLab follows a run that a background ``torchrun`` job is writing:
``ls.timeline("runs/exp1")`` grows while the job runs (DOM and pixels), keeps the user's scrub
position, and stops following when the view is closed."""

from __future__ import annotations

import statistics
import subprocess
import time
from typing import Any

import pytest

from browser import Lab, evaluate, open_notebook, screenshot
from torchrun_job import env, kill_job, torchrun_cmd

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = ".jp-OutputArea .ls-timeline-scrub"


def shown_epoch(page: Any) -> int:
    return int(page.eval_on_selector(ROOT, "e => e.dataset.epoch"))


def slider_max(page: Any) -> int:
    return int(page.eval_on_selector(f"{ROOT} .ls-tl-slider", "e => e.max"))


def weight_pixels(page: Any) -> str:
    return str(page.eval_on_selector(f"{ROOT} .ls-tl-weight canvas", "c => c.toDataURL()"))


def test_notebook_follows_a_torchrun_job_while_it_writes(page: Any, kernels: Lab) -> None:
    lab = kernels
    store = lab.root / "runs" / "exp1"
    job = subprocess.Popen(
        torchrun_cmd(
            "--mode",
            "ddp",
            "--store",
            str(store),
            "--epochs",
            "200",
            "--epoch-sleep",
            "1.0",
            "--width",
            "8",
        ),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (store / "epochs" / "000000" / "epoch.json").exists():
            assert job.poll() is None, job.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the job wrote no epoch"
            time.sleep(0.1)
        cell = f"import layerscope as ls\nview = ls.timeline({str(store)!r}, layer='classifier.1')\nview"
        open_notebook(page, lab, "follow.ipynb", [cell])
        page.wait_for_selector(f"{ROOT} .ls-tl-weight canvas", timeout=120_000)
        first = shown_epoch(page)
        pixels = {first: weight_pixels(page)}
        # Each new epoch shows while the job runs; latency from its manifest landing to the DOM.
        latencies = []
        e = first
        while e < first + 3:
            page.wait_for_function(
                f"Number(document.querySelector('{ROOT}').dataset.epoch) > {e}", timeout=60_000
            )
            seen = time.time()
            e = shown_epoch(page)
            landed = (store / "epochs" / f"{e:06d}" / "epoch.json").stat().st_mtime
            latencies.append(seen - landed)
            pixels[e] = weight_pixels(page)
            assert job.poll() is None, "the timeline must grow while the job runs"
        assert slider_max(page) == e
        # The weights are painted anew as epochs arrive: three epochs on, the image differs.
        # (Not every pair of consecutive epochs: their reduced frames, quantized to 256 levels
        # over the whole run's range, can be equal when the weights moved less than a level;
        # that made this check fail in 2 of 5 CI runs.)
        assert pixels[e] != pixels[first]
        print(f"\nfollow latency, manifest to DOM: {[round(x, 2) for x in latencies]} s")
        assert statistics.median(latencies) < 2.0 and max(latencies) < 2.5
        screenshot(page, "follow_lab_live")

        # The user scrubs back: new epochs extend the slider, the shown epoch stays.
        page.locator(".jp-OutputArea .ls-timeline-scrub").focus()
        page.keyboard.press("ArrowLeft")
        back = e - 1
        assert shown_epoch(page) == back
        client = lab.kernel_client()
        deadline = time.monotonic() + 10
        state = "[view.epoch, view.scrubber.follow, view.scrubber.epoch, view.scrubber.epochs[-1]]"
        while evaluate(client, state)[:2] != [back, False]:
            assert time.monotonic() < deadline, (evaluate(client, state), shown_epoch(page), back)
            time.sleep(0.2)
        page.wait_for_function(
            f"Number(document.querySelector('{ROOT} .ls-tl-slider').max) > {e}", timeout=60_000
        )
        time.sleep(0.5)
        assert shown_epoch(page) == back and evaluate(client, "view.epoch") == back
        assert not page.locator(f"{ROOT} .ls-tl-follow").is_checked()  # issue 11's toggle: off
        screenshot(page, "follow_lab_scrubbed_back")
        assert job.poll() is None, job.communicate()[1][-3000:]
        kill_job(job)  # the job is stopped (its store keeps every complete epoch)
        time.sleep(1.0)
        # Every epoch written reaches the view; closing it stops the poller.
        written = sorted(int(p.parent.name) for p in store.glob("epochs/*/epoch.json"))
        deadline = time.monotonic() + 10
        while evaluate(client, "view.scrubber.epochs") != written:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert evaluate(client, "view._owned.following") is True
        assert evaluate(client, "view.close() or view._owned.following") is False
        client.stop_channels()
    finally:
        kill_job(job)
    assert page.errors == []
