"""The time-frequency layout of the watermark, the same at every sample rate.

The mark is a sum of overlapping 40 ms segments, one every 20 ms (frame ``m``
starts at sample ``m * rate / 50`` of the stream). Each segment is a keyed
multi-carrier signal (unit phasors on FFT bins of a 40 ms window) shaped by
the host's spectral envelope and tapered by a sine window.

It has 125 cells on the bins between 300 and 3400 Hz, 25 Hz apart (a 40 ms
window), so the same frequencies at every rate: this *low band* sits inside the
telephone band and what Opus/SILK codes, and carries everything on its own. At
rates of 16 kHz and up, 144 more cells up to 7 kHz (the *high band*) add capacity;
the detector uses them when they survived and ignores them when they did not.

Per frame, a keyed half of the bins carry the *pilot*: fixed keyed phases that
repeat every :data:`PILOT_FRAMES` frames (200 ms). The detector finds the pilot at
any cut point, which gives presence, timing and polarity. The other bins carry
the *data*: keyed phases times ±1 for one coded payload bit; a keyed interleaver
spreads every coded bit over ~44 cells scattered across a :data:`BLOCK_FRAMES`
block (2 s). The payload is the same in every block, so any excerpt soft-combines
all the blocks it covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rtvc.watermark.code import CODED_BITS, encode_token
from rtvc.watermark.key import WatermarkKey

__all__ = [
    "BIN_HZ",
    "BINS",
    "LOW_BINS",
    "BLOCK_FRAMES",
    "FRAME_S",
    "FRAMES_PER_S",
    "PILOT_FRAMES",
    "SHAPING",
    "STRENGTH_DB",
    "TILT_DB",
    "Layout",
]

FRAMES_PER_S = 50
FRAME_S = 1.0 / FRAMES_PER_S  # hop between segments
BIN_HZ = FRAMES_PER_S // 2  # bin spacing of a 2-frame (40 ms) segment
BINS = np.arange(12, 281)  # 300 .. 7000 Hz in BIN_HZ steps
LOW_BINS = 125  # the first 125 cells: 300 .. 3400 Hz
PILOT_FRAMES = 10
BLOCK_FRAMES = 100
PILOT_SHARE = 0.5
# How the embedder shapes the mark, which the detector's matched filter assumes: cell magnitude
# = host envelope ** (SHAPING / 2) * TILT_DB per octave around 1 kHz, at STRENGTH_DB below the host.
SHAPING = 0.8
TILT_DB = 2.0
STRENGTH_DB = -25.7


@dataclass(frozen=True)
class Layout:
    """Keyed carrier tables: which cells are pilot, their phasors, and the data interleaver.

    Attributes
    ----------
    pilot_mask : bool (PILOT_FRAMES, len(BINS))
    pilot : complex128 (PILOT_FRAMES, len(BINS))
        Pilot phasors, zero off the pilot cells.
    data_phasor : complex128 (BLOCK_FRAMES, len(BINS))
        Data carrier phasors, zero on pilot cells.
    data_bit : int (BLOCK_FRAMES, len(BINS))
        Which coded bit each data cell carries (-1 on pilot cells).
    """

    pilot_mask: np.ndarray
    pilot: np.ndarray
    data_phasor: np.ndarray
    data_bit: np.ndarray

    @classmethod
    def from_key(cls, key: WatermarkKey) -> Layout:
        """The layout for ``key`` (cached: it is the same for every session and detection)."""
        return _layout(key)

    @classmethod
    def _build(cls, key: WatermarkKey) -> Layout:
        n_bins = len(BINS)
        pilot_mask = np.zeros((PILOT_FRAMES, n_bins), bool)
        for band, (lo, hi) in enumerate(((0, LOW_BINS), (LOW_BINS, n_bins))):  # the same share of each band
            order = np.argsort(key.uniform(f"pilot-cells-{band}", (PILOT_FRAMES, hi - lo)), axis=1, kind="stable")
            np.put_along_axis(pilot_mask[:, lo:hi], order[:, : round((hi - lo) * PILOT_SHARE)], True, axis=1)
        pilot = np.exp(2j * np.pi * key.uniform("pilot-phase", (PILOT_FRAMES, n_bins))) * pilot_mask
        data_mask = ~np.tile(pilot_mask, (BLOCK_FRAMES // PILOT_FRAMES, 1))
        data_phasor = np.exp(2j * np.pi * key.uniform("data-phase", (BLOCK_FRAMES, n_bins))) * data_mask
        # Interleaver: the data cells in a keyed random order, dealt round-robin to the coded bits.
        cells = np.flatnonzero(data_mask)
        cells = cells[np.argsort(key.uniform("interleaver", (len(cells),)), kind="stable")]
        data_bit = np.full(data_mask.size, -1, np.int64)
        data_bit[cells] = np.arange(len(cells)) % CODED_BITS
        return cls(pilot_mask, pilot, data_phasor, data_bit.reshape(data_mask.shape))

    def carrier(self, token: int, key: WatermarkKey) -> np.ndarray:
        """Complex (BLOCK_FRAMES, len(BINS)) cell values of one block carrying ``token``: unit magnitude."""
        coded = encode_token(token, key)
        signs = np.where(self.data_bit >= 0, 1.0 - 2.0 * coded[np.maximum(self.data_bit, 0)], 0.0)
        pilot = np.tile(self.pilot, (BLOCK_FRAMES // PILOT_FRAMES, 1))
        return pilot + self.data_phasor * signs


@lru_cache(maxsize=8)
def _layout(key: WatermarkKey) -> Layout:
    layout = Layout._build(key)
    for table in (layout.pilot_mask, layout.pilot, layout.data_phasor, layout.data_bit):
        table.flags.writeable = False  # shared between sessions
    return layout
