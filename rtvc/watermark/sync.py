"""Detector core: whitened cell values, pilot search, payload read-out.

Everything runs at :data:`DETECT_RATE` (16 kHz), whatever rate the audio was made or
recorded at. The received audio is cut into 40 ms sine-windowed frames every 20 ms
at four coarse offsets (0, 5, 10, 15 ms); a fine lag of ±2.5 ms, applied as a linear
phase across the bins, covers every alignment in between. Each cell is weighted by
a matched filter for the mark the embedder would have put there given the local
spectrum, so that its value under "no mark" has a known variance: scores are
z-scores. Two band hypotheses are tried: all cells, or the low band only (audio that
went through a telephone channel, a low-pass or an 8 kHz stage).

Search windows start on multiples of :data:`PILOT_FRAMES` frames, so each window's
cells can be folded once by pilot phase; the lags of every (offset, phase, band)
hypothesis then come from one inverse FFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from rtvc.watermark.code import CODED_BITS, decode_token
from rtvc.watermark.key import WatermarkKey
from rtvc.watermark.scheme import BIN_HZ, BINS, BLOCK_FRAMES, LOW_BINS, PILOT_FRAMES, SHAPING, TILT_DB, Layout

__all__ = [
    "DETECT_RATE",
    "HOP",
    "Alignment",
    "Analysis",
    "read_token",
    "scan_pilot",
    "score_at",
    "soft_bits",
    "to_detect_rate",
    "token_score",
]

DETECT_RATE = 16000
HOP = DETECT_RATE // (2 * BIN_HZ)  # 320 samples, one frame
SEGMENT = 2 * HOP
COARSE_OFFSETS = tuple(range(0, HOP, HOP // 4))
FINE_LAGS = np.arange(-HOP // 8, HOP // 8 + 0.01, 0.5)  # samples at DETECT_RATE
EQUALIZER_BINS = 24  # channel estimate: pilot response smoothed over ±24 bins (±600 Hz)
_WINDOW = np.sin(np.pi * (np.arange(SEGMENT) + 0.5) / SEGMENT)
_SMOOTH = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
_FREQS = BINS * BIN_HZ
_TILT = 10.0 ** (TILT_DB * np.log2(_FREQS / 1000.0) / 20.0)
_LAG_FFT = 2 * SEGMENT  # half-sample lag steps: bin b at lag m/2 turns by exp(2j pi b m / _LAG_FFT)
_LAG_INDEX = np.round(2 * FINE_LAGS).astype(np.int64) % _LAG_FFT


def _lag_correlations(cross: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """``Re sum_b cross[:, b] * exp(2j pi f_b lag / DETECT_RATE)`` for every lag in FINE_LAGS.

    An inverse FFT rather than a matrix product: no BLAS threads, which thrash on a loaded machine.
    """
    spectrum = np.zeros((len(cross), _LAG_FFT), complex)
    spectrum[:, bins] = cross
    return np.fft.ifft(spectrum, axis=1)[:, _LAG_INDEX].real * _LAG_FFT


def _fold(values: np.ndarray, rows: np.ndarray, period: int) -> np.ndarray:
    """Sum the frames (rows of ``values``) that share a carrier row: ``out[r] = sum(values[rows == r])``.

    Scores are normalised by the variance of the *folded* cells: a host component that repeats
    exactly with the carrier's period (a steady tone, mains hum, a monotone voice) adds up
    coherently when folded, and a variance summed frame by frame would understate it.
    """
    out = np.zeros((period,) + values.shape[1:], values.dtype)
    order = np.argsort(rows, kind="stable")
    present, first = np.unique(rows[order], return_index=True)
    out[present] = np.add.reduceat(values[order], first, axis=0)
    return out


def to_detect_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float64 at DETECT_RATE (channels averaged)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if sample_rate != DETECT_RATE:
        x = soxr.resample(x, sample_rate, DETECT_RATE, quality="HQ")
    return np.ascontiguousarray(x, dtype=np.float64)


class Analysis:
    """Weighted cell values of one signal, per coarse offset, computed on demand.

    ``cells(o)``: complex64 (frames, bins); ``noise(o)``: float32, the null variance of each cell's
    real part once a unit phasor is taken out. Frame ``j`` at offset ``o`` starts at sample
    ``COARSE_OFFSETS[o] + j * HOP``; ``frames`` is a multiple of PILOT_FRAMES (zero cells pad the
    end). Two offsets are kept, so memory stays ~40 MB per minute of audio.
    """

    def __init__(self, x: np.ndarray) -> None:
        self._x = np.asarray(x, dtype=np.float64)
        self.length = len(x)
        self.real_frames = max(0, (len(x) - SEGMENT - COARSE_OFFSETS[-1]) // HOP + 1)
        self.frames = -(-self.real_frames // PILOT_FRAMES) * PILOT_FRAMES
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def offset(self, o: int) -> tuple[np.ndarray, np.ndarray]:
        if o not in self._cache:
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            cells = np.zeros((self.frames, len(BINS)), np.complex64)
            noise = np.zeros((self.frames, len(BINS)), np.float32)
            for first in range(0, self.real_frames, 1000):  # bounded temporaries
                last = min(first + 1000, self.real_frames)
                idx = COARSE_OFFSETS[o] + HOP * np.arange(first, last)[:, None] + np.arange(SEGMENT)[None, :]
                cells[first:last], noise[first:last] = _weigh(np.fft.rfft(self._x[idx] * _WINDOW, axis=1))
            self._cache[o] = (cells, noise)
        return self._cache[o]


def _weigh(spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matched filter: the mark the embedder would put in each cell over the host power there."""
    power = np.abs(spectra[:, BINS[0] - 2 : BINS[-1] + 3]) ** 2
    envelope = sum(w * power[:, i : i + len(BINS)] for i, w in enumerate(_SMOOTH))
    envelope = np.maximum(envelope, 1e-20)
    expected = envelope ** (0.5 * SHAPING) * _TILT
    expected /= np.sqrt(np.sum(expected**2, axis=1, keepdims=True) / np.sum(envelope, axis=1, keepdims=True))
    cells = spectra[:, BINS] * (expected / envelope)
    return cells, 0.5 * np.abs(cells) ** 2


