"""Every protocol error gets its code and close code, and the server stays up."""

import asyncio
import json
import struct

import httpx
import numpy as np
import pytest
import websockets

from rtvc.protocol import FrameHeader, pack_frame
from tests.server.conftest import (
    S16_16K,
    connect,
    receive_all,
    send_audio,
    start_message,
    start_session,
    to_s16,
)

F32_16K = {"encoding": "pcm_f32le", "sample_rate": 16000, "channels": 1}


def assert_server_up(server):
    """Health answers and a fresh session still round-trips."""
    assert httpx.get(f"{server.http}/healthz").json() == {"status": "ok"}

    async def run():
        async with connect(server) as ws:
            await start_session(ws)
            await ws.send(pack_frame(FrameHeader(0, 0, last=True), bytes(640)))
            return await receive_all(ws)

    got = asyncio.run(run())
    assert got.of_type("session.ended") and got.close_code == 1000


async def exchange(server, messages, *, start=None):
    """Open, optionally start, send ``messages``, and collect everything until the server closes."""
    async with connect(server) as ws:
        if start is not None:
            await start_session(ws, **start)
        for message in messages:
            await ws.send(message)
        return await receive_all(ws, limit_s=10)


def the_error(got):
    [error] = got.of_type("error")
    return error["code"], got.close_code


FATAL_BEFORE_START = [
    ("bad JSON", ["{not json"], "bad_message", 4400),
    ("unknown type", ['{"type": "hello"}'], "bad_message", 4400),
    ("binary before start", [pack_frame(FrameHeader(0, 0), bytes(640))], "bad_message", 4400),
    ("unknown voice", [start_message(voice="nobody")], "unknown_voice", 4404),
    ("bad sample rate", [start_message(input_format={**S16_16K, "sample_rate": 12345})], "bad_format", 4400),
    ("bad encoding", [start_message(input_format={**S16_16K, "encoding": "mp3"})], "bad_format", 4400),
    ("bad params", [start_message(voice="feminine", params={"pitch": 99})], "bad_params", 4400),
    ("block too small", [start_message(block_ms=0.5)], "bad_params", 4400),
]


@pytest.mark.parametrize(("label", "messages", "code", "close"), FATAL_BEFORE_START, ids=[c[0] for c in FATAL_BEFORE_START])
def test_errors_before_start_close_with_their_code(server, label, messages, code, close):
    got = asyncio.run(exchange(server, messages))
    assert the_error(got) == (code, close)
    assert not got.frames


FATAL_FRAMES = [
    ("wrong header version", struct.pack("<BBHIQ", 2, 0, 0, 0, 0) + bytes(640), S16_16K, "bad_frame", 1002),
    ("short header", b"\x01\x00\x00", S16_16K, "bad_frame", 1002),
    ("partial sample", pack_frame(FrameHeader(0, 0), bytes(641)), S16_16K, "bad_frame", 1002),
    ("frame too long", pack_frame(FrameHeader(0, 0), bytes(2 * 16000)), S16_16K, "bad_frame", 1002),
    ("NaN samples", pack_frame(FrameHeader(0, 0), np.full(160, np.nan, "<f4").tobytes()), F32_16K, "bad_audio", 1002),
]


@pytest.mark.parametrize(("label", "frame", "fmt", "code", "close"), FATAL_FRAMES, ids=[c[0] for c in FATAL_FRAMES])
def test_bad_audio_frames_end_the_session(server, label, frame, fmt, code, close):
    got = asyncio.run(exchange(server, [frame], start={"input_format": fmt}))
    assert the_error(got) == (code, close)
    assert not got.of_type("session.ended")


def test_oversize_messages(server):
    limit = server.ctx.limits.max_message_bytes
    for message in ("x" * (limit + 1), pack_frame(FrameHeader(0, 0), bytes(limit))):
        got = asyncio.run(exchange(server, [message], start={}))
        assert the_error(got) == ("message_too_big", 1009)
    assert_server_up(server)


