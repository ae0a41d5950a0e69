"""JSON control messages of rtvc.v1: parsing, validation and the server's replies.

Client -> server: ``session.start``, ``session.update``, ``ping``, ``session.end``.
Server -> client: ``session.started``, ``pong``, ``stats``, ``session.ended``, ``error``.

Validation here covers the message shape (types, required and unknown fields).
Audio formats, voices and parameter ranges are checked where they are known
(:class:`rtvc.session.StartRequest`, the voice); their errors carry their own codes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rtvc.protocol.codes import ErrorCode, ProtocolError

__all__ = [
    "CLIENT_TYPES",
    "MAX_PURPOSE_CHARS",
    "check_size",
    "error_message",
    "parse_text",
    "pong_message",
    "validate",
]

MAX_PURPOSE_CHARS = 200

# type -> (required fields, optional fields)
_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "session.start": (frozenset({"voice", "purpose", "input"}), frozenset({"output", "params", "block_ms"})),
    "session.update": (frozenset({"params"}), frozenset()),
    "ping": (frozenset(), frozenset({"t"})),
    "session.end": (frozenset(), frozenset()),
}
CLIENT_TYPES = frozenset(_FIELDS)


def check_size(size_bytes: int, max_bytes: int) -> None:
    """``message_too_big`` if a message exceeds the limit (checked before parsing anything)."""
    if size_bytes > max_bytes:
        raise ProtocolError(f"message of {size_bytes} bytes exceeds the {max_bytes}-byte limit", ErrorCode.MESSAGE_TOO_BIG)


def parse_text(text: str) -> dict[str, Any]:
    """Decode and validate one text message; returns the message object.

    Raises
    ------
    ProtocolError
        code ``bad_message``: not JSON, not an object, unknown type, missing or
        unknown fields, wrong field types.
    """
    try:
        msg = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"text message is not valid JSON: {exc}") from None
    return validate(msg)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def validate(msg: object) -> dict[str, Any]:
    """Validate an already-decoded message (the WebRTC data channel and the WebSocket share this)."""
    if not isinstance(msg, dict):
        raise ProtocolError(f"a message must be a JSON object, got {type(msg).__name__}")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise ProtocolError('a message needs a string "type" field')
    if kind not in _FIELDS:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {', '.join(sorted(_FIELDS))}")
    required, optional = _FIELDS[kind]
    missing = sorted(required - msg.keys())
    if missing:
        raise ProtocolError(f"{kind} is missing field(s): {', '.join(missing)}")
    unknown = sorted(msg.keys() - required - optional - {"type"})
    if unknown:
        raise ProtocolError(f"{kind} has unknown field(s): {', '.join(unknown)}")
    _CHECKS.get(kind, _no_check)(msg)
    return msg


def _no_check(msg: dict[str, Any]) -> None:
    return None


def _check_start(msg: dict[str, Any]) -> None:
    if not isinstance(msg["voice"], str) or not msg["voice"]:
        raise ProtocolError('session.start "voice" must be a non-empty string')
    purpose = msg["purpose"]
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > MAX_PURPOSE_CHARS:
        raise ProtocolError(f'session.start "purpose" must be a non-empty string of at most {MAX_PURPOSE_CHARS} chars')
    for field in ("input", "output"):
        if field in msg and not isinstance(msg[field], dict):
            raise ProtocolError(f'session.start "{field}" must be an object (encoding, sample_rate, channels)')
    _check_params_object(msg.get("params", {}), "session.start")
    if "block_ms" in msg:
        block_ms = msg["block_ms"]
        if isinstance(block_ms, bool) or not isinstance(block_ms, (int, float)) or not math.isfinite(block_ms):
            raise ProtocolError('session.start "block_ms" must be a number of milliseconds')


def _check_update(msg: dict[str, Any]) -> None:
    _check_params_object(msg["params"], "session.update")


def _check_ping(msg: dict[str, Any]) -> None:
    t = msg.get("t")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float, str))):
        raise ProtocolError('ping "t" must be a number or a string (it is echoed in the pong)')


def _check_params_object(params: object, where: str) -> None:
    if not isinstance(params, dict):
        raise ProtocolError(f'{where} "params" must be an object of name -> number')


_CHECKS = {"session.start": _check_start, "session.update": _check_update, "ping": _check_ping}


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": str(code), "message": message}


def pong_message(ping: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = {"type": "pong"}
    if "t" in ping:
        reply["t"] = ping["t"]
    return reply
