"""Request/reply: the base view answers with the request's id, buffers, or a readable error."""

from __future__ import annotations

from typing import Any

import pytest

from layerscope.widgets.base import BaseView, RequestTooLarge, request


class EchoView(BaseView):
    _esm = "export default { render() {} }"

    @request("echo")
    def _echo(self, args: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        return {"n": args["n"]}, [bytes(args["n"])]

    @request("boom")
    def _boom(self, args: dict[str, Any]) -> dict[str, Any]:
        raise IndexError("(9, 9) is outside the tensor of shape (3, 3)")

    @request("huge")
    def _huge(self, args: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        return {}, [bytes(self.max_reply_bytes + 1)]


@pytest.fixture
def view() -> Any:
    v = EchoView()
    sent: list[tuple[dict[str, Any], list[Any]]] = []
    v.send = lambda content, buffers=None: sent.append((content, buffers or []))  # type: ignore[method-assign]
    v.sent = sent  # type: ignore[attr-defined]
    yield v
    v.close()


def test_reply_carries_id_content_and_buffers(view: Any) -> None:
    view._on_custom_message(view, {"ls": 1, "id": "r1", "kind": "echo", "args": {"n": 3}}, [])
    content, buffers = view.sent[-1]
    assert content == {"ls": 1, "id": "r1", "ok": True, "n": 3}
    assert [bytes(b) for b in buffers] == [b"\0\0\0"]


def test_errors_come_back_readable(view: Any) -> None:
    view._on_custom_message(view, {"ls": 1, "id": "r2", "kind": "boom", "args": {}}, [])
    content, _ = view.sent[-1]
    assert content["ok"] is False and content["id"] == "r2"
    assert content["error"]["type"] == "IndexError"
    assert "outside the tensor" in content["error"]["message"]


def test_unknown_kind_lists_the_known_ones(view: Any) -> None:
    view._on_custom_message(view, {"ls": 1, "id": "r3", "kind": "nope"}, [])
    message = view.sent[-1][0]["error"]["message"]
    assert "no request 'nope'" in message and "echo" in message and "ping" in message


def test_replies_larger_than_a_screen_are_refused(view: Any) -> None:
    with pytest.raises(RequestTooLarge):
        view.handle_request("huge", {})
    view._on_custom_message(view, {"ls": 1, "id": "r4", "kind": "huge"}, [])
    assert view.sent[-1][0]["error"]["type"] == "RequestTooLarge"


def test_messages_that_are_not_ours_are_ignored(view: Any) -> None:
    view._on_custom_message(view, {"kind": "anywidget-command", "id": 1}, [])
    view._on_custom_message(view, "text", [])
    assert view.sent == []


def test_handlers_are_inherited_per_class() -> None:
    assert {"echo", "boom", "huge", "ping"} <= set(EchoView._handlers)
    assert set(BaseView._handlers) == {"ping"}
