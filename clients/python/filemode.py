"""File mode: stream audio through a session, in real time or as fast as the server converts, and collect it."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from clients.python.client import RtvcClient, ServerError
from clients.python.protocol import AudioChunk

__all__ = ["StreamReport", "percentiles", "stream_samples"]

_DTYPES = {"pcm_s16le": np.dtype("<i2"), "pcm_f32le": np.dtype("<f4")}


@dataclass
class StreamReport:
    """What came back from one session.

    ``audio`` is float32 ``(n, channels)`` at ``sample_rate``, aligned to the input (the algorithmic latency
    removed) unless ``keep_latency`` was asked. ``added_latency_ms`` has one entry per received chunk: its
    arrival time minus the send time of the input frame that held its matching input sample (real-time mode;
    in fast mode it mostly measures queueing). ``gap_samples`` counts output positions that never arrived.
    """

    audio: np.ndarray
    sample_rate: int
    latency_ms: float
    started: dict
    ended: dict = field(default_factory=dict)
    added_latency_ms: list[float] = field(default_factory=list)
    frames_sent: int = 0
    chunks_received: int = 0
    discontinuities: int = 0
    gap_samples: int = 0
    errors: list[dict] = field(default_factory=list)
    last_stats: dict = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def dropped_in(self) -> int:
        return int(self.ended.get("dropped_in", self.last_stats.get("dropped_in", 0)))

    @property
    def dropped_out(self) -> int:
        return int(self.ended.get("dropped_out", self.last_stats.get("dropped_out", 0)))

    def summary(self) -> dict:
        """JSON-ready figures (what the CLI prints)."""
        p50, p95, p99 = percentiles(self.added_latency_ms, (50, 95, 99))
        return {
            "session_id": self.started.get("session_id"),
            "output_s": round(len(self.audio) / self.sample_rate, 3),
            "wall_s": round(self.wall_s, 3),
            "algorithmic_latency_ms": self.latency_ms,
            "added_latency_ms": {"p50": p50, "p95": p95, "p99": p99},
            "frames_sent": self.frames_sent,
            "chunks_received": self.chunks_received,
            "dropped_in": self.dropped_in,
            "dropped_out": self.dropped_out,
            "discontinuities": self.discontinuities,
            "gap_samples": self.gap_samples,
            "errors": [e.get("code") for e in self.errors],
        }


def percentiles(values: list[float], qs: tuple[float, ...]) -> tuple[float | None, ...]:
    if not values:
        return tuple(None for _ in qs)
    return tuple(round(float(v), 2) for v in np.percentile(np.asarray(values), qs))


def _to_wire(samples: np.ndarray, encoding: str) -> bytes:
    clipped = np.clip(samples, -1.0, 1.0)
    if encoding == "pcm_s16le":
        return np.round(clipped * 32767.0).astype("<i2").tobytes()
    return clipped.astype("<f4").tobytes()


def _from_wire(pcm: bytes, encoding: str, channels: int) -> np.ndarray:
    raw = np.frombuffer(pcm, dtype=_DTYPES[encoding]).reshape(-1, channels)
    if encoding == "pcm_s16le":
        return raw.astype(np.float32) / np.float32(32768.0)
    return raw.astype(np.float32)


async def stream_samples(
    url: str,
    key: str,
    samples: np.ndarray,
    sample_rate: int,
    *,
    voice: str,
    purpose: str = "live_streaming",
    params: Mapping[str, float] | None = None,
    realtime: bool = True,
    frame_ms: float = 20.0,
    output_rate: int | None = None,
    encoding: str = "pcm_s16le",
    ahead_ms: float = 400.0,
    keep_latency: bool = False,
    browser_auth: bool = False,
) -> StreamReport:
    """Send ``samples`` (float32 ``(n,)`` or ``(n, channels)`` at ``sample_rate`` Hz) and collect the output.

    ``realtime`` paces frames of ``frame_ms`` on the clock; otherwise frames go as fast as the server returns
    audio, never more than ``ahead_ms`` of input ahead of the output, so the server has no reason to drop.
    Raises ServerError if the session cannot start.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    channels = samples.shape[1]
    fmt_in = {"encoding": encoding, "sample_rate": sample_rate, "channels": channels}
    fmt_out = {"encoding": encoding, "sample_rate": output_rate or sample_rate, "channels": 1}
    client = await RtvcClient.connect(
        url, key=key, voice=voice, purpose=purpose, input=fmt_in, output=fmt_out, params=params,
        browser_auth=browser_auth,
    )
    out = client.started.get("output", fmt_out)
    out_rate, out_channels, out_encoding = int(out["sample_rate"]), int(out["channels"]), str(out["encoding"])
    latency_s = client.latency_ms / 1000.0
    frame_len = max(1, round(sample_rate * frame_ms / 1000.0))
    # Output covers input up to (sent - latency - one block): the window must include both or it never opens.
    ahead_s = (ahead_ms + client.latency_ms + float(client.started.get("block_ms", 0.0))) / 1000.0
    report = StreamReport(audio=np.zeros((0, out_channels), np.float32), sample_rate=out_rate,
                          latency_ms=client.latency_ms, started=client.started)
    frame_ends: list[int] = []  # input sample index just past each sent frame
    send_times: list[float] = []
    returned_input = 0.0  # seconds of input whose output has come back
    progress = asyncio.Event()
    chunks: list[tuple[int, np.ndarray]] = []

    async def send_all() -> None:
        t0 = time.monotonic()
        for index, begin in enumerate(range(0, len(samples), frame_len)):
            frame = samples[begin:begin + frame_len]
            if realtime:  # a frame leaves when its last sample would have been captured, as from a microphone
                await asyncio.sleep(max(0.0, t0 + (begin + len(frame)) / sample_rate - time.monotonic()))
            else:
                while begin / sample_rate - returned_input > ahead_s:
                    progress.clear()
                    await progress.wait()
            frame_ends.append(begin + len(frame))
            send_times.append(time.monotonic())
            await client.send_audio(_to_wire(frame, encoding), last=begin + frame_len >= len(samples))
            report.frames_sent = index + 1
        await client.end()

    def on_chunk(chunk: AudioChunk) -> None:
        nonlocal returned_input
        decoded = _from_wire(chunk.pcm, out_encoding, out_channels)
        chunks.append((chunk.start_sample, decoded))
        report.chunks_received += 1
        report.discontinuities += chunk.discontinuity
        end_sample = chunk.start_sample + len(decoded)
        returned_input = max(returned_input, end_sample / out_rate - latency_s)
        progress.set()
        matching_input = round((end_sample / out_rate - latency_s) * sample_rate) - 1
        if 0 <= matching_input < (frame_ends[-1] if frame_ends else 0):
            frame = bisect.bisect_right(frame_ends, matching_input)
            report.added_latency_ms.append((chunk.arrival - send_times[frame]) * 1000.0)

    started_at = time.monotonic()
    sender = asyncio.create_task(send_all())
    try:
        while (message := await client.receive()) is not None:
            if isinstance(message, AudioChunk):
                on_chunk(message)
            elif message["type"] == "stats":
                report.last_stats = message
            elif message["type"] == "error":
                report.errors.append(message)
            elif message["type"] == "session.ended":
                report.ended = message
        if sender.done() and not sender.cancelled() and isinstance(sender.exception(), (OSError, ValueError)):
            raise sender.exception()
    finally:
        sender.cancel()
        await client.close()
    report.wall_s = time.monotonic() - started_at
    if not report.ended and report.errors:
        first = report.errors[0]
        raise ServerError(str(first.get("code")), str(first.get("message", "")))
    report.audio, report.gap_samples = _assemble(chunks, out_channels)
    if not keep_latency:
        report.audio = report.audio[round(latency_s * out_rate):]
    return report


def _assemble(chunks: list[tuple[int, np.ndarray]], channels: int) -> tuple[np.ndarray, int]:
    """Place chunks at their start_sample; positions nothing covered stay silent and are counted."""
    total = max((start + len(data) for start, data in chunks), default=0)
    audio = np.zeros((total, channels), np.float32)
    covered = np.zeros(total, bool)
    for start, data in chunks:
        audio[start:start + len(data)] = data
        covered[start:start + len(data)] = True
    return audio, int(total - covered.sum())
