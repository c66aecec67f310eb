"""The base of every view: request/reply between the front end and the kernel.

The front end sends a custom message ``{"ls": 1, "id": ..., "kind": ..., "args": {...}}``; the
kernel answers ``{"ls": 1, "id": ..., "ok": True, ...content}`` with binary buffers, or
``{"ls": 1, "id": ..., "ok": False, "error": {"type", "message"}}``, which the view shows as a
readable message. Subclasses declare handlers with ``@request("kind")``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, ClassVar

import anywidget
import traitlets

log = logging.getLogger("layerscope")

Reply = tuple[dict[str, Any], list[Any]]
Handler = Callable[[Any, dict[str, Any]], Any]


def request(kind: str) -> Callable[[Handler], Handler]:
    """Mark a method as the handler of front-end requests of ``kind``.

    The method gets the request's ``args`` dict and returns a JSON dict, or ``(dict, buffers)``
    where buffers are ``memoryview``/``bytes`` sent as binary frames.

    >>> class View(BaseView):                       # doctest: +SKIP
    ...     @request("value")
    ...     def _value(self, args): return {"value": 1.0}
    """

    def mark(fn: Handler) -> Handler:
        fn._ls_request_kind = kind  # type: ignore[attr-defined]
        return fn

    return mark


class RequestTooLarge(RuntimeError):
    """A reply would carry more bytes than any screen needs: a bug in the handler's bounds."""


def _nbytes(buf: Any) -> int:
    return memoryview(buf).nbytes


def _collect_handlers(cls: type) -> dict[str, str]:
    """kind -> method name over the whole MRO (a subclass overrides its bases)."""
    handlers: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            kind = getattr(value, "_ls_request_kind", None)
            if kind is not None:
                handlers[kind] = name
    return handlers


class BaseView(anywidget.AnyWidget):
    """An anywidget with request/reply handlers and a readable error trait for the view.

    ``max_reply_bytes`` bounds every reply: what crosses the wire is bounded by the screen, not by
    the tensor (a 4K screen at 2x is 33 M pixels; 64 MiB covers any tile at 2 bytes a pixel).
    """

    max_reply_bytes: ClassVar[int] = 64 * 2**20
    _handlers: ClassVar[dict[str, str]] = {}

    # The last error a request raised, as text; the view shows it (never a blank view).
    _error = traitlets.Unicode("").tag(sync=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = _collect_handlers(cls)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_msg(self._on_custom_message)

    def _describe(self) -> list[str]:
        """What this view shows, in a few words, for its text repr (subclasses add to it)."""
        title = getattr(self, "title", "")
        return [repr(title)] if isinstance(title, str) and title else []

    def __repr__(self) -> str:
        # The text a notebook keeps when the view cannot render (a page exported without widget
        # state, a plain terminal): what it shows, never ``object at 0x...``.
        return f"{type(self).__name__}({', '.join(self._describe())})"

    @request("ping")
    def _ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True}

    def _on_custom_message(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict) or content.get("ls") != 1 or "id" not in content:
            return  # not ours (anywidget uses custom messages too)
        rid = content["id"]
        kind = content.get("kind")
        try:
            content_out, buffers_out = self.handle_request(kind, content.get("args") or {})
        except Exception as exc:
            log.debug("layerscope request %r failed", kind, exc_info=True)
            self.send(
                {
                    "ls": 1,
                    "id": rid,
                    "ok": False,
                    "error": {
                        "type": type(exc).__name__,
                        "message": str(exc) or type(exc).__name__,
                        "traceback": "".join(traceback.format_exception(exc)[-3:]),
                    },
                }
            )
            return
        self.send({"ls": 1, "id": rid, "ok": True, **content_out}, buffers=buffers_out)

    def handle_request(self, kind: Any, args: dict[str, Any]) -> Reply:
        """Run the handler for ``kind``; returns (content, buffers). Used by tests directly."""
        name = self._handlers.get(kind) if isinstance(kind, str) else None
        if name is None:
            known = ", ".join(sorted(self._handlers))
            raise ValueError(f"{type(self).__name__} has no request {kind!r}; known: {known}")
        result = getattr(self, name)(args)
        content, buffers = result if isinstance(result, tuple) else (result, [])
        size = sum(_nbytes(b) for b in buffers)
        if size > self.max_reply_bytes:
            raise RequestTooLarge(
                f"reply to {kind!r} would send {size:,} bytes, more than the {self.max_reply_bytes:,} "
                "any screen needs; the handler must bound it by the requested screen size"
            )
        return content, buffers


BaseView._handlers = _collect_handlers(BaseView)
