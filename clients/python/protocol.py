"""The rtvc.v1 wire format as seen from a client: audio frame headers and control messages.

Standalone on purpose (numpy and the standard library only), so the client runs without the server package.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

__all__ = [
    "FLAG_DISCONTINUITY",
    "FLAG_LAST",
    "HEADER_BYTES",
    "SUBPROTOCOL",
    "AudioChunk",
    "ProtocolViolation",
    "pack_frame",
    "parse_control",
    "unpack_frame",
]

SUBPROTOCOL = "rtvc.v1"
VERSION = 1
FLAG_LAST = 0x01
FLAG_DISCONTINUITY = 0x02
# u8 version, u8 flags, u16 reserved, u32 seq, u64 start_sample; little-endian, no padding.
_HEADER = struct.Struct("<BBHIQ")
HEADER_BYTES = _HEADER.size


class ProtocolViolation(ValueError):
    """The server sent something that is not rtvc.v1."""


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """One audio frame received from the server.

    ``start_sample`` counts output samples (at the output rate): output sample k corresponds to input time
    k - latency. ``arrival`` is the client's ``time.monotonic()`` in seconds when it was read.
    """

    seq: int
    start_sample: int
    pcm: bytes
    last: bool = False
    discontinuity: bool = False
    arrival: float = 0.0


def pack_frame(pcm: bytes, *, seq: int, start_sample: int, last: bool = False, discontinuity: bool = False) -> bytes:
    """Header + interleaved PCM bytes, ready to send as one binary WebSocket message."""
    flags = (FLAG_LAST if last else 0) | (FLAG_DISCONTINUITY if discontinuity else 0)
    return _HEADER.pack(VERSION, flags, 0, seq & 0xFFFFFFFF, start_sample) + bytes(pcm)


def unpack_frame(message: bytes, *, arrival: float = 0.0) -> AudioChunk:
    """Parse one binary message; raises ProtocolViolation on a short message or a wrong version."""
    if len(message) < HEADER_BYTES:
        raise ProtocolViolation(f"binary message of {len(message)} bytes is shorter than the {HEADER_BYTES}-byte header")
    version, flags, _reserved, seq, start_sample = _HEADER.unpack_from(message)
    if version != VERSION:
        raise ProtocolViolation(f"audio frame version {version}, expected {VERSION}")
    return AudioChunk(
        seq=seq,
        start_sample=start_sample,
        pcm=bytes(message[HEADER_BYTES:]),
        last=bool(flags & FLAG_LAST),
        discontinuity=bool(flags & FLAG_DISCONTINUITY),
        arrival=arrival,
    )


def parse_control(text: str) -> dict:
    """A text message as a dict with a ``type``; raises ProtocolViolation otherwise."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolViolation(f"server sent invalid JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolViolation(f"server sent a control message without a type: {text[:200]!r}")
    return message
