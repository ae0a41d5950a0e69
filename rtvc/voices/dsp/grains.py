"""Grain rendering and overlap-add for the PSOLA shifter.

A grain is a Hann-windowed piece of the input, centred on an analysis time
``source`` and laid down centred on a synthesis time ``centre`` (both may be
fractional). Its window rises over ``left`` samples and falls over ``right``
samples; when each grain's ``right`` equals the next one's ``left`` (the gap
between their centres) the windows sum to exactly one. Output sample ``n``
reads the input at ``source + (n - centre) * formant``: a formant factor above
1 squeezes the grain, which moves the spectral envelope up by that factor.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GrainBatch", "OverlapAdd", "interpolate_cubic"]


def interpolate_cubic(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Catmull-Rom interpolation of ``data`` at fractional ``positions`` (exact at integers).

    ``positions`` must lie in ``[1, len(data) - 3]``.
    """
    base = np.floor(positions)
    t = positions - base
    i = base.astype(np.intp)
    p0, p1, p2, p3 = data[i - 1], data[i], data[i + 1], data[i + 2]
    # Horner form of the Catmull-Rom spline between p1 and p2
    return p1 + 0.5 * t * ((p2 - p0) + t * ((2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) + t * (3.0 * (p1 - p2) + p3 - p0)))


class GrainBatch:
    """Grains collected during one call, rendered together (vectorised over grains)."""

    def __init__(self) -> None:
        self.centres: list[float] = []
        self.sources: list[float] = []
        self.lefts: list[float] = []
        self.rights: list[float] = []
        self.gains: list[float] = []

    def add(self, centre: float, source: float, left: float, right: float, gain: float) -> None:
        self.centres.append(centre)
        self.sources.append(source)
        self.lefts.append(left)
        self.rights.append(right)
        self.gains.append(gain)

    def __len__(self) -> int:
        return len(self.centres)

    def render(self, signal: np.ndarray, signal_start: int, formant: float) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray, np.ndarray]:
        """Windowed grains, their windows, first output index and length of each grain.

        ``signal[i]`` is input sample ``signal_start + i``. Returns ``(values, windows, firsts,
        lengths)``; grain ``g`` occupies ``values[offset_g : offset_g + lengths[g]]`` and belongs
        at output samples ``firsts[g] ...``.
        """
        params = np.array([self.centres, self.lefts, self.rights, self.sources, self.gains])
        centres = params[0]
        firsts = np.floor(centres - params[1]).astype(np.int64) + 1  # strictly inside: window > 0
        lengths = np.ceil(centres + params[2]).astype(np.int64) - firsts
        offsets = lengths.cumsum() - lengths
        per_sample = np.repeat(params, lengths, axis=1)
        positions = np.repeat(firsts - offsets, lengths) + np.arange(int(lengths.sum()))
        tau = positions - per_sample[0]
        windows = 0.5 + 0.5 * np.cos(tau * (np.pi / np.where(tau < 0.0, per_sample[1], per_sample[2])))
        # absolute time first, then the buffer offset: the rounding is then the same whatever the blocks
        reads = (per_sample[3] + formant * tau) - signal_start
        values = interpolate_cubic(signal, reads) * windows * per_sample[4]
        return values, windows, firsts, lengths


class OverlapAdd:
    """Accumulates grains and window sums; hands out finished samples in order.

    Sample ``n`` is finished once no future grain can reach it. Output is the
    grain sum divided by ``max(window sum, 1)``: where windows pile up (voicing
    changes, spacing changes) the level stays put, while the natural gaps of
    pitch-lowered speech are left alone.
    """

    def __init__(self, start: int, capacity: int) -> None:
        self.start = start
        self._sum = np.zeros(capacity)
        self._weight = np.zeros(capacity)

    def add(self, batch: GrainBatch, signal: np.ndarray, signal_start: int, formant: float) -> None:
        values, windows, firsts, lengths = batch.render(signal, signal_start, formant)
        self._reserve(int(firsts[-1] + lengths[-1]) - self.start)
        # one grain at a time, in order: every sample sums its grains in the same order whatever the blocks
        offset = 0
        for first, length in zip((firsts - self.start).tolist(), lengths.tolist(), strict=True):
            self._sum[first : first + length] += values[offset : offset + length]
            self._weight[first : first + length] += windows[offset : offset + length]
            offset += length

    def pop(self, stop: int) -> np.ndarray:
        """Finished samples from ``start`` up to ``stop`` (exclusive)."""
        count = stop - self.start
        self._reserve(count)
        out = self._sum[:count] / np.maximum(self._weight[:count], 1.0)
        keep = len(self._sum) - count
        self._sum[:keep] = self._sum[count:]
        self._sum[keep:] = 0.0
        self._weight[:keep] = self._weight[count:]
        self._weight[keep:] = 0.0
        self.start = stop
        return out

    def _reserve(self, size: int) -> None:
        if size > len(self._sum):
            grow = size - len(self._sum) + 1024
            self._sum = np.concatenate([self._sum, np.zeros(grow)])
            self._weight = np.concatenate([self._weight, np.zeros(grow)])
