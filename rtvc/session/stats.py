"""Per-session counters and a window of recent per-block compute times."""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["SessionStats"]


class SessionStats:
    """Counters written by the transport (loop) and the engine (worker), read by ``stats()``.

    ``window_blocks``: how many recent blocks the compute percentiles cover.
    """

    def __init__(self, *, input_rate: int, output_rate: int, window_blocks: int = 500) -> None:
        self.input_rate, self.output_rate = input_rate, output_rate
        self.frames_in = 0  # binary messages received
        self.frames_out = 0  # binary messages handed to the transport
        self.samples_in = 0  # input sample frames received (at the input rate)
        self.samples_out = 0  # output sample frames handed to the transport
        self.dropped_in = 0  # input samples dropped for overlapping earlier input (queue drops: see snapshot)
        self.dropped_out = 0  # output samples dropped (slow reader)
        self.blocks = 0
        self.compute_s = 0.0  # engine time spent on this session
        self.audio_s = 0.0  # input audio converted
        self._compute_ms = np.zeros(window_blocks, dtype=np.float64)
        self._lock = threading.Lock()

    def record_block(self, compute_s: float, audio_s: float) -> None:
        """One block took ``compute_s`` seconds of engine time for ``audio_s`` seconds of audio."""
        with self._lock:
            self._compute_ms[self.blocks % len(self._compute_ms)] = compute_s * 1000.0
            self.blocks += 1
            self.compute_s += compute_s
            self.audio_s += audio_s

    def compute_percentiles(self) -> tuple[float, float]:
        with self._lock:
            recent = self._compute_ms[: min(self.blocks, len(self._compute_ms))].copy()
        if not len(recent):
            return 0.0, 0.0
        p50, p99 = np.percentile(recent, [50, 99])
        return float(p50), float(p99)

    def snapshot(self, *, queue_in_ms: float, queue_out_ms: float, dropped_in_queue: int = 0) -> dict[str, float | int]:
        """The stats payload; ``dropped_in_queue``: input samples the engine-side queue dropped."""
        p50, p99 = self.compute_percentiles()
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "samples_in": self.samples_in,
            "samples_out": self.samples_out,
            "dropped_in": self.dropped_in + dropped_in_queue,
            "dropped_out": self.dropped_out,
            "queue_ms": round(queue_in_ms + queue_out_ms, 3),
            "queue_in_ms": round(queue_in_ms, 3),
            "queue_out_ms": round(queue_out_ms, 3),
            "rtf": round(self.compute_s / self.audio_s, 5) if self.audio_s else 0.0,
            "compute_ms_p50": round(p50, 4),
            "compute_ms_p99": round(p99, 4),
        }
