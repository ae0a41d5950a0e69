"""Media glue between aiortc and a session: the input reader and the clock-paced output track.

aiortc hands decoded Opus as ``s16`` packed stereo 48 kHz frames of 20 ms; its receive queue is unbounded and
its sender pulls ``recv()`` in a tight loop with no pacing of its own. So the input side drains to a bounded
depth (oldest frames dropped and counted), and the output side paces itself on the event loop clock, plays
silence when the session has nothing ready, and caps its buffer so latency cannot creep upward.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["WEBRTC_RATE", "InputReader", "PacedOutputTrack", "frame_to_mono_s16"]

WEBRTC_RATE = 48000  # Opus always decodes to 48 kHz in aiortc; the session works on 48 kHz mono s16 both ways


def frame_to_mono_s16(frame: av.AudioFrame) -> bytes | None:
    """A decoded s16 48 kHz frame as mono ``pcm_s16le`` bytes (stereo averaged); None for any other format."""
    channels = len(frame.layout.channels)
    if frame.format.name != "s16" or frame.sample_rate != WEBRTC_RATE or channels > 2:
        return None
    samples = frame.to_ndarray().reshape(-1, channels)  # packed: one row of interleaved samples
    if channels == 2:
        samples = (samples[:, 0].astype(np.int32) + samples[:, 1]) >> 1
    return samples.astype("<i2").tobytes()


class InputReader:
    """Read a remote track in its own task and hand each frame to ``sink(pcm, discontinuity)``.

    ``max_queued_frames`` bounds aiortc's own queue: when the session falls behind (or the jitter buffer
    releases a burst) the oldest frames are discarded, counted in ``dropped_samples``, and the next frame is
    flagged as a discontinuity.
    """

    def __init__(self, track: MediaStreamTrack, sink: Callable[[bytes, bool], None], *,
                 max_queued_frames: int = 5) -> None:
        if max_queued_frames < 0:
            raise ValueError("max_queued_frames must be >= 0")
        self.track = track
        self.sink = sink
        self.max_queued_frames = max_queued_frames
        self.frames = 0
        self.dropped_samples = 0
        self._resampler: av.AudioResampler | None = None
        self._next_pts: int | None = None

    async def run(self) -> None:
        """Until the track ends (MediaStreamError) or the task is cancelled."""
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            frame, dropped, ended = self._drain(frame)
            pts_gap = self._next_pts is not None and frame.pts is not None and frame.pts > self._next_pts + 1
            self._next_pts = None if frame.pts is None else frame.pts + frame.samples
            self.frames += 1
            self.sink(self._to_pcm(frame), dropped or pts_gap)
            if ended:
                return

    def _to_pcm(self, frame: av.AudioFrame) -> bytes:
        pcm = frame_to_mono_s16(frame)
        if pcm is None:  # other codecs / formats: the general (slower) path
            self._resampler = self._resampler or av.AudioResampler(format="s16", layout="mono", rate=WEBRTC_RATE)
            pcm = b"".join(out.to_ndarray().astype("<i2").tobytes() for out in self._resampler.resample(frame))
        return pcm

    def _drain(self, frame: av.AudioFrame) -> tuple[av.AudioFrame, bool, bool]:
        """Keep at most ``max_queued_frames`` behind ``frame``; returns (newest kept frame, dropped?, ended?)."""
        queue: asyncio.Queue | None = getattr(self.track, "_queue", None)  # aiortc has no public depth API
        dropped = False
        while queue is not None and queue.qsize() > self.max_queued_frames:
            newer = queue.get_nowait()
            if newer is None:  # aiortc's end-of-track marker: process what we hold, then stop
                return frame, dropped, True
            self.dropped_samples += frame.samples
            frame, dropped = newer, True
        return frame, dropped, False


class PacedOutputTrack(MediaStreamTrack):
    """An audio track that emits one ``frame_ms`` frame per ``frame_ms`` of loop clock, whatever the input.

    ``push()`` appends mono s16 PCM at ``sample_rate``; ``recv()`` (called by aiortc's sender) waits for the
    frame's deadline, then returns a full frame of buffered audio, or silence if less than a frame is buffered
    (underrun: counted once audio has started). More than ``max_buffer_ms`` buffered drops the oldest audio.
    Latency also cannot stay up after a burst: when, for a whole ``trim_window_ms``, at least ``max_slack_ms``
    was left over after every frame taken, the oldest excess is dropped (``max_slack_ms=None``: never).
    If the loop stalls past ``resync_ms`` the clock restarts from now instead of bursting to catch up.
    Frames go out as stereo (both channels equal): aiortc's Opus encoder works in stereo, and its mono
    upmix would cost 3 dB.
    """

    kind = "audio"

    def __init__(self, *, sample_rate: int = WEBRTC_RATE, frame_ms: float = 20.0, max_buffer_ms: float = 120.0,
                 max_slack_ms: float | None = 20.0, trim_window_ms: float = 1000.0, resync_ms: float = 100.0) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.frame_samples = round(sample_rate * frame_ms / 1000.0)
        self.max_buffer_bytes = 2 * max(self.frame_samples, round(sample_rate * max_buffer_ms / 1000.0))
        self.resync_s = resync_ms / 1000.0
        self.max_slack_bytes = None if max_slack_ms is None else 2 * round(sample_rate * max_slack_ms / 1000.0)
        self.trim_window_frames = max(1, round(trim_window_ms / frame_ms))
        self._window_frames = 0
        self._window_min_left = self.max_buffer_bytes
        self._buffer = bytearray()
        self._time_base = Fraction(1, sample_rate)
        self._clock_start: float | None = None
        self._timestamp = 0
        self._started = False  # some audio was pushed: later silence is an underrun
        self._finished = False
        self._drained = asyncio.Event()
        self.underruns = 0
        self.dropped_samples = 0
        self.frames_sent = 0
        self.resyncs = 0
        self.trims = 0

    def push(self, pcm: bytes) -> None:
        """Queue mono ``pcm_s16le``; never blocks. Oldest audio beyond the cap is dropped and counted."""
        self._buffer += pcm
        self._started = self._started or bool(pcm)
        excess = len(self._buffer) - self.max_buffer_bytes
        if excess > 0:
            excess += excess % 2
            del self._buffer[:excess]
            self.dropped_samples += excess // 2

    def finish(self) -> None:
        """No more audio will be pushed; :meth:`drained` completes once the buffer has played out."""
        self._finished = True
        if not self._buffer:
            self._drained.set()

    async def drained(self) -> None:
        await self._drained.wait()

    @property
    def buffered_ms(self) -> float:
        return len(self._buffer) / 2 / self.sample_rate * 1000.0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._clock_start is None:
            self._clock_start = loop.time()
        deadline = self._clock_start + self._timestamp / self.sample_rate
        wait = deadline - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)  # one wait per frame, to its exact deadline
        elif -wait > self.resync_s:
            self._clock_start = loop.time() - self._timestamp / self.sample_rate
            self.resyncs += 1
        frame_bytes = 2 * self.frame_samples
        if len(self._buffer) >= frame_bytes:
            pcm = bytes(self._buffer[:frame_bytes])
            del self._buffer[:frame_bytes]
            self._trim_standing_slack()
        elif self._finished:  # the tail: pad the last partial frame, then only silence
            pcm = bytes(self._buffer) + bytes(frame_bytes - len(self._buffer))
            self._buffer.clear()
            self._drained.set()
        else:
            pcm = bytes(frame_bytes)  # keep a partial frame for the next tick: no holes inside a frame
            self.underruns += self._started
        stereo = np.repeat(np.frombuffer(pcm, "<i2"), 2).reshape(1, -1)  # packed s16: L R L R ...
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = self.sample_rate
        frame.pts = self._timestamp
        frame.time_base = self._time_base
        self._timestamp += self.frame_samples
        self.frames_sent += 1
        return frame

    def _trim_standing_slack(self) -> None:
        """Called after each frame taken: drop what stayed buffered beyond the slack for a whole window."""
        if self.max_slack_bytes is None or self._finished:
            return
        self._window_min_left = min(self._window_min_left, len(self._buffer))
        self._window_frames += 1
        if self._window_frames < self.trim_window_frames:
            return
        excess = self._window_min_left - self.max_slack_bytes // 2  # keep half the slack as jitter margin
        if self._window_min_left > self.max_slack_bytes and excess > 0:
            excess -= excess % 2
            del self._buffer[:excess]
            self.dropped_samples += excess // 2
            self.trims += 1
        self._window_frames = 0
        self._window_min_left = self.max_buffer_bytes
