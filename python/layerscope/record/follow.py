"""Following a run that another process is writing: a background poller over its store.

The poller lists the store's epoch manifests every ``interval`` seconds (0.5 by default, so an
epoch shows within ~1 s of its manifest landing) and loads each new complete epoch: only epochs
whose manifest exists are read, so a half-written epoch is never seen. It runs on a daemon thread,
so the kernel stays free, and calls the run's ``on_epoch`` listeners (a timeline view pushes the
new epoch to the browser through its comm). It stops on ``run.close()``.

>>> run = ls.Recorder.open("runs/exp1", follow=True)    # doctest: +SKIP
>>> stop = run.on_epoch(lambda e: print("epoch", e))     # doctest: +SKIP
>>> run.close()                                          # doctest: +SKIP
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

from .steplog import RecorderWarning

DEFAULT_INTERVAL = 0.5


class Poller:
    """Call ``poll()`` every ``interval`` seconds on a daemon thread until ``stop()``.

    ``poll`` returns the new epochs it loaded (each is passed to ``notify``). An error is kept
    (``error``), warned once, and polling goes on: a store that is briefly unreachable comes back.
    """

    def __init__(
        self,
        poll: Callable[[], list[int]],
        notify: Callable[[int], None],
        interval: float = DEFAULT_INTERVAL,
        name: str = "",
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self._poll, self._notify, self.interval = poll, notify, float(interval)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"layerscope-follow {name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                new = self._poll()
            except Exception as e:
                if self.error is None:
                    warnings.warn(
                        f"layerscope: following the run failed ({e}); retrying every "
                        f"{self.interval:g} s (run.close() stops it).",
                        RecorderWarning,
                        stacklevel=1,
                    )
                self.error = e
                continue
            self.error = None
            for epoch in new:
                if self._stop.is_set():
                    return
                self._notify(epoch)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
