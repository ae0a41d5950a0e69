"""SOLA: join consecutive overlapping renders without clicks or phase jumps."""

from __future__ import annotations

import numpy as np

__all__ = ["Sola"]


class Sola:
    """Synchronous overlap-add for window-rendering voices.

    Each call gets ``block + crossfade + search`` rendered samples. The offset
    ``o`` in ``[0, search]`` whose ``crossfade`` samples best match the tail kept
    from the previous render (normalised cross-correlation) is chosen; the
    block ``rendered[o : o + block]`` is emitted with its head crossfaded
    (raised-cosine) into that tail; ``rendered[o + block : o + block + crossfade]``
    becomes the next tail. With ``crossfade == search == 0`` it passes blocks through.
    """

    def __init__(self, *, block: int, crossfade: int, search: int) -> None:
        self.block, self.crossfade, self.search = block, crossfade, search
        if crossfade > block:
            raise ValueError(f"crossfade ({crossfade}) must not exceed the block ({block})")
        phase = (np.arange(crossfade, dtype=np.float64) + 0.5) / max(1, crossfade)
        self._fade_in = (np.sin(0.5 * np.pi * phase) ** 2).astype(np.float32)
        self._fade_out = (1.0 - self._fade_in).astype(np.float32)
        self._tail = np.zeros(crossfade, dtype=np.float32)
        self.last_offset = 0

    def delay(self) -> int:
        """Nominal delay in samples (the offset search makes the true one vary by up to ``search``)."""
        return self.crossfade + self.search

    def process(self, rendered: np.ndarray) -> np.ndarray:
        expected = self.block + self.crossfade + self.search
        if len(rendered) != expected:
            raise ValueError(f"SOLA expects {expected} rendered samples, got {len(rendered)}")
        if self.crossfade == 0:
            return rendered[self.search : self.search + self.block].astype(np.float32, copy=True)
        offset = self._best_offset(rendered)
        out = rendered[offset : offset + self.block].astype(np.float32, copy=True)
        out[: self.crossfade] = out[: self.crossfade] * self._fade_in + self._tail * self._fade_out
        self._tail = rendered[offset + self.block : offset + self.block + self.crossfade].astype(np.float32)
        self.last_offset = offset
        return out

    def _best_offset(self, rendered: np.ndarray) -> int:
        if self.search == 0 or not self._tail.any():
            return 0
        region = rendered[: self.search + self.crossfade].astype(np.float64)
        corr = np.correlate(region, self._tail.astype(np.float64), mode="valid")
        energy = np.convolve(region**2, np.ones(self.crossfade), mode="valid")
        return int(np.argmax(corr / np.sqrt(energy + 1e-8)))
