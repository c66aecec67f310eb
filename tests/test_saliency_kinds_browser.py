"""ls.saliency on sequences (N, L, D), signals (N, C, L) and video (N, C, T, H, W) in real
JupyterLab and Chromium: each in its natural form, with the attribution exactly where the model
looks (linear models whose weights are non-zero at one known place), and the video's frame
scrubber moving the overlay; a video page exported offline scrubs too."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import layerscope as ls
from browser import Lab, evaluate, offline_guard, open_notebook, screenshot

pytestmark = pytest.mark.browser

MODELS = """import torch, layerscope as ls
from torch import nn

class Linear(nn.Module):
    '''A linear classifier over the flattened input whose class 0 reads only `where`.'''
    def __init__(self, shape, where, front=None):
        super().__init__()
        self.front = front  # a Conv1d makes a (N, C, L) input a signal
        w = torch.zeros(2, *shape)
        w[(0, *where)] = 1.0
        self.w = nn.Parameter(w.flatten(1))
    def forward(self, x):
        if self.front is not None:
            x = x + 0 * self.front(x).sum()
        return x.flatten(1) @ self.w.T + torch.tensor([10.0, 0.0])

def ident(c):
    conv = nn.Conv1d(c, 1, 1)
    return conv

torch.manual_seed(0)
"""

CELLS = [
    MODELS
    + """seq = Linear((6, 4), (2, 1))
xs = torch.ones(1, 6, 4)
view_seq = ls.saliency(seq, xs, method="gradient")
view_seq""",
    """t = torch.linspace(0, 1, 32)
wave = torch.sin(2 * torch.pi * 3 * t)[None, None]
sig = Linear((1, 32), (0, slice(10, 20)), front=ident(1))
view_wave = ls.saliency(sig, wave, method="gradient")
view_wave""",
    """spec_x = torch.rand(1, 8, 32, generator=torch.Generator().manual_seed(0))
spec = Linear((8, 32), (2, slice(5, 11)), front=ident(8))
view_spec = ls.saliency(spec, spec_x, method="gradient")
view_spec""",
    """clip = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
