"""Adapters for training frameworks: a Lightning callback and a Hugging Face ``TrainerCallback``.

Optional: each class exists only when its library is installed; importing it otherwise raises
an ImportError that says what to install. Neither library is imported by ``layerscope.record``.

>>> from layerscope.record.adapters import LightningRecorder        # doctest: +SKIP
>>> trainer = L.Trainer(callbacks=[LightningRecorder(rec)])          # doctest: +SKIP
>>> from layerscope.record.adapters import HFRecorder               # doctest: +SKIP
>>> Trainer(model, args, callbacks=[HFRecorder(rec)])                # doctest: +SKIP

Both call ``rec.step()`` just before the optimizer steps (the gradients are complete and the
weights are those the update starts from, as in a plain loop), attach the loss with
``rec.log(loss=...)`` when the framework reports it, and call ``rec.epoch(**metrics)`` at each
training epoch's end with the framework's scalar metrics.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from typing import Any

import torch

from .recorder import Recorder


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            out[str(k)] = float(v.detach())
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[str(k)] = float(v)
    return out


def _loss_of(outputs: Any) -> Any:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping):
        return outputs.get("loss")
    return None


def _lightning_callback() -> type:
    try:
        base = importlib.import_module("lightning.pytorch").Callback
    except ImportError:
        try:
            base = importlib.import_module("pytorch_lightning").Callback
        except ImportError:
            raise ImportError(
                "LightningRecorder needs Lightning: pip install lightning (or pytorch-lightning)"
            ) from None

    class LightningRecorder(base):  # type: ignore[misc, valid-type]
        """Lightning callback feeding a ``Recorder``: ``Trainer(callbacks=[LightningRecorder(rec)])``."""

        def __init__(self, recorder: Recorder) -> None:
            super().__init__()
            if not isinstance(recorder, Recorder):
                raise TypeError(
                    f"LightningRecorder needs an ls.Recorder, got {type(recorder).__name__}"
                )
            self.recorder = recorder

        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            self.recorder.step()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            loss = _loss_of(outputs)
            if loss is not None and self.recorder.num_steps:
                self.recorder.log(loss=loss)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.recorder.epoch(**_scalars(getattr(trainer, "callback_metrics", {}) or {}))

    return LightningRecorder


def _hf_callback() -> type:
    try:
        base = importlib.import_module("transformers").TrainerCallback
    except ImportError:
        raise ImportError(
            "HFRecorder needs Hugging Face transformers: pip install transformers"
        ) from None

    class HFRecorder(base):  # type: ignore[misc, valid-type]
        """``transformers.TrainerCallback`` feeding a ``Recorder``: ``Trainer(..., callbacks=[HFRecorder(rec)])``.

        Gradients are read in ``on_pre_optimizer_step`` (transformers >= 4.39). With an older
        version, steps are recorded at ``on_step_end``, after the Trainer zeroed the gradients,
        so gradient norms are missing (NaN or 0); losses, update ratios and epochs still work.
        """

        def __init__(self, recorder: Recorder) -> None:
            super().__init__()
            if not isinstance(recorder, Recorder):
                raise TypeError(f"HFRecorder needs an ls.Recorder, got {type(recorder).__name__}")
            self.recorder = recorder
            self._stepped = False

        def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.recorder.step()
            self._stepped = True

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not self._stepped:  # an old transformers without on_pre_optimizer_step
                self.recorder.step()
            self._stepped = False

        def on_log(
            self,
            args: Any,
            state: Any,
            control: Any,
            logs: Mapping[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            values = _scalars(logs or {})
            if values and self.recorder.num_steps:
                self.recorder.log(**values)

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            history = getattr(state, "log_history", None) or []
            evals = [h for h in history if any(k.startswith("eval_") for k in h)]
            self.recorder.epoch(**_scalars(evals[-1] if evals else {}))

    return HFRecorder


_FACTORIES = {"LightningRecorder": _lightning_callback, "HFRecorder": _hf_callback}
_made: dict[str, type] = {}


def __getattr__(name: str) -> type:
    if name not in _FACTORIES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _made:
        _made[name] = _FACTORIES[name]()
    return _made[name]
