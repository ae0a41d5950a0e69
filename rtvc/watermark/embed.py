"""The embedding stage: adds the keyed, host-shaped mark to every output sample, causally.

The *carrier* (keyed unit phasors per 40 ms segment, one segment every 20 ms, see
:mod:`rtvc.watermark.scheme`) is known in advance and does not depend on the audio.
Only its spectral shape and level follow the host, and they are re-estimated every
2.5 ms from the host samples *before* that point (a 20 ms window weighted towards
the most recent audio). Shaping multiplies the carrier's bins by a real envelope, so
the carrier's phases, which the detector correlates with, are untouched.

So output sample ``k`` depends only on input samples ``<= k`` (zero look-ahead,
``delay() == 0``), and every quantity is indexed by absolute stream position, so
the output is the same whatever the chunking.
"""

from __future__ import annotations

import math

import numpy as np

from rtvc.watermark.errors import WatermarkError
from rtvc.watermark.key import WatermarkKey
from rtvc.watermark.scheme import (
    BIN_HZ,
    BINS,
    BLOCK_FRAMES,
    FRAMES_PER_S,
    LOW_BINS,
    SHAPING,
    STRENGTH_DB,
    TILT_DB,
    Layout,
)

__all__ = ["SUPPORTED_RATES", "Watermarker"]

SUPPORTED_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
UPDATES_PER_FRAME = 8  # shape and level re-estimated every 2.5 ms
ANALYSIS_S = 0.020  # host window for the shape: 20 ms, rising over 15 ms, falling over the last 5 ms


def _analysis_window(length: int) -> np.ndarray:
    rise = round(0.75 * length)
    up = np.sin(0.5 * np.pi * (np.arange(rise) + 0.5) / rise)
    down = np.cos(0.5 * np.pi * (np.arange(length - rise) + 0.5) / (length - rise))
    return np.concatenate([up, down])


