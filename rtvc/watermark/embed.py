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
_SMOOTH = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0  # envelope: power smoothed across 25 Hz bins


def _analysis_window(length: int, total: int) -> np.ndarray:
    rise = round(0.75 * length)
    up = np.sin(0.5 * np.pi * (np.arange(rise) + 0.5) / rise)
    down = np.cos(0.5 * np.pi * (np.arange(length - rise) + 0.5) / (length - rise))
    return np.concatenate([np.zeros(total - length), up, down])


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
        self._analysis = _analysis_window(round(ANALYSIS_S * self.sample_rate), n)
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
        self._frame = 0
        self._update = 0  # index of the current 2.5 ms update within the frame
        self._pos = 0  # position within the current frame
        self._history = np.zeros(2 * self._hop)  # the last 40 ms of host audio
        self._mark = np.zeros(0)  # the mark for the current update interval
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
        out = np.empty_like(x)
        done = 0
        while done < len(x):
            if self._pos == self._edges[self._update]:
                self._mark = self._next_mark()
            end = self._edges[self._update + 1]
            take = min(len(x) - done, end - self._pos)
            start = self._pos - self._edges[self._update]
            out[done : done + take] = x[done : done + take] + self._mark[start : start + take]
            self._history = np.concatenate([self._history[take:], x[done : done + take]])
            self._pos += take
            done += take
            if self._pos == end:
                self._update += 1
                if self._update == UPDATES_PER_FRAME:
                    self._frame, self._update, self._pos = self._frame + 1, 0, 0
        if last:
            self._ended = True
        return out.astype(np.float32)

    def _next_mark(self) -> np.ndarray:
        """The mark from here to the next update, shaped by the host before this sample."""
        lo, hi = self._edges[self._update], self._edges[self._update + 1]
        n = 2 * self._hop
        windowed = self._history * self._analysis
        power = float(windowed @ windowed) / self._analysis_norm  # recent host power per sample
        if power <= self._floor_power:
            return np.zeros(hi - lo)
        band = np.abs(np.fft.rfft(windowed)[self._bins[0] - 2 : self._bins[-1] + 3]) ** 2
        envelope = np.convolve(band, _SMOOTH, mode="valid")  # one value per cell
        shape = np.maximum(envelope, 1e-30) ** (0.5 * self._shaping) * self._tilt
        # Cells of magnitude c * shape make a mark of power 2 c^2 sum(shape^2) / n^2 per sample.
        shape *= n * self._amplitude * math.sqrt(power / (2.0 * float(shape @ shape)))
        current, previous = self._frame % BLOCK_FRAMES, (self._frame - 1) % BLOCK_FRAMES
        cells = np.zeros((2, n // 2 + 1), complex)
        cells[0, self._bins] = shape * self._carrier[current]
        if self._frame > 0:
            cells[1, self._bins] = shape * self._carrier_tail[previous]
        head, tail = np.fft.irfft(cells, n, axis=1)
        return head[lo:hi] * self._window[lo:hi] + tail[lo:hi] * self._window[self._hop + lo : self._hop + hi]
