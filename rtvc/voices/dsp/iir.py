"""IIR filter design and state-keeping filtering, with scipy.signal imported on first use.

``scipy.signal`` takes most of a second to import; the command line lists and
manages voices without ever filtering, so only a stream that filters pays it
(engine processes import it while they start, see :func:`preload`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["butter", "lfilter", "preload"]


def _signal() -> Any:
    import scipy.signal

    return scipy.signal


def preload() -> None:
    """Import scipy.signal now (a server's engine does so before its first session)."""
    _signal()


def butter(order: int, cutoff_hz: float | list[float], *, fs: float, btype: str = "lowpass",
           ) -> tuple[np.ndarray, np.ndarray]:
    """Butterworth ``(b, a)`` coefficients (``scipy.signal.butter``)."""
    return _signal().butter(order, cutoff_hz, btype=btype, fs=fs)


def lfilter(b: np.ndarray, a: np.ndarray, x: np.ndarray, *, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filter ``x`` from state ``zi``; returns ``(y, new state)`` (``scipy.signal.lfilter``)."""
    return _signal().lfilter(b, a, x, zi=zi)
