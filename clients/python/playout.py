"""A bounded playout buffer between the network (pushes) and a sound card callback (pulls)."""

from __future__ import annotations

import threading

__all__ = ["PlayoutBuffer"]


class PlayoutBuffer:
    """Thread-safe byte FIFO of interleaved PCM with a depth cap in ms.

    ``push`` past ``max_ms`` drops the oldest audio (so latency cannot creep); ``pull`` always returns the
    requested length, padding with silence on underrun. Both count what they did.
    """

    def __init__(self, *, sample_rate: int, frame_bytes: int, max_ms: float = 200.0) -> None:
        if sample_rate <= 0 or frame_bytes <= 0 or max_ms <= 0:
            raise ValueError("sample_rate, frame_bytes and max_ms must be positive")
        self.sample_rate = sample_rate
        self.frame_bytes = frame_bytes
        self.max_bytes = max(frame_bytes, round(sample_rate * max_ms / 1000.0) * frame_bytes)
        self._data = bytearray()
        self._lock = threading.Lock()
        self.dropped_samples = 0
        self.underruns = 0

    def push(self, pcm: bytes) -> None:
        if len(pcm) % self.frame_bytes:
            raise ValueError(f"{len(pcm)} bytes is not a whole number of {self.frame_bytes}-byte sample frames")
        with self._lock:
            self._data += pcm
            excess = len(self._data) - self.max_bytes
            if excess > 0:
                del self._data[:excess]
                self.dropped_samples += excess // self.frame_bytes

    def pull(self, nbytes: int) -> bytes:
        with self._lock:
            out = bytes(self._data[:nbytes])
            del self._data[:nbytes]
        if len(out) < nbytes:
            self.underruns += 1
            out += bytes(nbytes - len(out))
        return out

    @property
    def depth_ms(self) -> float:
        with self._lock:
            return len(self._data) / self.frame_bytes / self.sample_rate * 1000.0