@dataclass(frozen=True)
class Alignment:
    """Where the pilot sits: coarse offset index, pilot phase of frame 0, fine lag (samples), polarity,
    band (0 = all cells, 1 = low band only) and the z-score."""

    offset: int
    phase: int
    lag: float
    sign: float
    band: int
    z: float

    @property
    def bins(self) -> slice:
        return slice(0, LOW_BINS) if self.band == 1 else slice(0, len(BINS))

    def start(self) -> float:
        """Sample (at DETECT_RATE) where frame 0's segment starts."""
        return COARSE_OFFSETS[self.offset] + self.lag

    def same_grid(self, other: Alignment, *, tolerance: float = 1.5) -> bool:
        """Whether both describe the same embedding (same segment grid, pilot phase and polarity)."""
        period = HOP * PILOT_FRAMES
        a = (self.start() - HOP * self.phase) % period
        b = (other.start() - HOP * other.phase) % period
        gap = abs(a - b) % period
        return self.sign == other.sign and min(gap, period - gap) <= tolerance


def scan_pilot(analysis: Analysis, layout: Layout, windows: np.ndarray, *, chunk: int = 32) -> list[Alignment]:
    """Best pilot alignment in each window of frames ``[a, b)`` (a, b multiples of PILOT_FRAMES)."""
    windows = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    if len(windows) > chunk:  # bounded temporaries for long inputs
        return [a for i in range(0, len(windows), chunk) for a in scan_pilot(analysis, layout, windows[i : i + chunk])]
    n_bins = len(BINS)
    # phase p: frame j of the window carries pilot row (j + p) % PILOT_FRAMES
    rows = (np.arange(PILOT_FRAMES)[:, None] + np.arange(PILOT_FRAMES)[None, :]) % PILOT_FRAMES  # (phase, r)
    pilot = np.conj(layout.pilot[rows])  # (phase, r, bins)
    mask = layout.pilot_mask[rows].astype(np.float64)
    low = slice(0, LOW_BINS)
    best_z = np.zeros(len(windows))
    best = [Alignment(0, 0, 0.0, 1.0, 0, 0.0)] * len(windows)
    for o in range(len(COARSE_OFFSETS)):
        cells, _ = analysis.offset(o)
        # each window folded by pilot row: (windows, r, bins)
        folded = np.stack([cells[a:b].reshape(-1, PILOT_FRAMES, n_bins).sum(axis=0) for a, b in windows])
        folded = folded.astype(np.complex128)
        cross = np.einsum("wrb,prb->wpb", folded, pilot).reshape(-1, n_bins)  # (windows * phase, bins)
        nvar = np.einsum("wrb,prb->wpb", 0.5 * np.abs(folded) ** 2, mask)  # null variance over the keyed phases
        corr_low = _lag_correlations(cross[:, low], BINS[low]).reshape(len(windows), PILOT_FRAMES, -1)
        corr_full = corr_low + _lag_correlations(cross[:, LOW_BINS:], BINS[LOW_BINS:]).reshape(corr_low.shape)
        var_low = np.maximum(nvar[..., low].sum(axis=-1), 1e-300)[..., None]
        var_full = var_low + nvar[..., LOW_BINS:].sum(axis=-1)[..., None]
        z = np.stack([corr_full / np.sqrt(var_full), corr_low / np.sqrt(var_low)], axis=2)  # (w, phase, band, lag)
        for i in range(len(windows)):
            p, band, lag = np.unravel_index(int(np.argmax(np.abs(z[i]))), z.shape[1:])
            top = float(z[i, p, band, lag])
            if abs(top) > best_z[i]:
                best_z[i] = abs(top)
                best[i] = Alignment(o, int(p), float(FINE_LAGS[lag]), 1.0 if top >= 0 else -1.0, int(band), top)
    return best


