"""Bounded per-session queues that drop the oldest audio and account for it.

:class:`InputQueue` sits between the transport (event loop thread) and the
engine (worker thread): mono float32 samples at the input rate. :class:`OutputQueue`
lives on the event loop only: encoded output frames waiting for the transport.
Both hold at most a fixed number of samples, so a client that sends too fast or
reads too slowly costs bounded memory; what they drop is counted and the next
audio that gets through is flagged as a discontinuity.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["InputBlock", "InputQueue", "OutFrame", "OutputQueue"]


@dataclass(slots=True)
class _Chunk:
    samples: np.ndarray
    arrival: float  # perf_counter() when it was received
    skipped: int  # timeline samples missing right before this chunk (dropped or never sent)
    discontinuity: bool


@dataclass(slots=True)
class InputBlock:
    """``samples`` popped from an :class:`InputQueue`.

    ``arrival`` is when its last sample arrived (the block was complete then);
    ``skipped`` counts timeline samples missing inside or before it.
    """

    samples: np.ndarray
    arrival: float
    skipped: int
    discontinuity: bool


class InputQueue:
    """Thread-safe FIFO of mono float32 samples holding at most ``capacity`` samples."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"queue capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.dropped = 0  # samples dropped to stay within capacity, in total
        self._chunks: deque[_Chunk] = deque()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def push(self, samples: np.ndarray, arrival: float, *, skipped: int = 0, discontinuity: bool = False) -> int:
        """Append samples; drop the oldest beyond capacity. Returns the number of samples dropped now."""
        if len(samples) > self.capacity:
            cut = len(samples) - self.capacity
            samples, skipped, discontinuity = samples[cut:], skipped + cut, True
            dropped = cut
        else:
            dropped = 0
        with self._lock:
            self._chunks.append(_Chunk(samples, arrival, skipped, discontinuity or bool(skipped)))
            self._size += len(samples)
            excess = self._size - self.capacity
            while excess > 0:
                front = self._chunks[0]
                n = min(excess, len(front.samples))
                if n == len(front.samples) and len(self._chunks) > 1:
                    self._chunks.popleft()
                    self._chunks[0].skipped += front.skipped + n
                    self._chunks[0].discontinuity = True
                else:
                    front.samples = front.samples[n:]
                    front.skipped += n
                    front.discontinuity = True
                self._size -= n
                excess -= n
                dropped += n
            self.dropped += dropped
        return dropped

    def pop(self, n: int, *, partial: bool = False) -> InputBlock | None:
        """Remove the oldest ``n`` samples; None if fewer are queued (unless ``partial``: then what there is)."""
        with self._lock:
            if self._size < n and not partial:
                return None
            n = min(n, self._size)
            parts, arrival, skipped, discontinuity = [], 0.0, 0, False
            while n > 0 or (self._chunks and not len(self._chunks[0].samples)):
                front = self._chunks[0]
                skipped += front.skipped
                discontinuity |= front.discontinuity
                front.skipped, front.discontinuity = 0, False
                take = min(n, len(front.samples))
                parts.append(front.samples[:take])
                arrival = max(arrival, front.arrival)
                if take == len(front.samples):
                    self._chunks.popleft()
                else:
                    front.samples = front.samples[take:]
                n -= take
                self._size -= take
        samples = np.concatenate(parts) if len(parts) > 1 else (parts[0] if parts else np.zeros(0, np.float32))
        return InputBlock(samples, arrival, skipped, discontinuity)


@dataclass(slots=True)
class OutFrame:
    """Encoded output audio and where it sits on the output timeline."""

    pcm: bytes
    samples: int  # sample frames in pcm
    start_sample: int
    discontinuity: bool = False
    last: bool = False
    ready: float = 0.0  # perf_counter() when the engine finished it
    arrival: float = 0.0  # when the input that completed its block arrived
    seq: int = 0  # set when handed to the transport
    compute_s: float = 0.0  # engine time spent on this block (stages + share of the model call)


class OutputQueue:
    """Event-loop-side FIFO of :class:`OutFrame` holding at most ``capacity`` samples.

    When full, the oldest frames go (counted in ``dropped`` samples); the frame
    that follows a gap carries ``discontinuity``. A frame with ``last`` is never dropped.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"queue capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.dropped = 0
        self._frames: deque[OutFrame] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return bool(self._frames)

    def push(self, frame: OutFrame) -> int:
        """Append; drop the oldest frames beyond capacity. Returns samples dropped now."""
        self._frames.append(frame)
        self._size += frame.samples
        dropped = 0
        while self._size > self.capacity and len(self._frames) > 1 and not self._frames[0].last:
            old = self._frames.popleft()
            self._size -= old.samples
            dropped += old.samples
            self._frames[0].discontinuity = True
        self.dropped += dropped
        return dropped

    def pop(self, max_samples: int) -> OutFrame | None:
        """The oldest frame merged with the contiguous frames after it, up to ``max_samples``."""
        if not self._frames:
            return None
        first = self._frames.popleft()
        self._size -= first.samples
        pcm, samples = [first.pcm], first.samples
        merged = first
        while self._frames:
            nxt = self._frames[0]
            contiguous = not nxt.discontinuity and nxt.start_sample == first.start_sample + samples
            if not contiguous or merged.last or samples + nxt.samples > max_samples:
                break
            self._frames.popleft()
            self._size -= nxt.samples
            pcm.append(nxt.pcm)
            samples += nxt.samples
            merged = nxt
        if len(pcm) == 1:
            return first
        return OutFrame(b"".join(pcm), samples, first.start_sample, first.discontinuity, merged.last, merged.ready,
                        merged.arrival)
