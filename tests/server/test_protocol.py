"""rtvc.v1 sans-I/O: frame header bytes, message validation, control handling, codes."""

import json
import struct

import pytest

from rtvc.errors import ParamError
from rtvc.protocol import (
    CLOSE_FOR_ERROR,
    HEADER_BYTES,
    CloseCode,
    ErrorCode,
    FrameHeader,
    ProtocolError,
    check_payload,
    check_size,
    close_code_for,
    handle_control,
    pack_frame,
    parse_frame,
    parse_text,
)


def test_header_layout_is_little_endian_16_bytes():
    data = pack_frame(FrameHeader(seq=0x01020304, start_sample=0x0A0B0C0D0E0F1011, last=True, discontinuity=True),
                      b"\x01\x02")
    assert len(data) == HEADER_BYTES + 2
    assert data[:HEADER_BYTES] == bytes([1, 0b11, 0, 0, 4, 3, 2, 1, 0x11, 0x10, 0x0F, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A])
    header, payload = parse_frame(data)
    assert header == FrameHeader(0x01020304, 0x0A0B0C0D0E0F1011, last=True, discontinuity=True)
    assert bytes(payload) == b"\x01\x02"


def test_seq_wraps_at_32_bits():
    header, _ = parse_frame(FrameHeader(seq=2**32 + 5, start_sample=0).pack())
    assert header.seq == 5


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x01" * 15, "shorter than the 16-byte header"),
        (struct.pack("<BBHIQ", 2, 0, 0, 0, 0), "version 2"),
        (struct.pack("<BBHIQ", 1, 4, 0, 0, 0), "unknown frame flag"),
        (struct.pack("<BBHIQ", 1, 0, 7, 0, 0), "reserved"),
    ],
)
def test_bad_headers_are_bad_frame(data, fragment):
    with pytest.raises(ProtocolError, match=fragment) as info:
        parse_frame(data)
    assert info.value.code == "bad_frame"


def test_payload_checks():
    assert check_payload(640, bytes_per_frame=2, max_frames=320) == 320
    with pytest.raises(ProtocolError, match="whole number") as info:
        check_payload(641, bytes_per_frame=2, max_frames=1000)
    assert info.value.code == "bad_frame"
    with pytest.raises(ProtocolError, match="limit is 320"):
        check_payload(642, bytes_per_frame=2, max_frames=320)


START = {"type": "session.start", "voice": "passthrough", "purpose": "research",
         "input": {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1}}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "ping", "t": NaN}', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"kind": "ping"}', 'string "type"'),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        (json.dumps({k: v for k, v in START.items() if k != "purpose"}), "missing field(s): purpose"),
        (json.dumps({**START, "colour": "red"}), "unknown field(s): colour"),
        (json.dumps({**START, "voice": ""}), '"voice" must be'),
        (json.dumps({**START, "purpose": " "}), '"purpose" must be'),
        (json.dumps({**START, "input": "pcm"}), '"input" must be an object'),
        (json.dumps({**START, "params": [1]}), '"params" must be an object'),
        (json.dumps({**START, "block_ms": "10"}), '"block_ms" must be a number'),
        ('{"type": "session.update"}', "missing field(s): params"),
        ('{"type": "ping", "t": [1]}', '"t" must be'),
    ],
)
def test_bad_messages_are_bad_message(text, fragment):
    with pytest.raises(ProtocolError) as info:
        parse_text(text)
    assert info.value.code == "bad_message"
    assert fragment in str(info.value)


def test_valid_messages_pass_through():
    assert parse_text(json.dumps(START))["voice"] == "passthrough"
    assert parse_text('{"type": "session.end"}') == {"type": "session.end"}


def test_size_limit():
    check_size(100, 100)
    with pytest.raises(ProtocolError) as info:
        check_size(101, 100)
    assert info.value.code == "message_too_big"


class FakeSession:
    """Records what control messages did (the real Session is exercised over sockets in test_ws.py)."""

    def __init__(self):
        self.updates, self.ended = [], False

    def update(self, params):
        if params.get("pitch", 0) > 12:
            raise ParamError("parameter 'pitch'=13 is outside -12..12 semitones")
        self.updates.append(params)

    def request_end(self):
        self.ended = True


def test_control_messages():
    session = FakeSession()
    assert handle_control(session, {"type": "ping", "t": 12.5}) == [{"type": "pong", "t": 12.5}]
    assert handle_control(session, {"type": "ping"}) == [{"type": "pong"}]
    assert handle_control(session, {"type": "session.update", "params": {"pitch": 3}}) == []
    assert session.updates == [{"pitch": 3}]
    [reply] = handle_control(session, {"type": "session.update", "params": {"pitch": 13}})
    assert reply["type"] == "error" and reply["code"] == "bad_params" and "outside" in reply["message"]
    [reply] = handle_control(session, dict(START))
    assert reply["code"] == "bad_message" and "already started" in reply["message"]
    assert handle_control(session, {"type": "session.end"}) == [] and session.ended


def test_every_error_code_has_a_close_code():
    assert set(CLOSE_FOR_ERROR) == set(ErrorCode)
    assert close_code_for("overloaded") == CloseCode.TRY_AGAIN_LATER == 1013
    assert close_code_for("something_new") == CloseCode.INTERNAL_ERROR
    assert all(1000 <= code <= 4999 for code in CloseCode)
