"""Saliency inputs beyond images and tokens, each baked for its natural form.

- ``sequence`` (N, L, D) float: feature vectors per step (LSTM / GRU / Transformer inputs, audio
  features). Shown as a step x feature strip of the attribution with the per-step totals
  (sum over features) as bars above it.
- ``signal`` (N, C, L) float: a 1-D signal with C channels (a Conv1d front end, Whisper's
  log-mel input). One channel: the waveform with the attribution along it; several: the
  channels x time image (a spectrogram) with the attribution over it; per-step totals too.
- ``video`` (N, C, T, H, W) float: frames; each frame's image and attribution (summed over
  channels), one colour scale for all frames of a sample, and a frame scrubber.

The same attribution methods run on all of them (``ls.attribute`` takes any float shape);
only the display differs. The baked payloads fit the view's byte budget like images do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..wire.codec import encode_array
from ..wire.quantize import quantize_u8
from ..wire.tiles import block_reduce, fit_shape

EXTRA_KINDS = ("sequence", "signal", "video")
# The longest side baked for a strip, a signal or a spectrogram (a screen panel needs no more).
MAX_STRIP = 512
MAX_FRAME_SIDE = 112
MIN_SIDE = 8


def detect_kind(model: nn.Module, x: torch.Tensor, given: str | None) -> str | None:
    """``sequence``, ``signal`` or ``video`` for a float (N, L, D) / (N, C, L) / (N, C, T, H, W)
    input, None for other inputs. (N, L, D) and (N, C, L) have the same rank: a model with an
    ``nn.Conv1d`` taking ``x.shape[1]`` channels gets ``signal``, others ``sequence``;
    ``input_kind=`` says which when that guess is wrong."""
    if given is not None:
        if given not in EXTRA_KINDS:
            raise ValueError(
                f"input_kind must be one of {list(EXTRA_KINDS)} or None; got {given!r}."
            )
        want = 5 if given == "video" else 3
        if not x.dtype.is_floating_point or x.dim() != want:
            raise ValueError(
                f"input_kind={given!r} needs a float tensor with {want} dims; got shape "
                f"{tuple(x.shape)} dtype {x.dtype}."
            )
        return given
    if not x.dtype.is_floating_point:
        return None
    if x.dim() == 5:
        return "video"
    if x.dim() == 3:
        if _image_model(model):
            return None  # an image without its batch dimension, most likely: an error says so
        channels = int(x.shape[1])
        conv1d = any(
            isinstance(m, nn.Conv1d) and m.in_channels == channels for m in model.modules()
        )
        return "signal" if conv1d else "sequence"
    return None


def video_axes(t: torch.Tensor) -> torch.Tensor:
    """A video tensor as (N, C, T, H, W): models that take (N, T, C, H, W) (VideoMAE) are read
    that way when dim 2 looks like colour channels (1 or 3) and dim 1 does not."""
    if t.dim() == 5 and int(t.shape[1]) not in (1, 3) and int(t.shape[2]) in (1, 3):
        return t.transpose(1, 2)
    return t


def _image_model(model: nn.Module) -> bool:
    """A model with 2-D convolutions and nothing that reads sequences or signals."""
    conv2d = False
    for m in model.modules():
        if (
            isinstance(m, (nn.Conv1d, nn.RNNBase, nn.MultiheadAttention))
            or "Attention" in type(m).__name__
        ):
            return False
        conv2d = conv2d or isinstance(m, nn.Conv2d)
    return conv2d


def display_map(kind: str, attr: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """An attribution as the array the view shows: (N, L, D) for sequences, (N, C, L) for
    signals, (N, T, H, W) for video (summed over channels). Maps that methods give over the
    input already (Grad-CAM: (N, 1, L) or (N, 1, T, H, W)) are resized to the input's grid."""
    a = attr.detach().float().cpu()
    if kind == "video":
        if a.dim() == 5 and a.shape == x.shape:
            a = video_axes(a)
        x = video_axes(x)
        if a.dim() == 5:
            a = a.sum(1)
        if a.dim() != 4:
            raise ValueError(f"a video map needs (N, T, H, W); got {tuple(attr.shape)}")
        if tuple(a.shape[1:]) != tuple(x.shape[2:]):
            a = F.interpolate(a[:, None], tuple(x.shape[2:]), mode="trilinear")[:, 0]
        return a
    if kind == "signal":
        if a.dim() == 2:  # one value per step
            a = a[:, None]
        if a.shape[-1] != x.shape[-1]:
            a = F.interpolate(a, int(x.shape[-1]), mode="linear")
        if a.shape[1] != x.shape[1]:  # a map over time only (Grad-CAM): the same on each channel
            a = a.mean(1, keepdim=True).expand(-1, int(x.shape[1]), -1)
        return a
    # sequence
    if a.dim() == 2:  # a per-step map (Grad-CAM / attention on a sequence)
        a = a[:, :, None].expand(-1, -1, int(x.shape[2])) / max(1, int(x.shape[2]))
    if a.dim() != 3:
        raise ValueError(f"a sequence map needs (N, L, D); got {tuple(attr.shape)}")
    return a


def _signed(a: np.ndarray) -> float:
    finite = a[np.isfinite(a)]
    m = float(np.abs(finite).max()) if finite.size else 0.0
    return m if m > 0 else 1.0


