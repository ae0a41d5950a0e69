"""WebSocket rtvc.v1 against the real server: round trips, timelines, stats, ending."""

import asyncio
import math

import numpy as np
import pytest

from tests.server.conftest import (
    S16_16K,
    connect,
    receive_all,
    send_audio,
    start_session,
    to_s16,
)


def residual_db(y: np.ndarray, reference: np.ndarray) -> float:
    """Power of ``y - reference`` relative to ``reference``, dB."""
    y, reference = np.asarray(y, np.float64), np.asarray(reference, np.float64)
    return float(10 * np.log10(np.sum((y - reference) ** 2) / np.sum(reference**2)))


def check_timeline(frames, out_rate_total: int) -> None:
    """Output frames: seq counts up from 0, start_sample is contiguous from 0, only the final one is last."""
    assert [h.seq for h, _ in frames] == list(range(len(frames)))
    position = 0
    for header, payload in frames:
        assert header.start_sample == position
        assert not header.discontinuity
        position += len(payload) // 2
    assert position == out_rate_total
    assert frames[-1][0].last and not any(h.last for h, _ in frames[:-1])


def test_round_trip_passthrough_is_the_input_delayed_by_latency(server, speech):
    x, rate = speech
    x = x[: rate]  # one second of real speech
    pcm = to_s16(x)

    async def run():
        async with connect(server) as ws:
            started = await start_session(ws)
            sender = asyncio.create_task(send_audio(ws, pcm, bytes_per_sample=2, rate=rate))
            got = await receive_all(ws)
            return started, await sender, got

    started, frames_sent, got = asyncio.run(run())
    latency = started["latency_samples"]
    assert started["input"] == started["output"] == S16_16K
    assert started["block_ms"] > 0 and started["latency_ms"] == pytest.approx(1000 * latency / rate, abs=0.1)
    check_timeline(got.frames, len(x) + math.ceil(started["latency_ms"] * rate / 1000 - 1e-9))
    y = np.frombuffer(got.pcm, "<i2")
    sent = np.frombuffer(pcm, "<i2").astype(np.float64)
    n = len(x) - 40
    lags = range(max(0, latency - 40), latency + 41)
    best = max(lags, key=lambda lag: float(np.dot(y[lag : lag + n], sent[:n])))
    assert best == latency  # output sample k is input sample k - latency
    assert residual_db(y[latency : latency + len(x)], sent) < -20  # the input plus only the watermark
    [ended] = got.of_type("session.ended")
    assert ended["reason"] == "client" and ended["session_id"] == started["session_id"]
    assert ended["frames_in"] == frames_sent and ended["samples_in"] == len(x)
    assert ended["frames_out"] == len(got.frames) and ended["samples_out"] == len(y)
    assert ended["dropped_in"] == ended["dropped_out"] == 0
    assert got.messages[-1] == ended and got.close_code == 1000


def test_converted_voice_resampled_output_and_stats(server, speech):
    """A real DSP voice, 16 kHz s16 in -> 48 kHz f32 stereo out; converted, right length, stats about once a second."""
    x, rate = speech
    x = x[: int(1.3 * rate)]
    out_format = {"encoding": "pcm_f32le", "sample_rate": 48000, "channels": 2}

    async def run():
        async with connect(server) as ws:
            started = await start_session(ws, voice="feminine", output_format=out_format, params={})
            sender = asyncio.create_task(send_audio(ws, to_s16(x), bytes_per_sample=2, rate=rate, lead_s=0.0))
            got = await receive_all(ws)
            await sender
            return started, got

    started, got = asyncio.run(run())
    y = np.frombuffer(got.pcm, "<f4").reshape(-1, 2)
    expected = 3 * len(x) + math.ceil(started["latency_ms"] * 48 - 1e-9)
    assert len(y) == expected
    np.testing.assert_array_equal(y[:, 0], y[:, 1])
    converted = y[started["latency_samples"] :: 3, 0][: len(x)]
    assert np.sqrt(np.mean(converted**2)) > 0.01  # not silent
    assert np.max(np.abs(converted - x[: len(converted)])) > 0.05  # not the input
    stats = got.of_type("stats")
    assert stats, "no stats message in 1.3 s of streaming"
    assert stats[-1]["frames_in"] > 0 and stats[-1]["compute_ms_p50"] > 0 and stats[-1]["rtf"] > 0
    assert set(stats[-1]) >= {"frames_in", "frames_out", "dropped_in", "dropped_out", "queue_ms", "rtf",
                              "compute_ms_p50", "compute_ms_p99"}


