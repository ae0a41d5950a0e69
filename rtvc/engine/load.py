"""Measured engine load and the admission rule built on it.

The cost of a session is learned from what the workers measurably did: their
busy time over the last window divided by the seconds of audio they converted
in it (a real-time factor in worker-seconds). A real-time session converts one
second per second, so N sessions cost N times that, whoever is sending faster
than real time now; a burst of new sessions is costed from its first second,
and the estimate carries over to the next burst.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from rtvc.errors import Overloaded

__all__ = ["Admission", "AudioMeter", "LoadMeter", "predicted_load"]

MIN_AUDIO_WINDOWS = 2.0  # audio converted in the window (in windows) below which a fresh estimate is too noisy


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


class AudioMeter:
    """Seconds of audio converted over the last ``window_s`` seconds."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._items: deque[tuple[float, float]] = deque()  # (perf_counter, audio seconds)
        self._total = 0.0
        self._lock = threading.Lock()

    def add(self, audio_s: float, at: float | None = None) -> None:
        at = time.perf_counter() if at is None else at
        with self._lock:
            self._items.append((at, audio_s))
            self._total += audio_s
            self._trim(at)  # bounded by the window even when nobody reads it

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self._items and self._items[0][0] < horizon:
            self._total -= self._items.popleft()[1]

    def seconds(self, now: float) -> float:
        with self._lock:
            self._trim(now)
            return max(0.0, self._total)


def predicted_load(busy: float, *, sessions: int, measured: float) -> float:
    """Mean worker busy fraction expected after admitting one more session.

    ``busy`` was measured while ``measured`` session-windows ran; each session,
    the ``sessions`` open now and the new one, is assumed to cost the same. With
    nothing measured the current load is the best estimate.
    """
    if measured <= 0:
        return busy
    return busy / measured * (sessions + 1)


class Admission:
    """Refuses a new session when the predicted mean worker load would exceed ``max_load``.

    Parameters
    ----------
    max_load : float
        Limit on the mean busy fraction of the workers (0..1).
    window_s : float [s]
        The load meters' window.
    """

    def __init__(self, *, max_load: float, window_s: float) -> None:
        self.max_load = max_load
        self.audio = AudioMeter(window_s)
        self._rtf: float | None = None  # worker-seconds per second of audio, last estimated: prices the next burst

    def converted(self, audio_s: float) -> None:
        """The engine just handed out ``audio_s`` seconds of converted audio."""
        self.audio.add(audio_s)

    def check(self, meters: Sequence[LoadMeter], sessions: int, *, pending: int = 0) -> None:
        """Raise Overloaded if one more real-time session would push the predicted load over ``max_load``."""
        now = time.perf_counter()
        workers = max(1, len(meters))
        busy = sum(m.busy_fraction(now) for m in meters) / workers
        audio_s = self.audio.seconds(now)
        if audio_s >= MIN_AUDIO_WINDOWS * self.audio.window_s:
            self._rtf = busy * self.audio.window_s * workers / audio_s
        if sessions + pending == 0:
            return  # refusing a lone session protects no one
        # a real-time session converts one second of audio per second: it costs `rtf` worker-seconds per second
        predicted = busy if self._rtf is None else max(busy, self._rtf * (sessions + pending + 1) / workers)
        if predicted > self.max_load:
            raise Overloaded(
                f"the engine is at {busy:.0%} load with {sessions} session(s); one more would reach about "
                f"{predicted:.0%} (limit {self.max_load:.0%}); retry later"
            )