def test_control_errors_are_answered_and_the_session_goes_on(server):
    messages = ["{not json", '{"type": "dance"}', '{"type": "session.update", "params": {"pitch": 99}}',
                start_message(), '{"type": "ping", "t": 1}', '{"type": "session.end"}']
    got = asyncio.run(exchange(server, messages, start={"voice": "feminine", "params": {}}))
    assert [e["code"] for e in got.of_type("error")] == ["bad_message", "bad_message", "bad_params", "bad_message"]
    assert got.of_type("pong") == [{"type": "pong", "t": 1}]
    assert got.of_type("session.ended") and got.close_code == 1000


@pytest.mark.parametrize("key", [None, "rtvc_0000_nope", "not-a-key"])
def test_bad_key_is_401_before_the_upgrade(server, key):
    async def run():
        async with connect(server, key=key):
            pass

    with pytest.raises(websockets.InvalidStatus) as info:
        asyncio.run(run())
    response = info.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["code"] == "unauthorized"
    assert_server_up(server)


def test_browser_subprotocol_auth(server):
    async def run():
        async with websockets.connect(server.ws_url, subprotocols=["rtvc.v1", f"bearer.{server.key}"],
                                      compression=None, proxy=None) as ws:
            assert ws.subprotocol == "rtvc.v1"
            await start_session(ws)
            await ws.send('{"type": "session.end"}')
            return await receive_all(ws)

    assert asyncio.run(run()).close_code == 1000


def test_revoked_key_is_refused(server):
    key, info = server.ctx.keys.create("client", name="temporary")
    server.ctx.keys.revoke(info.id)

    async def run():
        async with connect(server, key=key):
            pass

    with pytest.raises(websockets.InvalidStatus) as exc:
        asyncio.run(run())
    assert exc.value.response.status_code == 401


def test_idle_timeout(make_server):
    server = make_server(idle_timeout_s=0.3)
    got = asyncio.run(exchange(server, [], start={}))
    assert the_error(got) == ("idle_timeout", 4408)
    assert len(server.ctx.manager) == 0


def test_idle_timeout_before_start_and_after_audio_stops(make_server):
    server = make_server(idle_timeout_s=0.3)
    before = asyncio.run(exchange(server, []))  # connected, never started
    assert the_error(before) == ("idle_timeout", 4408)

    async def streams_then_stops():
        async with connect(server) as ws:
            await start_session(ws)
            for seq in range(10):  # 0.5 s of audio over 0.5 s: longer than the timeout, so it is the silence after
                await ws.send(pack_frame(FrameHeader(seq, seq * 800), bytes(1600)))
                await asyncio.sleep(0.05)
            return await receive_all(ws, limit_s=10)

    after = asyncio.run(streams_then_stops())
    assert the_error(after) == ("idle_timeout", 4408)
    assert after.frames  # the audio sent before the silence was converted and delivered
    assert len(server.ctx.manager) == 0


def test_measured_load_refuses_with_overloaded(make_server, speech):
    x, rate = speech
    server = make_server(engine={"load_window_s": 0.2, "max_load": 1e-6})

    async def run():
        async with connect(server) as first:
            await start_session(first)
            sender = asyncio.create_task(send_audio(first, to_s16(x[: 2 * rate]), bytes_per_sample=2, rate=rate))
            reader = asyncio.create_task(receive_all(first))  # a client that stops reading cannot close quickly
            await asyncio.sleep(0.6)  # the first session is measured while it streams: any load means overload
            refused = await exchange(server, [start_message()])
            await sender
            await reader
            return refused

    refused = asyncio.run(run())
    assert the_error(refused) == ("overloaded", 1013)
    assert "load" in refused.of_type("error")[0]["message"]
    assert server.ctx.metrics.sessions_refused.value(code="overloaded") == 1


def test_session_cap_refuses_with_overloaded(make_server):
    server = make_server(max_sessions=1)

    async def run():
        async with connect(server) as first:
            await start_session(first)
            refused = await exchange(server, [start_message()])
            await first.send('{"type": "session.end"}')
            await receive_all(first)
            return refused

    refused = asyncio.run(run())
    assert the_error(refused) == ("overloaded", 1013)
    assert "maximum of 1" in refused.of_type("error")[0]["message"]
