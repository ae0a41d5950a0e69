"""Control messages after ``session.started``, shared by every transport.

The WebSocket and the WebRTC data channel ``rtvc`` both pass each validated
text message to :func:`handle_control` and send back what it returns, so both
speak exactly the same JSON. Errors in control messages are answered and the
session goes on; only the transport decides to close.

``session.end`` only asks the session to finish its input here: the session
flushes its tail, its output runs dry (``next_output()`` returns None) and the
transport then sends ``session.final_message()`` (``session.ended`` with the
totals, or the error that ended the session) and closes.
"""

from __future__ import annotations

from typing import Any, Protocol

from rtvc.errors import RtvcError
from rtvc.protocol.codes import ErrorCode
from rtvc.protocol.messages import error_message, pong_message

__all__ = ["ControlTarget", "handle_control"]


class ControlTarget(Protocol):
    """What control messages act on (an :class:`rtvc.session.Session`)."""

    def update(self, params: dict[str, Any]) -> None: ...

    def request_end(self) -> None: ...


def handle_control(session: ControlTarget, msg: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply one validated client message (see :func:`rtvc.protocol.messages.validate`); return the replies."""
    kind = msg["type"]
    if kind == "ping":
        return [pong_message(msg)]
    if kind == "session.update":
        try:
            session.update(msg["params"])
        except RtvcError as exc:
            return [error_message(exc.code, str(exc))]
        return []
    if kind == "session.end":
        session.request_end()
        return []
    if kind == "session.start":
        return [error_message(ErrorCode.BAD_MESSAGE, "session already started; open a new connection for another")]
    return [error_message(ErrorCode.BAD_MESSAGE, f"message type {kind!r} is not a control message")]
