"""The 16-byte header of rtvc.v1 binary audio frames.

Layout, little-endian::

    offset size field
    0      1    version       always 1
    1      1    flags         bit 0 LAST, bit 1 DISCONTINUITY (before this frame); other bits 0
    2      2    reserved      0
    4      4    seq           per-direction message counter, wraps at 2**32
    8      8    start_sample  index of the first sample frame in the sender's stream, at the sender's rate

The PCM payload follows: interleaved samples in the negotiated format.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag

from rtvc.protocol.codes import ErrorCode, ProtocolError

__all__ = ["HEADER_BYTES", "VERSION", "FrameFlags", "FrameHeader", "check_payload", "pack_frame", "parse_frame"]

VERSION = 1
HEADER_BYTES = 16
_HEADER = struct.Struct("<BBHIQ")
_SEQ_MOD = 1 << 32


class FrameFlags(IntFlag):
    NONE = 0
    LAST = 1
    DISCONTINUITY = 2


_KNOWN_FLAGS = int(FrameFlags.LAST | FrameFlags.DISCONTINUITY)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """A parsed header; ``start_sample`` counts sample frames (all channels of one instant = 1)."""

    seq: int
    start_sample: int
    last: bool = False
    discontinuity: bool = False

    @property
    def flags(self) -> FrameFlags:
        flags = FrameFlags.NONE
        if self.last:
            flags |= FrameFlags.LAST
        if self.discontinuity:
            flags |= FrameFlags.DISCONTINUITY
        return flags

    def pack(self) -> bytes:
        return _HEADER.pack(VERSION, int(self.flags), 0, self.seq % _SEQ_MOD, self.start_sample)


def pack_frame(header: FrameHeader, payload: bytes | bytearray | memoryview) -> bytes:
    """Header + payload as one binary message."""
    return header.pack() + bytes(payload)


def parse_frame(data: bytes | bytearray | memoryview) -> tuple[FrameHeader, memoryview]:
    """Split a binary message into its header and a view of the PCM payload.

    Raises
    ------
    ProtocolError
        code ``bad_frame``: shorter than the header, unknown version, unknown
        flag bits or a non-zero reserved field.
    """
    view = memoryview(data)
    if len(view) < HEADER_BYTES:
        raise ProtocolError(
            f"binary frame of {len(view)} bytes is shorter than the {HEADER_BYTES}-byte header", ErrorCode.BAD_FRAME
        )
    version, flags, reserved, seq, start_sample = _HEADER.unpack_from(view)
    if version != VERSION:
        raise ProtocolError(f"frame header version {version} is not supported (expected {VERSION})", ErrorCode.BAD_FRAME)
    if flags & ~_KNOWN_FLAGS:
        raise ProtocolError(f"unknown frame flag bits 0x{flags & ~_KNOWN_FLAGS:02x}", ErrorCode.BAD_FRAME)
    if reserved:
        raise ProtocolError(f"reserved header field must be 0, got {reserved}", ErrorCode.BAD_FRAME)
    header = FrameHeader(
        seq=seq,
        start_sample=start_sample,
        last=bool(flags & FrameFlags.LAST),
        discontinuity=bool(flags & FrameFlags.DISCONTINUITY),
    )
    return header, view[HEADER_BYTES:]


def check_payload(payload_bytes: int, *, bytes_per_frame: int, max_frames: int) -> int:
    """Number of sample frames in a payload; ``bad_frame`` if partial or longer than ``max_frames``."""
    if payload_bytes % bytes_per_frame:
        raise ProtocolError(
            f"payload of {payload_bytes} bytes is not a whole number of {bytes_per_frame}-byte sample frames",
            ErrorCode.BAD_FRAME,
        )
    frames = payload_bytes // bytes_per_frame
    if frames > max_frames:
        raise ProtocolError(f"frame holds {frames} samples; the limit is {max_frames}", ErrorCode.BAD_FRAME)
    return frames
