"""Pitch for RVC: f0 at 100 frames/s from 16 kHz audio, and RVC's coarse (1..255) pitch code.

Frame ``i`` of an ``n``-sample input is centred on sample ``160 * i``; there are
``n // 160 + 1`` frames (the framing RMVPE, FCPE and RVC's other trackers use).
:class:`YinTracker` needs no weights: YIN's cumulative-mean-normalised difference
over a 25 ms window and lags up to 20 ms (50 Hz) of a 1.5 kHz low-passed copy, computed
with FFTs, batched. Its frames only look 392 samples either side, fewer than the 3 frames
(480 samples) RVC's streaming cache drops at each segment edge, so streaming f0 equals
one-shot f0.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["F0_MAX", "F0_MIN", "HOP", "PitchTracker", "YinTracker", "coarse_pitch", "frame_count"]

HOP = 160  # samples at 16 kHz per frame
F0_MIN, F0_MAX = 50.0, 1100.0
_MEL_MIN = 1127.0 * math.log(1.0 + F0_MIN / 700.0)
_MEL_MAX = 1127.0 * math.log(1.0 + F0_MAX / 700.0)


def frame_count(samples: int) -> int:
    return samples // HOP + 1


class PitchTracker(Protocol):
    """Batched f0 estimation: ``[B, N] float32 at 16 kHz -> [B, N // 160 + 1]`` Hz, 0 = unvoiced."""

    name: str
    #: segment lengths must be of the form ``quantum * k - 160`` (RMVPE: 5120); 1 for any length
    segment_quantum: int

    def __call__(self, audio: torch.Tensor) -> torch.Tensor: ...


def coarse_pitch(f0: torch.Tensor) -> torch.Tensor:
    """RVC's pitch code: mel-scaled f0 mapped so 50 Hz -> 1 and 1100 Hz -> 255; unvoiced -> 1 (int64)."""
    mel = 1127.0 * torch.log1p(f0 / 700.0)
    mel = torch.where(mel > 0, (mel - _MEL_MIN) * 254.0 / (_MEL_MAX - _MEL_MIN) + 1.0, mel)
    return torch.round(mel.clamp(1.0, 255.0)).long()


class YinTracker:
    """YIN on 16 kHz audio, 10 ms hop; no weights.

    Parameters
    ----------
    threshold : float
        Aperiodicity (CMND minimum) above which a frame is unvoiced.
    silence_db : float
        Frames whose RMS is below this (dBFS) are unvoiced.
    """

    name = "yin"
    segment_quantum = 1
    window = 400  # integration window, samples
    max_lag = int(16000 / F0_MIN)  # 320
    min_lag = int(16000 / F0_MAX)  # 14

    lowpass_taps = 65  # windowed-sinc low-pass before YIN: formants above it cannot win the first dip

    def __init__(self, *, threshold: float = 0.1, voicing_threshold: float = 0.3, silence_db: float = -50.0,
                 lowpass_hz: float = 1500.0) -> None:
        self.threshold, self.voicing_threshold = threshold, voicing_threshold
        self.silence = 10.0 ** (silence_db / 20.0)
        self.span = self.window + self.max_lag  # samples each frame reads
        self.n_fft = 1 << (self.span - 1).bit_length()
        t = np.arange(self.lowpass_taps) - self.lowpass_taps // 2
        taps = 2 * lowpass_hz / 16000 * np.sinc(2 * lowpass_hz / 16000 * t) * np.hamming(self.lowpass_taps)
        self._lowpass = torch.tensor(taps / taps.sum(), dtype=torch.float32).view(1, 1, -1)

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        audio = F.conv1d(audio.float()[:, None], self._lowpass.to(audio.device), padding=self.lowpass_taps // 2)[:, 0]
        b, n = audio.shape
        frames = frame_count(n)
        half = self.span // 2
        padded = F.pad(audio, (half, half + HOP))
        seg = padded.unfold(1, self.span, HOP)[:, :frames]  # [B, frames, span], centred on 160 * i
        w, lag = self.window, self.max_lag
        spec = torch.fft.rfft(seg, self.n_fft)
        head = torch.fft.rfft(seg[..., :w], self.n_fft)
        corr = torch.fft.irfft(spec * head.conj(), self.n_fft)[..., : lag + 1]  # sum_j x[j] x[j + tau], j < w
        sq = torch.cumsum(F.pad(seg * seg, (1, 0)), dim=-1)
        e0 = sq[..., w:w + 1] - sq[..., :1]
        taus = torch.arange(lag + 1, device=audio.device)
        e_tau = sq[..., taus + w] - sq[..., taus]
        diff = (e0 + e_tau - 2.0 * corr).clamp_min(0.0)
        cum = torch.cumsum(diff[..., 1:], dim=-1)
        cmnd = diff[..., 1:] * torch.arange(1, lag + 1, device=audio.device) / cum.clamp_min(1e-12)
        cmnd = torch.cat([torch.ones_like(cmnd[..., :1]), cmnd], dim=-1)  # index = lag
        cmnd[..., : self.min_lag] = 2.0
        f0 = self._pick(cmnd)
        rms = torch.sqrt(e0[..., 0] / w)
        return torch.where(rms > self.silence, f0, torch.zeros_like(f0))

    def _pick(self, cmnd: torch.Tensor) -> torch.Tensor:
        """First dip below ``threshold`` (its local minimum), else the global minimum if below
        ``voicing_threshold``, else unvoiced; parabolic refinement."""
        lag = cmnd.shape[-1] - 1
        below = cmnd < self.threshold
        # walk to the local minimum that follows the first crossing
        first = torch.where(below.any(-1), below.float().argmax(-1), cmnd.argmin(-1))
        idx = first.clone()
        for _ in range(self.max_lag):
            nxt = (idx + 1).clamp(max=lag)
            better = (cmnd.gather(-1, nxt[..., None])[..., 0] < cmnd.gather(-1, idx[..., None])[..., 0]) & (idx < lag)
            if not better.any():
                break
            idx = torch.where(better, nxt, idx)
        left = cmnd.gather(-1, (idx - 1).clamp(min=0)[..., None])[..., 0]
        mid = cmnd.gather(-1, idx[..., None])[..., 0]
        right = cmnd.gather(-1, (idx + 1).clamp(max=lag)[..., None])[..., 0]
        denom = left - 2.0 * mid + right
        shift = torch.where(denom.abs() > 1e-9, 0.5 * (left - right) / denom, torch.zeros_like(denom)).clamp(-1, 1)
        period = idx.float() + shift
        voiced = (mid < self.voicing_threshold) & (idx < lag) & (idx >= self.min_lag)
        return torch.where(voiced, 16000.0 / period.clamp_min(1.0), torch.zeros_like(period))


def f0_to_numpy(f0: torch.Tensor) -> np.ndarray:
    return f0.detach().cpu().numpy().astype(np.float32)
