"""Measured engine load and the admission rule built on it."""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["LoadMeter", "predicted_load"]


class LoadMeter:
    """Fraction of wall time a worker spent converting, over the last ``window_s`` seconds."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._spans: deque[tuple[float, float]] = deque()  # (start, end) perf_counter seconds
        self._lock = threading.Lock()

    def add(self, start: float, end: float) -> None:
        with self._lock:
            self._spans.append((start, end))
            self._trim(end)

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self._spans and self._spans[0][1] < horizon:
            self._spans.popleft()

    def busy_fraction(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        horizon = now - self.window_s
        with self._lock:
            self._trim(now)
            busy = sum(min(end, now) - max(start, horizon) for start, end in self._spans if end > horizon)
        return max(0.0, min(1.0, busy / self.window_s))


def predicted_load(busy: float, *, sessions: int, measured: int) -> float:
    """Busy fraction expected after admitting one more session.

    ``sessions`` are open now (including ones too new to show in ``busy``);
    ``measured`` of them have run for a whole window. Each session is assumed to
    cost what the measured ones cost on average; with none measured yet the
    current load is the best estimate.
    """
    if measured <= 0:
        return busy
    return busy / measured * (sessions + 1)
