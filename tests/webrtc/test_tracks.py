"""The media glue on its own: the clock-paced output track and the bounded input reader (real aiortc objects)."""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from rtvc.transport.tracks import InputReader, PacedOutputTrack, frame_to_mono_s16

FRAME = 960  # 20 ms at 48 kHz


def pcm(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<i2").tobytes()


def samples_of(frame: av.AudioFrame) -> np.ndarray:
    """The left channel of a packed stereo frame (both channels are asserted equal)."""
    stereo = frame.to_ndarray().reshape(-1, 2)
    assert np.array_equal(stereo[:, 0], stereo[:, 1])
    return stereo[:, 0]


def stereo_frame(left: int, right: int, pts: int) -> av.AudioFrame:
    data = np.empty((1, 2 * FRAME), dtype=np.int16)
    data[0, 0::2], data[0, 1::2] = left, right
    frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
    frame.sample_rate, frame.pts = 48000, pts
    return frame


def test_output_track_plays_audio_then_silence_on_underrun_with_continuous_timestamps():
    async def run():
        track = PacedOutputTrack()
        ramp = np.arange(3 * FRAME) % 1000 + 1
        track.push(pcm(ramp))
        frames = [await track.recv() for _ in range(5)]
        return track, frames, ramp

    track, frames, ramp = asyncio.run(run())
    played = np.concatenate([samples_of(f) for f in frames])
    assert np.array_equal(played[: 3 * FRAME], ramp)
    assert not played[3 * FRAME:].any()
    assert [f.pts for f in frames] == [i * FRAME for i in range(5)]
    assert all(f.sample_rate == 48000 and f.samples == FRAME and f.layout.name == "stereo" for f in frames)
    assert track.underruns == 2


def test_output_track_is_paced_on_the_clock_not_pulled_as_fast_as_possible():
    async def run():
        track = PacedOutputTrack()
        track.push(pcm(np.ones(20 * FRAME)))
        began = time.monotonic()
        for _ in range(11):
            await track.recv()
        return time.monotonic() - began

    # 11 frames: the first is due at once, the next ten 20 ms apart. A lower bound only, so load cannot fail it.
    assert asyncio.run(run()) >= 0.19


def test_output_track_caps_its_buffer_and_counts_what_it_dropped():
    track = PacedOutputTrack(max_buffer_ms=100.0)
    track.push(pcm(np.arange(25 * FRAME) % 30000))  # 500 ms
    assert track.buffered_ms == pytest.approx(100.0)
    assert track.dropped_samples == 20 * FRAME

    async def first():
        return samples_of(await track.recv())

    kept = asyncio.run(first())
    assert np.array_equal(kept, (np.arange(20 * FRAME, 21 * FRAME) % 30000).astype(np.int16))  # the newest survive


def test_output_track_sheds_standing_latency_after_a_burst():
    async def run():
        track = PacedOutputTrack(trim_window_ms=100.0, max_slack_ms=20.0)  # judge every 5 frames
        track.push(pcm(np.ones(5 * FRAME)))  # a 100 ms burst, then one frame per frame: 80 ms would stand forever
        depths = []
        for _ in range(12):
            await track.recv()
            track.push(pcm(np.ones(FRAME)))
            depths.append(track.buffered_ms)
        return track, depths

    track, depths = asyncio.run(run())
    assert depths[0] == pytest.approx(100.0)
    assert track.trims >= 1 and track.dropped_samples > 0
    assert max(depths[-5:]) <= 40.0  # back to one frame plus a 10 ms margin


def test_output_track_keeps_a_partial_frame_whole_for_the_next_tick():
    async def run():
        track = PacedOutputTrack()
        track.push(pcm(np.full(FRAME // 2, 7)))
        first = samples_of(await track.recv())
        track.push(pcm(np.full(FRAME // 2, 9)))
        second = samples_of(await track.recv())
        return first, second

    first, second = asyncio.run(run())
    assert not first.any()  # never half audio, half hole
    assert np.array_equal(second, np.r_[np.full(FRAME // 2, 7), np.full(FRAME // 2, 9)])


def test_output_track_plays_out_its_tail_after_finish():
    async def run():
        track = PacedOutputTrack()
        track.push(pcm(np.full(FRAME + FRAME // 2, 5)))
        track.finish()
        frames = [samples_of(await track.recv()), samples_of(await track.recv())]
        await asyncio.wait_for(track.drained(), 1.0)
        return track, frames

    track, (full, tail) = asyncio.run(run())
    assert (full == 5).all()
    assert (tail[: FRAME // 2] == 5).all() and not tail[FRAME // 2:].any()
    assert track.underruns == 0


def test_output_track_resyncs_after_a_stall_instead_of_bursting():
    async def run():
        track = PacedOutputTrack(resync_ms=100.0)
        track.push(pcm(np.ones(30 * FRAME)))
        await track.recv()
        time.sleep(0.3)  # noqa: ASYNC251 - on purpose: the loop is blocked while 15 frames fall due
        await track.recv()
        began = time.monotonic()
        for _ in range(3):
            await track.recv()
        return track, time.monotonic() - began

    track, elapsed = asyncio.run(run())
    assert track.resyncs == 1
    assert elapsed >= 0.055  # back on a 20 ms cadence, not 15 frames at once


def test_output_track_stops_with_media_stream_error():
    async def run():
        track = PacedOutputTrack()
        track.stop()
        await track.recv()

    with pytest.raises(MediaStreamError):
        asyncio.run(run())


def test_frame_to_mono_averages_stereo_and_declines_other_formats():
    mono = np.frombuffer(frame_to_mono_s16(stereo_frame(1000, 3000, 0)), "<i2")
    assert len(mono) == FRAME and (mono == 2000).all()
    floats = av.AudioFrame.from_ndarray(np.zeros((1, FRAME), np.float32), format="flt", layout="mono")
    floats.sample_rate = 48000
    assert frame_to_mono_s16(floats) is None


def test_input_reader_bounds_the_unbounded_aiortc_queue_and_flags_the_gap():
    async def run():
        track = RemoteStreamTrack(kind="audio")
        for i in range(20):
            track._queue.put_nowait(stereo_frame(i, i, i * FRAME))
        got: list[tuple[int, bool]] = []
        reader = InputReader(track, lambda data, gap: got.append((int(np.frombuffer(data, "<i2")[0]), gap)),
                             max_queued_frames=5)
        task = asyncio.create_task(reader.run())
        await asyncio.sleep(0.05)
        track._queue.put_nowait(stereo_frame(20, 20, 20 * FRAME))
        track._queue.put_nowait(stereo_frame(22, 22, 22 * FRAME))  # frame 21 lost on the network
        track._queue.put_nowait(None)  # aiortc's end of track
        await asyncio.wait_for(task, 1.0)
        return reader, got

    reader, got = asyncio.run(run())
    assert [value for value, _ in got] == [14, 15, 16, 17, 18, 19, 20, 22]
    assert [gap for _, gap in got] == [True, False, False, False, False, False, False, True]
    assert reader.dropped_samples == 14 * FRAME
