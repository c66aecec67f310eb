"""Views inside a view: widgets whose comm is a channel of another widget's comm.

``ls.explore`` is ONE anywidget (one comm, one saved state) that shows several of our views as
panels. Each panel is an ordinary view (``WeightsView``, ``ActivationView``, ``ScrubberView``)
made *headless*: instead of a comm of its own it gets a ``RelayComm``, which hands every message
the widget sends (state updates, request replies) to its host, who forwards it to the front end
tagged with the panel's name; messages from the front end tagged with that name come back in
through ``RelayComm.receive``. The panel code, kernel side and front end, is the same code a
standalone view runs; only the transport differs. ``headless(host, name)`` makes every widget
created inside it relay through ``host`` (a view such as ``TimelineView`` creates widgets of its
own).
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ipywidgets import Widget
from ipywidgets import comm as widget_comm
from ipywidgets.widgets.widget import _remove_buffers

Forward = Callable[[str, dict[str, Any], list[Any]], None]

_ids = itertools.count()


class RelayComm:
    """The comm of a headless widget: what the widget sends goes to ``forward(channel, data,
    buffers)``; what the front end sends for it arrives through ``receive``."""

    def __init__(
        self, channel: str, forward: Forward | None, listening: Callable[[], bool] | None = None
    ) -> None:
        self.comm_id = f"ls-relay-{uuid.uuid4().hex}"
        self.channel = channel
        self._forward = forward
        self._listening = listening
        self._on_msg: Callable[[dict[str, Any]], None] | None = None

    @property
    def kernel(self) -> str | None:
        """ipywidgets serializes a trait change only for a comm whose ``kernel`` is not None:
        while the host drops what its panels send (it bakes their state for thousands of
        layers), they skip the serialization too."""
        if self._forward is None or (self._listening is not None and not self._listening()):
            return None
        return "relay"

    # -- the comm interface ipywidgets uses ---------------------------------------------------
    def send(
        self, data: Any = None, metadata: Any = None, buffers: list[Any] | None = None
    ) -> None:
        if self._forward is not None and isinstance(data, dict):
            self._forward(self.channel, data, list(buffers or []))

    def on_msg(self, callback: Callable[[dict[str, Any]], None] | None) -> None:
        self._on_msg = callback

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self._forward = None

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    # -- from the front end ---------------------------------------------------------------------
    def receive(self, data: dict[str, Any], buffers: list[Any]) -> None:
        """Deliver a front-end message (``{"method": "update" | "custom", ...}``) to the widget,
        as its own comm would."""
        if self._on_msg is not None:
            self._on_msg({"content": {"data": data}, "buffers": buffers})


@contextlib.contextmanager
def headless(
    forward: Forward | None, channel: str, listening: Callable[[], bool] | None = None
) -> Iterator[list[RelayComm]]:
    """Every widget created inside gets a ``RelayComm`` on a channel ``channel/k`` instead of a
    comm to the front end; yields the list of those comms (the host routes by ``comm.channel``).

    ``forward=None`` makes widgets that send nowhere; ``listening()`` False says the host drops
    what they send for now (trait changes are then not serialized at all).
    """
    made: list[RelayComm] = []
    original = widget_comm.create_comm

    def create_comm(*args: Any, **kwargs: Any) -> RelayComm:
        relay = RelayComm(f"{channel}/{next(_ids)}", forward, listening)
        made.append(relay)
        return relay

    # ipywidgets' own shim (not the `comm` package that hosts replace): only widgets made here
    # are affected. A host may also give each new widget its comm from the construction
    # callback (marimo does): none runs here.
    construction = Widget._widget_construction_callback
    widget_comm.create_comm = create_comm
    Widget._widget_construction_callback = None
    try:
        yield made
    finally:
        widget_comm.create_comm = original
        Widget._widget_construction_callback = construction


# Traits of a widget that a panel never needs in the front end (the host brings the code).
_NOT_SENT = {"_esm", "_css", "_anywidget_id", "layout", "_dom_classes", "tabbable", "tooltip"}


def panel_state(widget: Widget, keys: list[str] | None = None) -> dict[str, Any]:
    """The widget's synced state as the front end's panel model takes it:
    ``{"state", "buffer_paths", "buffers"}`` (buffers as memoryviews, nested in the host's
    state, where ipywidgets lifts them out as binary frames)."""
    names = [k for k in (keys or widget.keys) if k not in _NOT_SENT and not k.startswith("_view")]
    names = [k for k in names if not k.startswith("_model")]
    state, paths, buffers = _remove_buffers(widget.get_state(key=names))
    return {"state": state, "buffer_paths": paths, "buffers": buffers}