vid = Linear((3, 4, 8, 8), (slice(None), 2, slice(0, 4), slice(0, 4)))
view_vid = ls.saliency(vid, clip, method="gradient")
view_vid""",
]


def kind_pixel(
    page: Any, kind: str, method: str, canvas: str, row: int, col: int
) -> tuple[int, ...]:
    return tuple(
        page.evaluate(
            """([kind, method, canvas, row, col]) => {
                const host = document.querySelector(`.ls-kind-views[data-kind="${kind}"]`);
                const c = host.querySelector(`[data-method="${method}"] canvas${canvas}`);
                return Array.from(c.getContext('2d').getImageData(col, row, 1, 1).data.slice(0, 3));
            }""",
            [kind, method, canvas, row, col],
        )
    )


def coloured(rgb: tuple[int, ...]) -> bool:
    """Red (positive attribution): clearly more red than green and blue."""
    return rgb[0] - max(rgb[1], rgb[2]) > 30


def near_white(rgb: tuple[int, ...], tol: int = 40) -> bool:
    return all(v >= 255 - tol for v in rgb)


def test_sequence_signal_spectrogram_and_video_in_lab(page: Any, kernels: Lab) -> None:
    lab = kernels
    open_notebook(page, lab, "saliency_kinds.ipynb", CELLS)
    for kind in ("sequence", "signal", "video"):
        page.wait_for_selector(f".ls-kind-views[data-kind='{kind}'] canvas", timeout=120_000)
    page.wait_for_function(
        "document.querySelectorAll(\".ls-kind-views[data-kind='signal']\").length === 2"
    )
    assert not page.errors  # type: ignore[attr-defined]

    # Sequence: the strip has steps along x, features along y; only (step 2, feature 1) is red.
    assert coloured(kind_pixel(page, "sequence", "gradient", ".ls-strip", 1, 2))
    assert near_white(kind_pixel(page, "sequence", "gradient", ".ls-strip", 3, 4))
    assert page.locator(".ls-kind-views[data-kind='sequence'] canvas.ls-bars").count() == 1
    seq = page.locator(".jp-OutputArea .ls-saliency").nth(0)
    seq.scroll_into_view_if_needed()
    screenshot(page, "saliency_kinds_sequence")

    # Waveform: columns of steps 10..19 are red behind the line, steps before them are not.
    signals = page.locator(".ls-kind-views[data-kind='signal']")
    wave_px = page.evaluate(
        """() => {
            const host = document.querySelectorAll(".ls-kind-views[data-kind='signal']")[0];
            const c = host.querySelector('[data-method="gradient"] canvas.ls-wave');
            const ctx = c.getContext('2d');
            const at = (x) => Array.from(ctx.getImageData(x, 2, 1, 1).data.slice(0, 3));
            return {hot: at(2 * 15), cold: at(2 * 3), width: c.width};
        }"""
    )
    assert wave_px["width"] == 64
    assert coloured(tuple(wave_px["hot"])), wave_px
    assert near_white(tuple(wave_px["cold"]), 60), wave_px
    assert signals.nth(0).locator("canvas.ls-wave").count() == 2  # input + gradient

    # Spectrogram: channel 2 (row 8 - 1 - 2 = 5 from the top), steps 5..10 are red.
    spec_px = page.evaluate(
        """() => {
            const host = document.querySelectorAll(".ls-kind-views[data-kind='signal']")[1];
            const c = host.querySelector('[data-method="gradient"] canvas.ls-spec');
            const ctx = c.getContext('2d');
            const at = (r, x) => Array.from(ctx.getImageData(x, r, 1, 1).data.slice(0, 3));
            const inp = host.querySelector('[data-method="input"] canvas.ls-spec').getContext('2d');
            const inAt = (r, x) => Array.from(inp.getImageData(x, r, 1, 1).data.slice(0, 3));
            return {hot: at(5, 7), other: at(1, 7), input: inAt(1, 7), size: [c.height, c.width]};
        }"""
    )
    assert spec_px["size"] == [8, 32]
    assert coloured(tuple(spec_px["hot"])), spec_px
    # where there is no attribution the spectrogram shows through unchanged
    assert max(abs(a - b) for a, b in zip(spec_px["other"], spec_px["input"], strict=True)) <= 2
    signals.nth(1).scroll_into_view_if_needed()
    screenshot(page, "saliency_kinds_signal")

    # Video: frame 0 has no attribution; scrub to frame 2 and its top-left quadrant is red.
    vid = ".ls-kind-views[data-kind='video']"
    assert page.locator(vid).get_attribute("data-frame") == "0"
    frame0 = page.evaluate(
        f"""() => {{
            const host = document.querySelector("{vid}");
            const g = host.querySelector('.ls-panel[data-method="gradient"] canvas').getContext('2d');
            const i = host.querySelector('.ls-panel[data-method="input"] canvas').getContext('2d');
            return [Array.from(g.getImageData(1, 1, 1, 1).data.slice(0, 3)),
                    Array.from(i.getImageData(1, 1, 1, 1).data.slice(0, 3))];
        }}"""
    )
    assert frame0[0] == frame0[1], "frame 0 carries no attribution: the overlay is the input"
    page.locator(f"{vid} input.ls-frame").fill("2")
    page.wait_for_function(f"document.querySelector(\"{vid}\").dataset.frame === '2'")
    assert coloured(kind_pixel(page, "video", "gradient", "", 1, 1))
    assert evaluate(lab.kernel_client(), "view_vid.frame") == 2
    page.locator(".jp-OutputArea .ls-saliency").nth(3).scroll_into_view_if_needed()
    screenshot(page, "saliency_kinds_video")
    assert not page.errors  # type: ignore[attr-defined]


def test_exported_video_scrubs_offline(page: Any, tmp_path: pathlib.Path) -> None:
    import torch
    from torch import nn

    class Frame2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = torch.zeros(2, 3, 4, 8, 8)
            w[0, :, 2, :4, :4] = 1.0
            self.w = nn.Parameter(w.flatten(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) @ self.w.T

    clip = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    view = ls.saliency(Frame2(), clip, 0, method="gradient")
    path = ls.export_html(view, tmp_path / "video.html")
    with offline_guard(page) as attempted:
        page.goto(path.as_uri())
        vid = ".ls-kind-views[data-kind='video']"
        page.wait_for_selector(f"{vid} canvas", timeout=60_000)
        page.locator(f"{vid} input.ls-frame").fill("2")
        page.wait_for_function(f"document.querySelector(\"{vid}\").dataset.frame === '2'")
        assert coloured(kind_pixel(page, "video", "gradient", "", 1, 1))
        screenshot(page, "saliency_kinds_video_export")
    assert attempted == []
    assert not page.errors  # type: ignore[attr-defined]