def score_at(analysis: Analysis, layout: Layout, align: Alignment, start: int, stop: int) -> float:
    """Pilot z-score of frames ``[start, stop)`` at a known alignment (one hypothesis: no search)."""
    use = align.bins
    rows = (np.arange(start, stop) + align.phase) % PILOT_FRAMES
    phasor = np.exp(2j * np.pi * _FREQS[use] * align.lag / DETECT_RATE)
    cells = _fold(analysis.offset(align.offset)[0][start:stop, use].astype(np.complex128), rows, PILOT_FRAMES)
    corr = align.sign * np.sum((cells * np.conj(layout.pilot[:, use]) * phasor).real)
    var = np.sum(0.5 * np.abs(cells) ** 2 * layout.pilot_mask[:, use])
    return float(corr / np.sqrt(max(var, 1e-300)))


def soft_bits(analysis: Analysis, layout: Layout, align: Alignment, start: int, stop: int) -> list[np.ndarray]:
    """Soft coded bits (z-scores, positive = 0) from frames ``[start, stop)``, one array per block phase.

    Before combining, each bin is equalised by the channel response that the pilot shows there
    (smoothed over neighbouring bins): this undoes codec and filter phase shifts and weights
    the bins by how well the mark survived in them.
    """
    use = align.bins
    phasor = align.sign * np.exp(2j * np.pi * _FREQS[use] * align.lag / DETECT_RATE)
    all_cells, all_noise = analysis.offset(align.offset)
    response = np.zeros(len(phasor), complex)
    weight = np.zeros(len(phasor))
    folded = np.zeros((BLOCK_FRAMES, len(phasor)), complex)
    for first in range(start, stop, 1000):  # in pieces: bounded temporaries
        frames = np.arange(first, min(first + 1000, stop))
        cells = all_cells[frames, use] * phasor
        pilot_rows = (frames + align.phase) % PILOT_FRAMES
        response += np.sum(cells * np.conj(layout.pilot[pilot_rows, use]), axis=0)
        weight += np.sum(all_noise[frames, use] * layout.pilot_mask[pilot_rows, use], axis=0)
        folded += _fold(cells, (frames + align.phase) % BLOCK_FRAMES, BLOCK_FRAMES)
    box = np.ones(2 * EQUALIZER_BINS + 1)
    folded *= np.conj(np.convolve(response, box, "same") / np.maximum(np.convolve(weight, box, "same"), 1e-300))
    bits = layout.data_bit[:, use]
    used = bits >= 0
    out = []
    for block_phase in range(BLOCK_FRAMES // PILOT_FRAMES):
        shifted = np.roll(folded, PILOT_FRAMES * block_phase, axis=0)  # frame row q -> block row q + 10 b
        values = (shifted * np.conj(layout.data_phasor[:, use])).real
        total = np.bincount(bits[used], weights=values[used], minlength=CODED_BITS)
        var = np.bincount(bits[used], weights=0.5 * np.abs(shifted[used]) ** 2, minlength=CODED_BITS)
        out.append(total / np.sqrt(np.maximum(var, 1e-300)))
    return out


def read_token(analysis: Analysis, layout: Layout, key: WatermarkKey, align: Alignment, start: int,
               stop: int, *, tries: int = 2) -> tuple[int, int] | None:
    """Decode the token from frames ``[start, stop)`` at ``align``: ``(token, block_phase)``, or None
    unless a decode's keyed tag checks out.

    The block phase is not known from the pilot (it repeats 10 times per block): the phases whose
    soft bits carry the most energy are tried first.
    """
    candidates = soft_bits(analysis, layout, align, start, stop)
    order = np.argsort([-float(s @ s) for s in candidates], kind="stable")
    for b in order[:tries]:
        token = decode_token(candidates[b], key)
        if token is not None:
            return token, int(b)
    return None


def token_score(analysis: Analysis, layout: Layout, align: Alignment, block_phase: int, coded: np.ndarray,
                start: int, stop: int) -> float:
    """z-score of the data cells of frames ``[start, stop)`` against a known codeword (one hypothesis)."""
    use = align.bins
    rows = (np.arange(start, stop) + align.phase + PILOT_FRAMES * block_phase) % BLOCK_FRAMES
    phasor = np.exp(2j * np.pi * _FREQS[use] * align.lag / DETECT_RATE)
    bits = layout.data_bit[:, use]
    signs = np.where(bits >= 0, 1.0 - 2.0 * coded[np.maximum(bits, 0)], 0.0)
    cells = _fold(analysis.offset(align.offset)[0][start:stop, use].astype(np.complex128), rows, BLOCK_FRAMES)
    corr = align.sign * np.sum((cells * np.conj(layout.data_phasor[:, use]) * phasor).real * signs)
    var = np.sum(0.5 * np.abs(cells) ** 2 * (bits >= 0))
    return float(corr / np.sqrt(max(var, 1e-300)))
