"""Noise gate: mutes input below a level, opening instantly and closing smoothly."""

from __future__ import annotations

import numpy as np

__all__ = ["NoiseGate"]


class NoiseGate:
    """A streaming noise gate working on ~1 ms frames of a fixed grid.

    Opens at the first sample above ``threshold_db`` (dBFS peak), so onsets and
    clicks pass untouched; after ``hold_ms`` below the threshold it fades to
    silence over ``release_ms``. ``threshold_db=None`` (or -inf) disables it.
    Blocks given to :meth:`process` must be whole multiples of ``frame``.
    """

    def __init__(self, sample_rate: int, *, block: int, threshold_db: float | None = -60.0,
                 hold_ms: float = 120.0, release_ms: float = 60.0) -> None:
        frames_per_block = max(1, round(block / (sample_rate / 1000.0)))
        while block % frames_per_block:
            frames_per_block += 1
        self.frame = block // frames_per_block
        self._hold_frames = max(0, round(hold_ms * sample_rate / 1000.0 / self.frame))
        self._release_step = min(1.0, self.frame / max(1.0, release_ms * sample_rate / 1000.0))
        self.set_threshold(threshold_db)
        self._gain = 1.0 if self._threshold == 0.0 else 0.0
        self._hold_left = 0

    def set_threshold(self, threshold_db: float | None) -> None:
        if threshold_db is None or threshold_db == float("-inf"):
            self._threshold = 0.0
        else:
            self._threshold = float(10.0 ** (threshold_db / 20.0))

    def delay(self) -> int:
        return 0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Gate ``x`` (float32 ``(n,)``, n a multiple of ``frame``); returns a new array."""
        if self._threshold == 0.0:
            self._gain = 1.0
            return x.copy()
        frames = x.reshape(-1, self.frame)
        above = np.abs(frames) >= self._threshold
        any_above = above.any(axis=1)
        # The common blocks take no per-frame loop: open throughout (speech) or shut throughout (silence).
        if self._gain == 1.0 and any_above.all():
            self._hold_left = self._hold_frames
            return x.copy()
        if self._gain == 0.0 and self._hold_left == 0 and not any_above.any():
            return np.zeros_like(x)
        first_above = above.argmax(axis=1)
        gains = np.empty_like(frames)
        ramp = np.arange(1, self.frame + 1, dtype=np.float32) / self.frame
        for i in range(len(frames)):
            start = self._gain
            if any_above[i]:
                self._hold_left = self._hold_frames
                gains[i, : first_above[i]] = start
                gains[i, first_above[i] :] = 1.0
                self._gain = 1.0
            elif self._hold_left > 0:
                self._hold_left -= 1
                gains[i] = start
            else:
                end = max(0.0, start - self._release_step)
                gains[i] = start + (end - start) * ramp
                self._gain = end
        return (frames * gains).reshape(-1)
