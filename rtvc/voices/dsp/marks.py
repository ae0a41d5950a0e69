"""Pitch marks for PSOLA: a chain of analysis times one period apart.

Mark ``i + 1`` lies one period after mark ``i``, the period being taken in the
middle of the gap. Synthesis addresses the chain by a fractional mark index
(time ``t`` between marks ``i`` and ``i + 1`` has index ``i + (t - m_i) /
(m_{i+1} - m_i)``) and steps ``1 / ratio`` marks per output period. Tying the
output spacing to the same marks the grains come from makes the output F0
exactly ``ratio`` times the input F0 on average, whatever small errors the
period estimates carry: an error in a mark's spacing shifts the pulse inside
its grain by the same amount in the other direction.

The first mark of a voiced stretch goes to the energy peak within half a
period of where it is expected, which centres the grains on glottal pulses.
"""

from __future__ import annotations

import math

import numpy as np

from rtvc.voices.dsp.pitch import PitchTracker

__all__ = ["MarkChain"]


class MarkChain:
    """Analysis marks of one stream, extended on demand.

    The owner sets :attr:`horizon` (latest time whose pitch is surely known) and
    :attr:`limit` (latest input sample surely received) before each query; past
    the horizon the period is extrapolated along its recent slope.
    """

    def __init__(self, tracker: PitchTracker, *, unvoiced_hop: float, snap_radius_max: float,
                 smooth: int) -> None:
        self.tracker = tracker
        self.unvoiced_hop = unvoiced_hop
        self.snap_radius_max = snap_radius_max
        self._smoother = np.hanning(smooth + 2)[1:-1]
        self.horizon = 0.0
        self.limit = 0.0
        self._marks = [0.0]
        self._first = 0  # absolute index of _marks[0]
        self._locked = False  # the newest mark sits on a pulse (voiced stretch under way)

    @property
    def earliest(self) -> float:
        """The oldest mark still kept."""
        return self._marks[0]

    def restart(self, t: float) -> None:
        """Start a new chain at ``t`` (called on unvoiced synthesis marks)."""
        self._marks = [t]
        self._first = 0
        self._locked = False

    def index_at(self, t: float) -> float:
        """Fractional mark index of time ``t`` (``t`` must not precede the chain)."""
        marks = self._marks
        while marks[-1] <= t:
            self._extend()
        i = len(marks) - 2
        while marks[i] > t:
            i -= 1
        if i > 4:  # forget marks no later query can reach
            del marks[: i - 2]
            self._first += i - 2
            i = 2
        return self._first + i + (t - marks[i]) / (marks[i + 1] - marks[i])

    def time_at(self, index: float) -> float:
        """Time of fractional mark ``index``."""
        i = math.floor(index) - self._first
        while i + 1 >= len(self._marks):
            self._extend()
        left = self._marks[i]
        return left + (index - self._first - i) * (self._marks[i + 1] - left)

    def _extend(self) -> None:
        last = self._marks[-1]
        period = self.period_near(last)
        if period <= 0.0:
            self._marks.append(last + self.unvoiced_hop)
            self._locked = False
            return
        middle = self._smoothed_period(last + 0.5 * period)
        predicted = last + (middle if middle > 0.0 else period)
        if not self._locked:
            predicted = self._energy_peak(predicted, min(0.5 * period, self.snap_radius_max))
            self._locked = True
        self._marks.append(predicted)

    def _smoothed_period(self, t: float) -> float:
        """Mean period of the three frames around ``t`` (all voiced), else the period at ``t``.

        Averaging halves the frame-to-frame scatter of the estimates; since the output
        spacing is tied to the marks, the slight lag it may add costs no pitch accuracy.
        """
        hop = self.tracker.hop
        before, at, after = self.period_near(t - hop), self.period_near(t), self.period_near(t + hop)
        if before > 0.0 and after > 0.0 and at > 0.0:
            return (before + at + after) / 3.0
        return at

    def period_near(self, t: float) -> float:
        """Period at ``t``; past the horizon, extrapolated along the slope of the last 10 ms."""
        period_at = self.tracker.period_at
        horizon = self.horizon
        if t <= horizon:
            return period_at(t)
        newest = period_at(horizon)
        hop = self.tracker.hop
        older = period_at(horizon - 2 * hop)
        if newest <= 0.0 or older <= 0.0:
            return newest
        change = (newest - older) * (t - round(horizon / hop) * hop) / (2 * hop)
        return newest + max(-0.1 * newest, min(0.1 * newest, change))

    def _energy_peak(self, predicted: float, radius: float) -> float:
        """Where the smoothed energy of the low-passed input peaks within ``radius`` of
        ``predicted`` (searching only input already received)."""
        low = self.tracker.low
        half_smooth = len(self._smoother) // 2
        first = math.ceil(predicted - radius)
        last = math.floor(min(predicted + radius, self.limit - half_smooth))
        if last < first:
            return predicted
        window = low.data[first - half_smooth - low.start : last + half_smooth + 1 - low.start]
        energy = np.convolve(window * window, self._smoother, "valid")
        return float(first + int(energy.argmax()))
