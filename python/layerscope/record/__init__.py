"""Training history: ``Recorder`` records a model step by step and epoch by epoch, within a
memory budget and optionally on disk; ``Recorder.open(path)`` reads a stored run back.

torch and numpy only, never widget code.

>>> from layerscope.record import Recorder
>>> rec = Recorder(model, probe=x[:32], store="runs/exp1")   # doctest: +SKIP
"""

from .budget import parse_budget
from .distributed import DistributedRecorderError
from .history import EpochRecord, Histograms, History, Snapshot, ThinnedError
from .policy import SnapshotPolicy
from .recorder import RecordedRun, Recorder
from .steplog import RecorderWarning
from .store import StoreConflictError, StoreError, StoreLockedError

__all__ = [
    "DistributedRecorderError",
    "EpochRecord",
    "Histograms",
    "History",
    "RecordedRun",
    "Recorder",
    "RecorderWarning",
    "Snapshot",
    "SnapshotPolicy",
    "StoreConflictError",
    "StoreError",
    "StoreLockedError",
    "ThinnedError",
    "parse_budget",
]
