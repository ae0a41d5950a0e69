"""Streaming TD-PSOLA: pitch and formant shifting with a fixed delay.

Voiced speech is cut into Hann grains about two periods long, centred on the
analysis marks of :class:`~rtvc.voices.dsp.marks.MarkChain`, and laid down
again at synthesis marks ``1 / ratio`` analysis periods apart: the output F0
is the input F0 times ``ratio`` while each grain keeps its spectral envelope
(the formants). Reading a grain ``formant`` times faster scales that envelope.
Unvoiced parts are copied with fixed-spacing grains, which reconstruct the
input exactly when ``formant == 1``.

Everything runs on absolute sample times, so block boundaries leave no trace.
Output sample ``n`` is final once the input reaches ``n + delay``. With ``W``
the largest grain half-width, the delay pays for::

    W + hop/2 + pitch look-ahead     the voicing and period at a synthesis mark
    W * (1 + largest formant) + 3    the input the widest, most squeezed grain reads
    W + one period + 3               the energy peak that starts a voiced stretch
"""

from __future__ import annotations

import math

import numpy as np

from rtvc.voices.dsp.grains import GrainBatch, OverlapAdd
from rtvc.voices.dsp.history import History
from rtvc.voices.dsp.marks import MarkChain
from rtvc.voices.dsp.pitch import PitchTracker

__all__ = ["DELAY_S", "PsolaShifter"]

DELAY_S = 0.026  # fixed stream delay; with the resamplers the pipeline stays under 30 ms


class PsolaShifter:
    """Pitch/formant shifter for one mono stream.

    Parameters
    ----------
    sample_rate : int [Hz]
    delay_s : float [s]
        Fixed delay between input and output; grain and look-ahead limits follow from it.
    grain_half_max_s : float [s]
        Largest grain half-width (only very low voices reach it).
    formant_max : float
        Largest formant factor :meth:`set` will accept (it bounds the grain width).
    unvoiced_hop_s : float [s]
        Grain spacing in unvoiced parts.
    pitch_hop_s : float [s]
        Pitch frame spacing.
    """

    def __init__(self, sample_rate: int, *, delay_s: float = DELAY_S, grain_half_max_s: float = 0.0105,
                 formant_max: float = 1.4, unvoiced_hop_s: float = 0.005, pitch_hop_s: float = 0.005) -> None:
        sr = sample_rate
        self.sample_rate = sr
        self.delay = self.delay_for(sr, delay_s)
        self.formant_max = formant_max
        self._half_max = math.floor(min(grain_half_max_s * sr, (self.delay - 3) / (1.0 + formant_max)))
        hop = PitchTracker.hop_for(sr, pitch_hop_s)
        lookahead = self.delay - self._half_max - (hop + 1) // 2 - 2
        self.tracker = PitchTracker(sr, hop_s=pitch_hop_s, lookahead_samples=lookahead)
        self._unvoiced_hop = float(round(unvoiced_hop_s * sr))
        smooth = max(3, round(0.0015 * sr))
        self._chain = MarkChain(self.tracker, unvoiced_hop=self._unvoiced_hop, smooth=smooth,
                                snap_radius_max=(self.delay - self._half_max - 3 - smooth) / 2.0)
        self._input = History(-self.delay - 8, np.zeros(self.delay + 8))
        self._ola = OverlapAdd(-self.delay, 4 * self.delay + 1024)
        self._received = 0
        # synthesis marks: the next one to lay down and the one before it
        self._mark = 0.0
        self._mark_before = -self._unvoiced_hop
        self.ratio = 1.0
        self.formant = 1.0
        self.monotone_period: float | None = None

    @staticmethod
    def delay_for(sample_rate: int, delay_s: float = DELAY_S) -> int:
        """The delay in samples a shifter at ``sample_rate`` will have."""
        return math.ceil(delay_s * sample_rate)

    def set(self, *, pitch_st: float | None = None, formant: float | None = None,
            monotone_hz: float | None = None) -> None:
        """Change settings; they apply to grains laid down from the next :meth:`process` on.

        ``pitch_st``: shift in semitones. ``formant``: envelope factor. ``monotone_hz``:
        a flat output F0 instead of a shifted one (``pitch_st`` is then ignored).
        """
        if pitch_st is not None:
            self.ratio = 2.0 ** (pitch_st / 12.0)
        if formant is not None:
            if not 0.25 <= formant <= self.formant_max:
                raise ValueError(f"formant factor {formant} outside 0.25..{self.formant_max}")
            self.formant = formant
        if monotone_hz is not None:
            if not 20.0 <= monotone_hz <= 0.25 * self.sample_rate:
                raise ValueError(f"monotone pitch {monotone_hz} Hz out of range")
            self.monotone_period = self.sample_rate / monotone_hz

    def process(self, x: np.ndarray) -> np.ndarray:
        """Shift one block; returns ``len(x)`` float32 samples delayed by :attr:`delay`."""
        x = np.asarray(x, dtype=np.float64)
        self._input.append(x)
        self.tracker.push(x)
        self._received += len(x)
        done = self._received - self.delay  # output before this synthesis time is final
        batch = self._collect(done)
        if len(batch):
            self._ola.add(batch, self._input.data, self._input.start, self.formant)
        out = self._ola.pop(done)
        keep_from = int(min(self._chain.earliest, self._mark_before)) - 2 * self._half_max - 8
        self._input.trim(keep_from)
        self.tracker.forget_before(keep_from)
        return out.astype(np.float32)

    def _collect(self, done: int) -> GrainBatch:
        """Grains whose windows start before ``done``, in synthesis order."""
        batch = GrainBatch()
        half_cap = min(self._half_max, (self.delay - 3) / (1.0 + self.formant))
        squeeze = max(1.0, self.formant)  # a squeezed grain must not reach the next pulse
        # sparse grains (lowered pitch) and narrowed ones (squeezed) lose level: give part of it
        # back, the same for every grain so the level does not flutter from grain to grain
        sparse = 1.0 if self.monotone_period else max(1.0, 1.0 / self.ratio)
        voiced_gain = min(1.5, math.sqrt(sparse * squeeze))
        while self._mark - half_cap < done:
            mark, spacing = self._mark, self._mark - self._mark_before
            period = self.tracker.period_at(mark)
            reach = period / squeeze if period > 0.0 else self._unvoiced_hop  # at most a period each side
            left = min(spacing, reach, half_cap)
            if mark - left >= done:
                break
            # a mark left over from the last call may get a wider window under new settings:
            # it must not reach back into output already handed out
            left = min(left, mark - self._ola.start)
            if period > 0.0:
                known = mark - left  # before `done`: pitch and input are known this far past it
                chain = self._chain
                chain.horizon, chain.limit = known + self._half_max, known + self.delay - 1
                index = chain.index_at(mark)
                source = chain.time_at(math.floor(index))
                if self.monotone_period:
                    next_mark = mark + self.monotone_period
                else:  # one output period per input period: 1/ratio marks further on
                    next_mark = chain.time_at(index + 1.0 / self.ratio)
                gain = voiced_gain
            else:
                source, gain = mark, 1.0
                self._chain.restart(mark)  # voicing resumes from here
                next_mark = mark + self._unvoiced_hop
            # fall over the gap to the next mark, as it will rise over it: the windows add up to one
            right = min(next_mark - mark, reach, half_cap)
            batch.add(mark, source, left, right, gain)
            self._mark_before, self._mark = mark, next_mark
        return batch
