"""A bounded ring buffer of float32 samples that drops the oldest on overflow."""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """Holds at most ``capacity`` samples (mono float32).

    Writing more than fits drops the oldest samples and reports how many, so
    memory never grows with a sender that outpaces the reader.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._data = np.zeros(capacity, dtype=np.float32)
        self._start = 0  # index of the oldest sample
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def write(self, x: np.ndarray) -> int:
        """Append ``x``; return the number of oldest samples dropped to make room."""
        n = len(x)
        if n >= self.capacity:
            dropped = self._size + n - self.capacity
            self._data[:] = x[n - self.capacity :]
            self._start, self._size = 0, self.capacity
            return dropped
        dropped = max(0, self._size + n - self.capacity)
        if dropped:
            self._start = (self._start + dropped) % self.capacity
            self._size -= dropped
        end = (self._start + self._size) % self.capacity
        first = min(n, self.capacity - end)
        self._data[end : end + first] = x[:first]
        self._data[: n - first] = x[first:]
        self._size += n
        return dropped

    def read(self, n: int) -> np.ndarray:
        """Remove and return the oldest ``n`` samples (``n <= len(self)``)."""
        if n > self._size:
            raise ValueError(f"cannot read {n} samples, only {self._size} buffered")
        idx = (self._start + np.arange(n)) % self.capacity
        out = self._data[idx]
        self._start = (self._start + n) % self.capacity
        self._size -= n
        return out

    def clear(self) -> None:
        self._start = self._size = 0
