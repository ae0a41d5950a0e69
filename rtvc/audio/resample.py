"""Streaming polyphase resampling with a fixed, exact delay.

:class:`ResampleStream` is a windowed-sinc polyphase FIR. Output sample ``j``
sits at input time ``j * in_rate / out_rate - delay_in`` where ``delay_in`` is a
whole number of input samples, so the delay is exact and the output count is
exact: after ``n`` input samples exactly ``ceil(n * out_rate / in_rate)``
samples have come out, whatever the chunking. Each output sample is the same
dot product whatever the chunking, so chunked output equals one-shot output
bit for bit.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import ceil, gcd

import numpy as np

from rtvc.errors import AudioFormatError

__all__ = ["ResampleStream", "resample"]


@lru_cache(maxsize=64)
def _filter_bank(up: int, down: int, zero_crossings: int, rolloff: float, beta: float) -> tuple[np.ndarray, int]:
    """Phase filters ``[up, taps]`` in input-sample units and the half-width in input samples."""
    cutoff = 0.5 * min(1.0, up / down) * rolloff  # cycles per input sample
    half = ceil(zero_crossings / (2.0 * cutoff))
    taps = 2 * half
    phases = np.arange(up)[:, None] / up
    # tap m of phase φ multiplies x[b - half + 1 + m]; its distance from the output instant:
    t = phases + (half - 1) - np.arange(taps)[None, :]
    inside = np.abs(t) < half
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (t / half) ** 2, 0.0, 1.0))) / np.i0(beta)
    kernel = 2 * cutoff * np.sinc(2 * cutoff * t) * window * inside
    kernel /= kernel.sum(axis=1, keepdims=True)  # unity DC gain on every phase
    return np.ascontiguousarray(kernel, dtype=np.float32), half


class ResampleStream:
    """Resample a mono float32 stream from ``in_rate`` to ``out_rate`` Hz.

    Parameters
    ----------
    in_rate, out_rate : int > 0 [Hz]
    zero_crossings : int
        Sinc zero crossings on each side at the lower rate; sets quality and delay.
    """

    def __init__(self, in_rate: int, out_rate: int, *, zero_crossings: int = 16, rolloff: float = 0.92,
                 beta: float = 8.6) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise AudioFormatError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        g = gcd(in_rate, out_rate)
        self.in_rate, self.out_rate = in_rate, out_rate
        self.up, self.down = out_rate // g, in_rate // g
        self.identity = self.up == self.down
        if self.identity:
            self._bank, self._half = np.ones((1, 1), np.float32), 0
        else:
            self._bank, self._half = _filter_bank(self.up, self.down, zero_crossings, rolloff, beta)
        self._pad = 2 * self._half  # zeros standing for input before the stream began
        self.reset()

    def reset(self) -> None:
        """Ready for a fresh signal, same configuration."""
        self._buf = np.zeros(self._pad, dtype=np.float32)
        self._buf_start = -self._pad  # absolute input index of _buf[0]
        self._n_in = 0
        self._j = 0
        self._done = False

    @property
    def delay_in(self) -> int:
        """Delay in input samples (whole)."""
        return self._half

    def delay(self) -> Fraction:
        """Delay in output samples (exact; may be fractional)."""
        return Fraction(self._half * self.up, self.down)

    def output_count(self, n_in: int) -> int:
        """Output samples produced once ``n_in`` input samples went in (not flushed)."""
        return -(-n_in * self.up // self.down)

    def process(self, x: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Push ``x`` (float32 ``(n,)``); return every output sample now computable.

        With ``last=True`` the delayed tail is flushed: in total
        ``ceil((n + delay_in) * out_rate / in_rate)`` samples come out.
        """
        if self._done:
            raise RuntimeError("ResampleStream already flushed with last=True; call reset()")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 1:
            raise AudioFormatError(f"ResampleStream takes mono (n,) audio, got shape {x.shape}")
        if self.identity:
            self._done = last
            self._n_in += len(x)
            self._j = self._n_in
            return x.copy()
        n_real = self._n_in + len(x)
        if last:
            self._done = True
            x = np.concatenate([x, np.zeros(2 * self._half, np.float32)])
        self._buf = np.concatenate([self._buf, x])
        self._n_in += len(x)
        j_end = self.output_count(n_real + self._half) if last else self.output_count(self._n_in)
        y = self._compute(self._j, j_end)
        self._j = j_end
        # keep only what the next output still needs
        keep_from = self._base(j_end) - self._half + 1 - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return y

    def _base(self, j: int | np.ndarray) -> int | np.ndarray:
        return (j * self.down) // self.up - self._half

    def _compute(self, j0: int, j1: int) -> np.ndarray:
        if j1 <= j0:
            return np.zeros(0, np.float32)
        j = np.arange(j0, j1, dtype=np.int64)
        phase = (j * self.down) % self.up
        start = self._base(j) - self._half + 1 - self._buf_start
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, 2 * self._half)[start]
        return (windows * self._bank[phase]).sum(axis=1, dtype=np.float32)


def resample(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot resampling with the delay removed: output length ``ceil(n * out_rate / in_rate)``."""
    stream = ResampleStream(in_rate, out_rate)
    y = stream.process(np.asarray(x, np.float32), last=True)
    skip = int(stream.delay())  # delay_in * up / down is whole when down divides it; else nearest below
    return y[skip : skip + stream.output_count(len(x))]
