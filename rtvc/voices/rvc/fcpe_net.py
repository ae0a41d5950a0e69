"""FCPE (Fast Context-based Pitch Estimation) as the ``torchfcpe`` 0.0.4 wheel ships it, in plain torch.

The bundled model (``assets/fcpe_c_v001.pt``, ``CFNaiveMelPE`` with ``conv_only=True``) is:

* mel front end: 16 kHz, n_fft = win = 1024, hop 160, 128 bins 0-8000 Hz on the Slaney mel
  scale with Slaney area normalisation (librosa's defaults); the signal is padded 432 samples
  each side (reflect), framed without centring, ``|STFT| = sqrt(re^2 + im^2 + 1e-9)``,
  ``log(clamp(mel, 1e-5))``, last frame repeated so there are ``n // 160 + 1`` frames;
* ``input_stack``: Conv1d(128, 512, 3) -> GroupNorm(4, 512) -> LeakyReLU -> Conv1d(512, 512, 3);
* 6 residual conformer convolution modules: LayerNorm -> 1x1 conv to 2048 -> GLU ->
  depthwise conv k=31 -> SiLU -> 1x1 conv to 512 (each layer also carries an unused
  LayerNorm, kept so the state dict loads strictly);
* LayerNorm -> weight-normed Linear(512, 360) -> sigmoid: salience over 360 cent bins;
* ``local_argmax`` decoding: salience-weighted mean of the cents of the 9 bins around the
  peak (indices clamped to the table), unvoiced (0 Hz) when the peak is at most ``threshold``.

Receptive field: each output frame sees +-92 frames through the convolutions (1 + 1 + 6 x 15),
and the GroupNorm's statistics are taken over every frame of the input, so every f0 value
depends on the whole segment it was computed from.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["FcpeMel", "FcpeNet", "slaney_mel_filterbank"]

_SLANEY_F_SP = 200.0 / 3.0  # Hz per mel below 1 kHz
_SLANEY_LOG_STEP = np.log(6.4) / 27.0  # mels are logarithmic above 1 kHz


def _hz_to_slaney_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    lin = f / _SLANEY_F_SP
    log = 1000.0 / _SLANEY_F_SP + np.log(np.maximum(f, 1e-10) / 1000.0) / _SLANEY_LOG_STEP
    return np.where(f >= 1000.0, log, lin)


def _slaney_mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    knee = 1000.0 / _SLANEY_F_SP
    return np.where(m >= knee, 1000.0 * np.exp(_SLANEY_LOG_STEP * (m - knee)), _SLANEY_F_SP * m)


def slaney_mel_filterbank(sr: int = 16000, n_fft: int = 1024, n_mels: int = 128, fmin: float = 0.0,
                          fmax: float = 8000.0) -> np.ndarray:
    """``[n_mels, n_fft // 2 + 1]`` triangles on the Slaney mel scale, area-normalised (librosa's default)."""
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_f = _slaney_mel_to_hz(np.linspace(_hz_to_slaney_mel(fmin), _hz_to_slaney_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.maximum(0.0, np.minimum(-ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


class FcpeMel(nn.Module):
    """``[B, N]`` float at 16 kHz -> log-mel ``[B, N // hop + 1, n_mels]`` (torchfcpe's ``Wav2MelModule``)."""

    def __init__(self, *, sr: int = 16000, n_mels: int = 128, n_fft: int = 1024, win: int = 1024, hop: int = 160,
                 fmin: float = 0.0, fmax: float = 8000.0) -> None:
        super().__init__()
        self.n_fft, self.win, self.hop = n_fft, win, hop
        self.register_buffer("basis", torch.from_numpy(slaney_mel_filterbank(sr, n_fft, n_mels, fmin, fmax)),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(win), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        audio = audio.float()
        n = audio.shape[-1]
        left = (self.win - self.hop) // 2
        right = max((self.win - self.hop + 1) // 2, self.win - n - left)
        mode = "reflect" if right < n else "constant"
        padded = F.pad(audio[:, None], (left, right), mode=mode)[:, 0]
        spec = torch.stft(padded, self.n_fft, hop_length=self.hop, win_length=self.win, window=self.window,
                          center=False, return_complex=True)
        mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
        mel = torch.log(torch.clamp(self.basis @ mag, min=1e-5)).transpose(1, 2)
        frames = n // self.hop + 1
        if mel.shape[1] < frames:  # framing without centring gives one frame fewer: repeat the last
            mel = torch.cat([mel, mel[:, -1:].expand(-1, frames - mel.shape[1], -1)], dim=1)
        return mel[:, :frames]


class _ConvModule(nn.Module):
    """Conformer convolution module; ``net`` indices match torchfcpe's ``nn.Sequential``."""

    def __init__(self, dim: int, kernel: int = 31) -> None:
        super().__init__()
        inner = 2 * dim
        depthwise = nn.Module()
        depthwise.conv = nn.Conv1d(inner, inner, kernel, padding=kernel // 2, groups=inner)
        self.net = nn.ModuleList([nn.LayerNorm(dim), nn.Identity(), nn.Conv1d(dim, 2 * inner, 1), nn.Identity(),
                                  depthwise, nn.Identity(), nn.Conv1d(inner, dim, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net[0](x).transpose(1, 2)
        y = F.glu(self.net[2](y), dim=1)
        y = F.silu(self.net[4].conv(y))
        return self.net[6](y).transpose(1, 2)


class _Layer(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conformer = _ConvModule(dim)
        self.norm = nn.LayerNorm(dim)  # belongs to the attention branch, which conv_only models do not run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conformer(x)


class _WeightNormLinear(nn.Module):
    """``Linear`` stored as ``weight_g [out, 1]`` / ``weight_v [out, in]`` (torch's old weight_norm, dim 0)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(n_out, 1))
        self.weight_v = nn.Parameter(torch.zeros(n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, torch._weight_norm(self.weight_v, self.weight_g, 0), self.bias)


class FcpeNet(nn.Module):
    """``log-mel [B, T, n_mels] -> salience [B, T, out_dims]``; :meth:`decode` turns salience into Hz."""

    def __init__(self, *, n_mels: int = 128, out_dims: int = 360, hidden: int = 512, n_layers: int = 6,
                 f0_min: float = 32.70, f0_max: float = 1975.5) -> None:
        super().__init__()
        self.input_stack = nn.Sequential(nn.Conv1d(n_mels, hidden, 3, padding=1), nn.GroupNorm(4, hidden),
                                         nn.LeakyReLU(), nn.Conv1d(hidden, hidden, 3, padding=1))
        self.net = nn.Module()
        self.net.encoder_layers = nn.ModuleList(_Layer(hidden) for _ in range(n_layers))
        self.norm = nn.LayerNorm(hidden)
        self.output_proj = _WeightNormLinear(hidden, out_dims)
        cents = torch.linspace(1200.0 * np.log2(f0_min / 10.0), 1200.0 * np.log2(f0_max / 10.0), out_dims)
        self.register_buffer("cent_table", cents)
        self.register_buffer("gaussian_blurred_cent_mask", torch.tensor(1200.0 * np.log2(f0_max / 10.0)))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.input_stack(mel.transpose(1, 2)).transpose(1, 2)
        for layer in self.net.encoder_layers:
            x = layer(x)
        return torch.sigmoid(self.output_proj(self.norm(x)))

    def decode(self, salience: torch.Tensor, threshold: float) -> torch.Tensor:
        """``local_argmax``: salience ``[B, T, out_dims]`` -> f0 Hz ``[B, T]``, 0 where the peak <= threshold."""
        salience = salience.float()
        peak, at = salience.max(dim=-1, keepdim=True)
        idx = (at + torch.arange(-4, 5, device=salience.device)).clamp(0, salience.shape[-1] - 1)
        weights = salience.gather(-1, idx)
        cents = (self.cent_table.float()[idx] * weights).sum(-1) / weights.sum(-1)
        f0 = 10.0 * 2.0 ** (cents / 1200.0)
        return torch.where(peak[..., 0] > threshold, f0, torch.zeros_like(f0))
