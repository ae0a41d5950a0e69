"""Streaming pitch tracker: YIN on a fixed hop grid, refined at the full rate.

Frame ``k`` is centred on input sample ``k * hop``. It is computed as soon as
the input reaches ``k * hop + lookahead``, so the tracker's look-ahead is fixed
and known. Two stages keep it cheap and precise:

1. coarse YIN (cumulative mean normalised difference, absolute threshold) on a
   low-passed copy decimated to 8-11 kHz picks the period and the voicing;
2. the plain difference function at the full rate, over a few lags around the
   coarse period with a window centred on the frame, gives the period to a
   fraction of a sample (parabolic interpolation).

Output F0 of the PSOLA shifter is set by these periods, so stage 2 matters.
"""

from __future__ import annotations

import numpy as np

from rtvc.voices.dsp.history import History
from rtvc.voices.dsp.iir import butter, lfilter

__all__ = ["PitchTracker"]


class PitchTracker:
    """Periods and voicing of a mono stream on a ``hop``-sample grid.

    Parameters
    ----------
    sample_rate : int [Hz]
    hop_s : float [s]
        Frame spacing.
    lookahead_s : float [s]
        Input needed past a frame's centre; bounds the analysis windows.
    lookahead_samples : int, optional
        The same in samples (overrides ``lookahead_s``).
    f0_min_hz, f0_max_hz : float [Hz]
        Search range.
    threshold : float
        YIN absolute threshold on the normalised difference (first dip below it wins) ...
    dip_margin : float
        ... lowered to the deepest dip plus this margin when that is lower.
    voicing_threshold : float
        A frame is voiced when its best normalised difference is below this ...
    silence_rms : float
        ... and the RMS of its low-passed window is above this (full scale 1.0).
    lowpass_hz : float [Hz]
        Cut-off of the low-pass applied before analysis (available to callers as ``low``).
    """

    def __init__(self, sample_rate: int, *, hop_s: float = 0.005, lookahead_s: float = 0.013,
                 lookahead_samples: int | None = None, f0_min_hz: float = 75.0, f0_max_hz: float = 800.0,
                 threshold: float = 0.15, dip_margin: float = 0.05, voicing_threshold: float = 0.35,
                 silence_rms: float = 1e-3, lowpass_hz: float = 1500.0) -> None:
        self.sample_rate = sample_rate
        self.decimation = m = self._decimation(sample_rate)
        coarse_rate = sample_rate / m
        self.hop = self.hop_for(sample_rate, hop_s)
        self.lookahead = lookahead_samples if lookahead_samples is not None else round(lookahead_s * sample_rate)
        self.threshold, self.dip_margin = threshold, dip_margin
        self.voicing_threshold, self.silence_rms = voicing_threshold, silence_rms
        self._b, self._a = butter(4, min(lowpass_hz, 0.4 * coarse_rate), fs=sample_rate)
        self._zi = np.zeros(len(self._a) - 1)
        # coarse stage (decimated samples)
        self._lag_min_c = max(2, int(coarse_rate / f0_max_hz))
        self._lag_max_c = int(np.ceil(coarse_rate / f0_min_hz))
        self._span_c = 2 * (self.lookahead // m) - 2
        self._win_c = self._span_c - self._lag_max_c - 1
        if self._win_c < self._lag_max_c // 2:
            raise ValueError("pitch look-ahead too short for the lowest F0")
        # fine stage (full-rate samples)
        self._radius = radius = 2 + m // 3
        self._win_f = 2 * (self.lookahead - radius - 1) - self._lag_max_c * m
        self._lag_numbers = np.arange(1, self._lag_max_c + 1, dtype=np.float64)
        self._silence_energy = silence_rms**2 * self._win_c
        # low-passed input, full rate; history starts with zeros before time 0
        pad = self.lookahead + self.hop
        #: the low-passed input (full rate); kept until :meth:`forget_before` says otherwise
        self.low = History(-pad, np.zeros(pad))
        self.periods: list[float] = []  # period in samples, 0.0 when unvoiced
        self.first_frame = 0  # frame index of periods[0] (older frames are dropped)

    @staticmethod
    def _decimation(sample_rate: int) -> int:
        return max(1, sample_rate // 8000)  # the coarse search runs at 8-11 kHz

    @classmethod
    def hop_for(cls, sample_rate: int, hop_s: float) -> int:
        """Frame spacing in samples: ``hop_s`` rounded to a whole number of coarse samples."""
        m = cls._decimation(sample_rate)
        return m * max(1, round(hop_s * sample_rate / m))

    @property
    def frames(self) -> int:
        """Frames computed so far (frame k is centred on sample k * hop)."""
        return self.first_frame + len(self.periods)

    def push(self, x: np.ndarray) -> None:
        """Append input samples and compute every frame that became computable."""
        y, self._zi = lfilter(self._b, self._a, np.asarray(x, dtype=np.float64), zi=self._zi)
        self.low.append(y)
        ready = (self.low.end - self.lookahead) // self.hop + 1  # frames whose window is complete
        if ready > self.frames:
            self.periods.extend(self._analyse(range(self.frames * self.hop, ready * self.hop, self.hop)))

    def period_at(self, t: float) -> float:
        """Period (samples) of the frame nearest ``t``; 0.0 when unvoiced (and before the stream)."""
        k = int(t / self.hop + 0.5) - self.first_frame
        if k < 0:
            if t < 0.0:
                return 0.0
            raise IndexError(f"pitch frame for t={t} was already dropped")
        return self.periods[k]

    def forget_before(self, t: float) -> None:
        """Drop frames and low-passed input that no time >= ``t`` can need."""
        drop = int(t / self.hop + 0.5) - 1 - self.first_frame
        if drop > 64:
            del self.periods[:drop]
            self.first_frame += drop
        # the next frame's analysis window reaches back `lookahead` samples from its centre
        self.low.trim(min(int(t), self.frames * self.hop - self.lookahead - self.hop))

    def _analyse(self, centres: range) -> list[float]:
        """Period (0.0 when unvoiced) of the frames centred on ``centres``."""
        data, m = self.low.data, self.decimation
        win, lag_max, lag_min = self._win_c, self._lag_max_c, self._lag_min_c
        half = (self._span_c // 2) * m
        periods = []
        for centre in centres:
            # coarse YIN on the decimated, low-passed signal
            start = centre - half - self.low.start
            frame = data[start : start + self._span_c * m : m]
            corr = np.correlate(frame, frame[:win], "valid")
            power = (frame * frame).cumsum()
            energy = float(power[win - 1])
            # d(tau) = sum a^2 + sum b_tau^2 - 2 r(tau), tau = 1 .. lag_max
            diff = power[win : win + lag_max] - power[:lag_max]
            diff += energy + 1e-12
            diff -= 2.0 * corr[1 : lag_max + 1]
            np.maximum(diff, 1e-12, out=diff)
            cmnd = diff * self._lag_numbers
            cmnd /= diff.cumsum()
            lag, best = self._pick(cmnd[lag_min - 1 :])
            if best < self.voicing_threshold and energy > self._silence_energy:
                periods.append(self._refine(centre, (lag + lag_min) * m))
            else:
                periods.append(0.0)
        return periods

    def _pick(self, row: np.ndarray) -> tuple[float, float]:
        """YIN lag choice in ``row`` (index 0 = lag_min): the bottom of the first dip under the
        threshold, else the global minimum. Returns (fractional index, value there).

        The threshold is lowered to just above the deepest dip: a shallow early dip (a strong
        harmonic near the first formant) then no longer wins over a much deeper one at the period.
        """
        threshold = min(self.threshold, float(row.min()) + self.dip_margin)
        k = int((row < threshold).argmax())
        last = len(row) - 1
        if row[k] < threshold:
            while k < last and row[k + 1] < row[k]:
                k += 1
        else:
            k = int(row.argmin())
        best = float(row[k])
        if 0 < k < last:
            left, right = float(row[k - 1]), float(row[k + 1])
            curve = left - 2.0 * best + right
            if curve > 1e-12:
                return k + min(0.5, max(-0.5, 0.5 * (left - right) / curve)), best
        return float(k), best

    def _refine(self, centre: int, lag: float) -> float:
        """Full-rate difference function at lags round(lag) + [-r, r]; parabolic minimum."""
        r, win = self._radius, self._win_f
        first_lag = int(round(min(lag, self._lag_max_c * self.decimation))) - r
        start = centre - (win + first_lag + r) // 2 - self.low.start
        seg = self.low.data[start : start + win + first_lag + 2 * r]
        head = seg[:win]
        tail = seg[first_lag:]
        cross = np.correlate(tail, head, "valid")  # sum head * tail[j : j + win], j = 0 .. 2r
        sq = (tail * tail).cumsum()
        energy = sq[win - 1 :] - np.concatenate(([0.0], sq[: 2 * r]))
        d = (float(head @ head) + energy - 2.0 * cross).tolist()
        k = min(max(d.index(min(d)), 1), 2 * r - 1)
        left, mid, right = d[k - 1], d[k], d[k + 1]
        curve = left - 2.0 * mid + right
        shift = min(1.0, max(-1.0, 0.5 * (left - right) / curve)) if curve > 0 else 0.0
        return first_lag + k + shift