def coded(a: np.ndarray, m: float | None = None) -> dict[str, Any]:
    """uint8 codes over [-m, m] (NaN/Inf sentinels, see wire/quantize.py) as a payload dict."""
    m = _signed(a) if m is None else m
    codes, q = quantize_u8(np.ascontiguousarray(a, dtype=np.float32), -m, m)
    return {"codes": encode_array(codes), "quant": q, "max_abs": m}


def _u8_image(t: torch.Tensor) -> np.ndarray:
    """(h, w) or (c, h, w) float -> uint8 min-max normalised (h, w, c), c 1 or 3."""
    t = torch.nan_to_num(t.detach().float().cpu(), nan=0.0, posinf=0.0, neginf=0.0)
    if t.dim() == 2:
        t = t[None]
    if t.shape[0] not in (1, 3):
        t = t.mean(0, keepdim=True)
    lo, hi = float(t.min()), float(t.max())
    t = (t - lo) / (hi - lo) if hi > lo else torch.zeros_like(t)
    return (t.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def _frame_side(x: torch.Tensor, maps: int, budget: int) -> tuple[int, int]:
    n, c, t, h, w = (int(v) for v in x.shape)
    per_pixel = n * t * ((3 if c == 3 else 1) + maps)
    side = min(MAX_FRAME_SIDE, max(h, w))
    while side > MIN_SIDE and per_pixel * np.prod(fit_shape((h, w), side)) > budget:
        side = int(side * 0.8)
    return fit_shape((h, w), max(side, MIN_SIDE))


def _strip_shape(rows: int, cols: int, n: int, maps: int, budget: int) -> tuple[int, int]:
    side = MAX_STRIP
    while side > MIN_SIDE and n * (maps + 1) * np.prod(fit_shape((rows, cols), side)) > budget:
        side = int(side * 0.8)
    return fit_shape((rows, cols), max(side, MIN_SIDE))


def bake(
    kind: str, x: torch.Tensor, maps: dict[str, torch.Tensor], b: int, budget: int
) -> dict[str, Any]:
    """What the view draws for sample ``b``: ``{"input": ..., "maps": {method: ...}}``.

    sequence: ``input`` (L', D') values coded; per method ``map`` codes (L', D') and ``totals``
    (L,) coded (block means where L or D is over the strip size). signal: ``wave`` (L',)
    float32 for one channel or ``image`` (C', L', 1) uint8 for several; per method codes
    (C', L') and ``totals`` (L',). video: ``frames`` (T, h, w, c) uint8; per method codes
    (T, h, w) on one scale per sample.
    """
    out: dict[str, Any] = {}
    coded_maps: dict[str, Any] = {}
    if kind == "sequence":
        steps, feats = int(x.shape[1]), int(x.shape[2])
        shape = _strip_shape(steps, feats, int(x.shape[0]), len(maps), budget)
        out["input"] = coded(block_reduce(x[b].detach().float().cpu(), shape))
        out["grid"] = list(shape)
        for m, a in maps.items():
            payload = coded(block_reduce(a[b], shape))
            totals = block_reduce(a[b].sum(-1, keepdim=True), (shape[0], 1))[:, 0]
            payload["totals"] = coded(totals)
            coded_maps[m] = payload
    elif kind == "signal":
        channels, steps = int(x.shape[1]), int(x.shape[2])
        shape = _strip_shape(channels, steps, int(x.shape[0]), len(maps), budget)
        sig = x[b].detach().float().cpu()
        if channels == 1:
            out["wave"] = encode_array(block_reduce(sig, (1, shape[1]))[0].astype(np.float32))
        else:
            out["image"] = encode_array(_u8_image(torch.from_numpy(block_reduce(sig, shape))))
        out["grid"] = list(shape)
        for m, a in maps.items():
            payload = coded(block_reduce(a[b], shape))
            totals = block_reduce(a[b].sum(0, keepdim=True), (1, shape[1]))[0]
            payload["totals"] = coded(totals)
            coded_maps[m] = payload
    elif kind == "video":
        x = video_axes(x)
        th, tw = _frame_side(x, len(maps), budget)
        frames = x[b].detach().float().cpu().transpose(0, 1)  # (T, C, H, W)
        if tuple(frames.shape[2:]) != (th, tw):
            frames = F.interpolate(frames, size=(th, tw), mode="area")
        out["frames"] = encode_array(_clip_u8(frames))
        out["grid"] = [int(frames.shape[0]), th, tw]
        for m, a in maps.items():
            per = a[b]
            if tuple(per.shape[1:]) != (th, tw):
                per = F.interpolate(per[:, None], size=(th, tw), mode="area")[:, 0]
            arr = per.numpy().astype(np.float32)
            payload = coded(arr)
            totals = a[b].sum((1, 2)).numpy().astype(np.float32)
            payload["totals"] = coded(totals)
            coded_maps[m] = payload
    else:
        raise ValueError(f"unknown input kind {kind!r}")
    out["maps"] = coded_maps
    return out


def _clip_u8(frames: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) -> uint8 (T, H, W, c), c 1 or 3, min-max normalised over the whole clip so
    brightness compares across frames."""
    f = torch.nan_to_num(frames, nan=0.0, posinf=0.0, neginf=0.0)
    if f.shape[1] not in (1, 3):
        f = f.mean(1, keepdim=True)
    lo, hi = float(f.min()), float(f.max())
    f = (f - lo) / (hi - lo) if hi > lo else torch.zeros_like(f)
    return (f.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
