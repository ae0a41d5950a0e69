"""rtvc.v1, sans-I/O: frame header codec, message validation, control handling, error and close codes.

Nothing here does I/O, knows a clock or imports asyncio or numpy; the
transports (:mod:`rtvc.transport`) are thin drivers over it.
"""

from __future__ import annotations

from rtvc.protocol.codes import CLOSE_FOR_ERROR, CloseCode, ErrorCode, ProtocolError, close_code_for
from rtvc.protocol.control import handle_control
from rtvc.protocol.frames import (
    HEADER_BYTES,
    VERSION,
    FrameFlags,
    FrameHeader,
    check_payload,
    pack_frame,
    parse_frame,
)
from rtvc.protocol.messages import CLIENT_TYPES, check_size, error_message, parse_text, pong_message, validate

__all__ = [
    "CLIENT_TYPES",
    "CLOSE_FOR_ERROR",
    "HEADER_BYTES",
    "PROTOCOL",
    "VERSION",
    "CloseCode",
    "ErrorCode",
    "FrameFlags",
    "FrameHeader",
    "ProtocolError",
    "check_payload",
    "check_size",
    "close_code_for",
    "error_message",
    "handle_control",
    "pack_frame",
    "parse_frame",
    "parse_text",
    "pong_message",
    "validate",
]

PROTOCOL = "rtvc.v1"  # the WebSocket subprotocol name
