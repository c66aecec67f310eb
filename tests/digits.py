"""The digits data and CNN for tests: the code lives in ``bench/digits.py``, shared with
``bench/recorder.py`` and ``notebooks/training.ipynb``; this module loads it under the name the
tests import (``import digits``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "bench" / "digits.py"
_spec = importlib.util.spec_from_file_location("layerscope_bench_digits", _PATH)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
sys.modules["layerscope_bench_digits"] = _module
_spec.loader.exec_module(_module)

load = _module.load
DigitsCNN = _module.DigitsCNN
accuracy = _module.accuracy
train = _module.train
Training = _module.Training

__all__ = ["DigitsCNN", "Training", "accuracy", "load", "train"]
