"""A bounded playout buffer between the network (pushes) and a sound card callback (pulls)."""

from __future__ import annotations

import threading

__all__ = ["PlayoutBuffer"]


class PlayoutBuffer:
    """Thread-safe byte FIFO of interleaved PCM with a depth cap in ms and an optional priming depth.

    ``push`` past ``max_ms`` drops the oldest audio (so latency cannot creep); ``pull`` always returns the
    requested length, padding with silence. With ``prime_ms`` > 0 playback waits (silence, not counted)
    until that much audio is queued, and again after each underrun, so network jitter below ``prime_ms``
    does not chop the sound. ``flush()`` says no more audio is coming: the rest plays without priming and
    running dry is then not an underrun. The lock is held only to copy bytes, so a sound card callback
    never waits for long.
    """

    def __init__(self, *, sample_rate: int, frame_bytes: int, max_ms: float = 200.0, prime_ms: float = 0.0) -> None:
        if sample_rate <= 0 or frame_bytes <= 0 or max_ms <= 0:
            raise ValueError("sample_rate, frame_bytes and max_ms must be positive")
        if not 0 <= prime_ms < max_ms:
            raise ValueError(f"prime_ms must be in [0, max_ms={max_ms}), got {prime_ms}")
        self.sample_rate = sample_rate
        self.frame_bytes = frame_bytes
        self.max_bytes = max(frame_bytes, round(sample_rate * max_ms / 1000.0) * frame_bytes)
        self.prime_bytes = round(sample_rate * prime_ms / 1000.0) * frame_bytes
        self._data = bytearray()
        self._lock = threading.Lock()
        self._playing = self.prime_bytes == 0
        self._flushed = False
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
            if not self._playing:
                if len(self._data) < self.prime_bytes and not self._flushed:
                    return bytes(nbytes)
                self._playing = True
            out = bytes(self._data[:nbytes])
            del self._data[:nbytes]
            if len(out) < nbytes and not self._flushed:
                self.underruns += 1
                self._playing = self.prime_bytes == 0
        return out + bytes(nbytes - len(out))

    def flush(self) -> None:
        """No more audio will be pushed: play out what is queued."""
        with self._lock:
            self._flushed = True

    @property
    def depth_ms(self) -> float:
        with self._lock:
            return len(self._data) / self.frame_bytes / self.sample_rate * 1000.0
