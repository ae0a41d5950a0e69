"""Synthetic test signals for the voice tests (deterministic)."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

__all__ = ["render", "vowel"]

VOWEL_FORMANTS_HZ = ((650.0, 80.0), (1100.0, 90.0), (2500.0, 120.0))


def vowel(f0_hz: float, rate: int, seconds: float, *, top_hz: float = 4000.0, vibrato: float = 0.0,
          amplitude: float = 0.4) -> np.ndarray:
    """A band-limited vowel: harmonics of ``f0_hz`` below ``top_hz`` through three formant resonators."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = f0_hz * (1.0 + vibrato * np.sin(2 * np.pi * 3.0 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    y = np.zeros_like(t)
    for h in range(1, int(min(top_hz, 0.45 * rate) / (f0_hz * (1 + vibrato))) + 1):
        y += np.cos(h * phase) / h
    for centre, bandwidth in VOWEL_FORMANTS_HZ:
        if centre < 0.45 * rate:
            r = np.exp(-np.pi * bandwidth / rate)
            y = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * centre / rate), r * r], y)
    return (amplitude * y / np.abs(y).max()).astype(np.float32)


def render(voice, x: np.ndarray, rate: int, block: int, params: dict | None = None,
           changes: dict[int, dict] | None = None) -> tuple[np.ndarray, int]:
    """Stream ``x`` (plus ``delay`` zeros) through a fresh stream in ``block``-sample blocks.

    ``changes`` maps a block index to parameters applied (via ``update``) before that block.
    Returns the output aligned with the input and the stream delay.
    """
    stream = voice.open(sample_rate=rate, block=block, params=voice.check_params(params or {}))
    delay = stream.layout.delay
    n_blocks = -(-(len(x) + delay) // block)
    padded = np.zeros(n_blocks * block, np.float32)
    padded[: len(x)] = x
    out = []
    for k in range(n_blocks):
        if changes and k in changes:
            stream.update(voice.check_params(changes[k], partial=True))
        y = stream.process(padded[k * block : (k + 1) * block])
        assert y.shape == (block,) and y.dtype == np.float32
        out.append(y)
    return np.concatenate(out)[delay : delay + len(x)], delay