def test_ping_update_and_end_without_audio(server):
    async def run():
        async with connect(server) as ws:
            await start_session(ws, voice="feminine", params={})
            await ws.send('{"type": "ping", "t": "abc"}')
            await ws.send('{"type": "session.update", "params": {"pitch": 2.0}}')
            await ws.send('{"type": "ping", "t": 7}')
            await ws.send('{"type": "session.end"}')
            return await receive_all(ws)

    got = asyncio.run(run())
    assert [m.get("t") for m in got.of_type("pong")] == ["abc", 7]
    assert not got.of_type("error")
    assert got.of_type("session.ended")[0]["samples_in"] == 0
    assert got.close_code == 1000
    assert got.frames and got.frames[-1][0].last


def test_twenty_concurrent_sessions(server, speech):
    x, rate = speech
    pcm = to_s16(x[: rate])
    sessions = 20

    async def one(i):
        async with connect(server) as ws:
            started = await start_session(ws, voice="feminine", params={})
            sender = asyncio.create_task(send_audio(ws, pcm, bytes_per_sample=2, rate=rate, lead_s=0.1))
            got = await receive_all(ws, limit_s=30)
            await sender
            return started, got

    async def run():
        return await asyncio.gather(*(one(i) for i in range(sessions)))

    metrics = server.ctx.metrics
    calls_before, blocks_before = metrics.voice_calls.value(), metrics.voice_blocks.value()
    results = asyncio.run(run())
    calls, blocks = metrics.voice_calls.value() - calls_before, metrics.voice_blocks.value() - blocks_before
    # a DSP voice gains nothing from batching: the engine runs it one stream at a time, so each block leaves at once
    assert blocks == calls > 0
    assert len({started["session_id"] for started, _ in results}) == sessions
    outputs = []
    for started, got in results:
        [ended] = got.of_type("session.ended")
        assert got.close_code == 1000
        assert ended["samples_in"] == rate and ended["dropped_in"] == 0 and ended["dropped_out"] == 0
        assert len(got.pcm) // 2 == rate + math.ceil(started["latency_ms"] * rate / 1000 - 1e-9)
        outputs.append(got.pcm)
    # same input and voice: equal up to each session's own watermark, so no state leaks between sessions
    reference = np.frombuffer(outputs[0], "<i2")
    for other in outputs[1:]:
        assert residual_db(np.frombuffer(other, "<i2"), reference) < -15
    assert len(server.ctx.manager) == 0


def test_input_faster_than_real_time_is_dropped_and_flagged(server, speech):
    """3 s sent at once: beyond the real-time lead and the input queue the oldest input goes, counted and flagged."""
    x, rate = speech
    x = np.tile(x, 2)[: 3 * rate]
    limits = server.ctx.limits

    async def run():
        async with connect(server) as ws:
            started = await start_session(ws)
            sender = asyncio.create_task(send_audio(ws, to_s16(x), bytes_per_sample=2, rate=rate, lead_s=None))
            got = await receive_all(ws)
            await sender
            return started, got

    started, got = asyncio.run(run())
    [ended] = got.of_type("session.ended")
    budget_s = (limits.realtime_lead_ms + limits.input_queue_ms) / 1000 + 1.0  # + generous sending time
    assert ended["dropped_in"] >= len(x) - budget_s * rate
    flagged = [h for h, _ in got.frames if h.discontinuity]
    assert flagged, "no output frame was flagged after input was dropped"
    # the output timeline jumps over the dropped input: position + gaps == the whole input's timeline
    end = got.frames[-1][0].start_sample + len(got.frames[-1][1]) // 2
    assert abs(end - (len(x) + math.ceil(started["latency_ms"] * rate / 1000 - 1e-9))) <= 2
    assert sum(len(p) // 2 for _, p in got.frames) == ended["samples_out"]


def test_thread_engine_round_trip(make_server, speech):
    """The in-process engine (``[engine] mode = "thread"``) gives the same audio as the engine processes
    (up to the per-session watermark)."""
    x, rate = speech
    pcm = to_s16(x[: rate // 2])
    outputs = []
    for engine in ({"mode": "thread", "workers": 1}, {"mode": "process", "workers": 1}):
        server = make_server(engine=engine)

        async def run(server=server):
            async with connect(server) as ws:
                await start_session(ws, voice="feminine", params={"pitch": 3.0})
                sender = asyncio.create_task(send_audio(ws, pcm, bytes_per_sample=2, rate=rate))
                got = await receive_all(ws)
                await sender
                return got

        got = asyncio.run(run())
        assert got.close_code == 1000
        outputs.append(got.pcm)
    assert len(outputs[0]) == len(outputs[1]) > len(pcm)
    assert residual_db(np.frombuffer(outputs[0], "<i2"), np.frombuffer(outputs[1], "<i2")) < -15  # marks differ