class Watermarker:
    """Streaming watermark embedder for one session, shaped like ``soxr.ResampleStream``.

    Parameters
    ----------
    key : WatermarkKey
        The server secret.
    token : int
        The session's opaque 64-bit token.
    sample_rate : int [Hz]
        One of :data:`SUPPORTED_RATES`.
    strength_db : float [dB]
        Mark power relative to the recent host power.
    shaping : float
        Exponent of the host's spectral envelope that shapes the mark (1 = the host's shape).
    tilt_db : float [dB per octave]
        Extra spectral tilt of the mark around 1 kHz.
    floor_dbfs : float [dBFS]
        No mark while the recent host RMS is below this (digital silence stays silent).
    """

    def __init__(self, key: WatermarkKey, token: int, sample_rate: int, *, strength_db: float = STRENGTH_DB,
                 shaping: float = SHAPING, tilt_db: float = TILT_DB, floor_dbfs: float = -70.0) -> None:
        try:
            self._init(key, token, sample_rate, strength_db, shaping, tilt_db, floor_dbfs)
        except WatermarkError:
            raise
        except Exception as exc:  # fail closed: a stage that cannot initialise must not exist
            raise WatermarkError(f"watermark cannot initialise: {exc}") from exc

    def _init(self, key, token, sample_rate, strength_db, shaping, tilt_db, floor_dbfs) -> None:
        if not isinstance(key, WatermarkKey):
            raise WatermarkError(f"key must be a WatermarkKey, got {type(key).__name__}")
        if isinstance(sample_rate, bool) or sample_rate not in SUPPORTED_RATES:
            rates = ", ".join(map(str, SUPPORTED_RATES))
            raise WatermarkError(f"watermark sample rate {sample_rate!r} Hz unsupported; use one of {rates}")
        for name, value, lo, hi in (("strength_db", strength_db, -60.0, -10.0), ("shaping", shaping, 0.0, 1.5),
                                    ("tilt_db", tilt_db, -6.0, 6.0), ("floor_dbfs", floor_dbfs, -120.0, -20.0)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                raise WatermarkError(f"{name} must be within {lo:g}..{hi:g}, got {value!r}")
        import scipy.fft  # here, not at module level: the CLI imports this module and rarely embeds

        self._fft = scipy.fft
        self.sample_rate = int(sample_rate)
        self.token = int(token)
        hop = self.sample_rate // FRAMES_PER_S
        n = 2 * hop
        # The high band only where the rate leaves room below Nyquist (not at 8 kHz).
        n_bins = len(BINS) if BINS[-1] * BIN_HZ < 0.45 * self.sample_rate else LOW_BINS
        self._bins = BINS[:n_bins]
        self._carrier = Layout.from_key(key).carrier(token, key)[:, :n_bins]  # validates the token
        # Segment m-1's second half meets segment m's first half: shift it by half a segment, (-1)^k per bin.
        self._carrier_tail = self._carrier * np.where(self._bins % 2 == 0, 1.0, -1.0)
        self._tilt = 10.0 ** (tilt_db * np.log2(self._bins * BIN_HZ / 1000.0) / 20.0)
        self._hop = hop
        self._window = np.sin(np.pi * (np.arange(n) + 0.5) / n)
        # The host window is the last 20 ms, zero-padded to the segment length for the 25 Hz bins.
        self._analysis = _analysis_window(round(ANALYSIS_S * self.sample_rate))
        self._cells = slice(int(self._bins[0]), int(self._bins[-1]) + 1)  # contiguous bins
        self._analysis_norm = float(self._analysis @ self._analysis)
        self._edges = [round(b * hop / UPDATES_PER_FRAME) for b in range(UPDATES_PER_FRAME + 1)]
        self._amplitude = 10.0 ** (strength_db / 20.0)
        self._shaping = float(shaping)
        self._floor_power = 10.0 ** (floor_dbfs / 10.0)
        self._failed: str | None = None
        self.reset()

    def reset(self) -> None:
        """Ready for a fresh stream (frame 0 starts at the next sample), same key, token and rate.

        A stage that failed stays failed.
        """
        self._done = 0  # samples marked so far: the stream position
        self._history = np.zeros(len(self._analysis))  # the last 20 ms of host audio
        self._mark = np.zeros(0)  # the rest of the current update interval's mark
        self._ended = False

    def delay(self) -> int:
        """Samples of delay: none, the mark never looks ahead."""
        return 0

    def process(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        """Mark float32 ``(n,)`` audio; returns float32 ``(n,)``: input plus mark, not clipped (the encoder clips,
        and clipping here would add distortion that is not the mark).

        Raises
        ------
        WatermarkError
            On bad input or any internal fault; the stage then refuses all further audio.
        """
        if self._failed is not None:
            raise WatermarkError(f"watermark stage failed earlier ({self._failed}); the session must end")
        if self._ended:
            raise WatermarkError("watermark stream already ended (last=True); reset() to start another")
        try:
            return self._process(x, last)
        except Exception as exc:
            self._failed = str(exc) or type(exc).__name__
            if isinstance(exc, WatermarkError):
                raise
            raise WatermarkError(f"watermark embedding failed: {exc}") from exc

    def _process(self, x: np.ndarray, last: bool) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 1 or not (np.issubdtype(x.dtype, np.floating) or x.size == 0):
            raise WatermarkError(f"watermark takes float mono audio of shape (n,), got {x.dtype} {x.shape}")
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise WatermarkError("watermark input contains NaN or infinity")
        span, pos0, count = len(self._history), self._done, len(x)
        host = np.concatenate([self._history, x])  # host[j] is stream sample pos0 - span + j
        starts, frames, updates = self._update_starts(pos0, count)
        mark = np.empty(count)
        first = starts[0] - pos0 if starts else count
        mark[:first] = self._mark[:first]  # the update interval begun in an earlier call
        if starts:
            # Every update starting in this chunk is shaped by host audio before its start, all of which is here.
            windows = np.stack([host[s - pos0 : s - pos0 + span] for s in starts])
            for start, segment in zip(starts, self._marks(windows, frames, updates), strict=True):
                offset = start - pos0
                take = min(len(segment), count - offset)
                mark[offset : offset + take] = segment[:take]
                self._mark = segment[take:]
        else:
            self._mark = self._mark[first:]
        self._history = host[-span:]
        self._done += count
        if last:
            self._ended = True
        return (x + mark).astype(np.float32)

    def _update_starts(self, pos0: int, count: int) -> tuple[list[int], list[int], list[int]]:
        """Stream positions, frames and update indices of the shape updates within ``[pos0, pos0 + count)``."""
        starts, frames, updates = [], [], []
        for frame in range(pos0 // self._hop, (pos0 + count - 1) // self._hop + 1):
            for update, edge in enumerate(self._edges[:-1]):
                if pos0 <= frame * self._hop + edge < pos0 + count:
                    starts.append(frame * self._hop + edge)
                    frames.append(frame)
                    updates.append(update)
        return starts, frames, updates

    def _marks(self, windows: np.ndarray, frames: list[int], updates: list[int]) -> list[np.ndarray]:
        """The marks of update intervals (one per row of host ``windows``: the 20 ms before each interval)."""
        n, hop = 2 * self._hop, self._hop
        windowed = windows * self._analysis
        power = np.einsum("ij,ij->i", windowed, windowed) / self._analysis_norm  # recent host power per sample
        spectrum = self._fft.rfft(windowed.astype(np.float32), n, axis=1)[:, self._bins[0] - 2 : self._bins[-1] + 3]
        band = spectrum.real**2 + spectrum.imag**2
        width = len(self._bins)
        # The power smoothed across 5 bins (weights 1 2 3 2 1): one value per cell.
        envelope = (band[:, :width] + band[:, 4 : width + 4] + 2.0 * (band[:, 1 : width + 1] + band[:, 3 : width + 3])
                    + 3.0 * band[:, 2 : width + 2]) / 9.0
        shape = np.maximum(envelope, 1e-30) ** (0.5 * self._shaping) * self._tilt
        # Cells of magnitude c * shape make a mark of power 2 c^2 sum(shape^2) / n^2 per sample.
        gain = n * self._amplitude * np.sqrt(power / (2.0 * np.einsum("ij,ij->i", shape, shape)))
        shape *= np.where(power > self._floor_power, gain, 0.0)[:, None]  # digital silence stays unmarked
        frames = np.asarray(frames)
        cells = np.zeros((2 * len(frames), n // 2 + 1), np.complex64)
        cells[0::2, self._cells] = shape * self._carrier[frames % BLOCK_FRAMES]
        tail = self._carrier_tail[(frames - 1) % BLOCK_FRAMES] * (frames > 0)[:, None]
        cells[1::2, self._cells] = shape * tail
        waves = self._fft.irfft(cells, n, axis=1)
        marks = []
        for i, u in enumerate(updates):
            lo, hi = self._edges[u], self._edges[u + 1]
            marks.append(waves[2 * i, lo:hi] * self._window[lo:hi] + waves[2 * i + 1, lo:hi] * self._window[hop + lo : hop + hi])
        return marks
