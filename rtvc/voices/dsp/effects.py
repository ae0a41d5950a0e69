"""Character effects applied after the shifter: telephone band, light saturation, metallic comb.

Each is a streaming stage (``process(x) -> same length``) whose output does not
depend on how the stream is cut into blocks, and which adds no delay of its own
beyond the filters' group delay.
"""

from __future__ import annotations

import numpy as np

from rtvc.voices.dsp.iir import butter, lfilter

__all__ = ["BandPass", "MetallicComb", "Saturation"]


class BandPass:
    """Butterworth band-pass (telephone/radio band by default), state kept across blocks.

    Parameters
    ----------
    sample_rate : int [Hz]
    low_hz, high_hz : float [Hz]
        Edges; ``high_hz`` is clipped below Nyquist.
    order : int
        Order of the low-pass prototype (the band-pass has twice as many poles).
    """

    def __init__(self, sample_rate: int, *, low_hz: float = 300.0, high_hz: float = 3400.0, order: int = 2) -> None:
        high_hz = min(high_hz, 0.45 * sample_rate)
        self._b, self._a = butter(order, [low_hz, high_hz], btype="bandpass", fs=sample_rate)
        self._state = np.zeros(len(self._a) - 1)

    def process(self, x: np.ndarray) -> np.ndarray:
        y, self._state = lfilter(self._b, self._a, x, zi=self._state)
        return y


class Saturation:
    """Soft clipping ``tanh(drive * x) / drive``: unity gain for quiet sounds, peaks rounded off."""

    def __init__(self, *, drive: float = 2.0, makeup: float = 1.6) -> None:
        self.drive, self.makeup = drive, makeup

    def process(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(self.drive * self.makeup * x) / self.drive


class MetallicComb:
    """Feedback comb ``y[n] = x[n] + feedback * y[n - delay]``, scaled back to unity power.

    A short delay (a few ms) rings at its multiples of ``1 / delay``, which gives a
    tinny, metallic colour. Computed a delay's worth of samples at a time, so no
    per-sample Python loop is needed.

    Parameters
    ----------
    sample_rate : int [Hz]
    delay_s : float [s]
    feedback : float
        In (0, 1); higher rings longer.
    """

    def __init__(self, sample_rate: int, *, delay_s: float = 0.0035, feedback: float = 0.45) -> None:
        if not 0.0 < feedback < 1.0:
            raise ValueError("comb feedback must be in (0, 1)")
        self._delay = max(1, round(delay_s * sample_rate))
        self._feedback = feedback
        self._scale = (1.0 - feedback * feedback) ** 0.5  # unity power gain for broadband sound
        self._past = np.zeros(self._delay)  # the last `delay` outputs (before scaling)

    def process(self, x: np.ndarray) -> np.ndarray:
        d = self._delay
        y = np.concatenate([self._past, np.asarray(x, dtype=np.float64)])
        for start in range(d, len(y), d):  # each chunk only looks back at finished chunks
            y[start : start + d] += self._feedback * y[start - d : min(start, len(y) - d)]
        self._past = y[-d:].copy()
        return y[d:] * self._scale
