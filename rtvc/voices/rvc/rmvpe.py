"""RMVPE pitch estimator (``rmvpe.pt``): a U-Net + BiGRU over a 128-bin log-mel spectrogram.

Parameter names follow RVC's ``infer/lib/rmvpe.py`` (``E2E(4, 1, (2, 2))``) so the plain
state dict in ``rmvpe.pt`` loads strictly. Mel: 16 kHz, n_fft = win = 1024, hop 160,
30-8000 Hz, HTK mel scale with Slaney area normalisation (librosa's defaults with
``htk=True``), reflect-padded centred frames, ``log(clamp(1e-5))``. Decoding: 360 bins
of 20 cents from 1997.38 cents, weighted average of the 9 bins around the peak,
unvoiced when the peak salience is at most 0.03.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.safeload import check_state_dict, load_torch_file

__all__ = ["Rmvpe", "RmvpeTracker", "load_rmvpe", "mel_filterbank"]

N_MELS, N_CLASSES = 128, 360
N_FFT, HOP = 1024, 160
THRESHOLD = 0.03


def mel_filterbank(sr: int = 16000, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = 30.0,
                   fmax: float = 8000.0) -> np.ndarray:
    """``[n_mels, n_fft // 2 + 1]`` triangular filters on the HTK mel scale, Slaney-normalised."""
    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


class _ConvBlockRes(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
        if cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + (self.shortcut(x) if hasattr(self, "shortcut") else x)


class _ResEncoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, pool: bool, n_blocks: int) -> None:
        super().__init__()
        self.conv = nn.ModuleList([_ConvBlockRes(cin, cout)] + [_ConvBlockRes(cout, cout) for _ in range(n_blocks - 1)])
        self.pool = nn.AvgPool2d(2) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.conv:
            x = block(x)
        return x


class _Encoder(nn.Module):
    def __init__(self, n_layers: int, n_blocks: int, channels: int = 16) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        layers, cin = [], 1
        for _ in range(n_layers):
            layers.append(_ResEncoderBlock(cin, channels, True, n_blocks))
            cin, channels = channels, channels * 2
        self.layers = nn.ModuleList(layers)
        self.out_channels = channels  # twice the last block's width, as RVC computes it

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            x = layer(x)
            skips.append(x)
            x = layer.pool(x)
        return x, skips


class _ResDecoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, n_blocks: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU())
        self.conv2 = nn.ModuleList([_ConvBlockRes(cout * 2, cout)] + [_ConvBlockRes(cout, cout)
                                                                      for _ in range(n_blocks - 1)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class _DeepUnet(nn.Module):
    def __init__(self, n_blocks: int, channels: int, layers: int = 5, inter_layers: int = 4) -> None:
        super().__init__()
        self.encoder = _Encoder(layers, n_blocks, channels)
        top = self.encoder.out_channels
        self.intermediate = nn.Module()
        self.intermediate.layers = nn.ModuleList(
            [_ResEncoderBlock(top // 2, top, False, n_blocks)]
            + [_ResEncoderBlock(top, top, False, n_blocks) for _ in range(inter_layers - 1)])
        self.decoder = nn.Module()
        self.decoder.layers = nn.ModuleList(_ResDecoderBlock(top // 2**i, top // 2 ** (i + 1), n_blocks)
                                            for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        for layer in self.intermediate.layers:
            x = layer(x)
        for i, layer in enumerate(self.decoder.layers):
            x = layer(x, skips[-1 - i])
        return x


class _BiGRU(nn.Module):
    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, num_layers=1, batch_first=True, bidirectional=True)


class Rmvpe(nn.Module):
    """``log-mel [B, 128, T] -> salience [B, T, 360]`` (T a multiple of 32).

    ``rmvpe.pt`` is ``n_blocks=4, channels=16``; smaller settings exist for tests only.
    """

    def __init__(self, n_blocks: int = 4, channels: int = 16) -> None:
        super().__init__()
        self.unet = _DeepUnet(n_blocks, channels)
        self.cnn = nn.Conv2d(channels, 3, 3, padding=1)
        self.fc = nn.Sequential(_BiGRU(3 * N_MELS, 256), nn.Linear(512, N_CLASSES), nn.Dropout(0.25), nn.Sigmoid())
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank()), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        cents = 20.0 * torch.arange(N_CLASSES, dtype=torch.float32) + 1997.3794084376191
        self.register_buffer("cents", F.pad(cents, (4, 4)), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.cnn(self.unet(mel.transpose(-1, -2).unsqueeze(1))).transpose(1, 2).flatten(-2)
        x, _ = self.fc[0].gru(x)
        return torch.sigmoid(self.fc[1](x))

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        # buffers stay float32 even when the network runs in float16 (GPU)
        spec = torch.stft(audio.float(), N_FFT, HOP, N_FFT, self.window.float(), center=True, pad_mode="reflect",
                          return_complex=True).abs()
        return torch.log(torch.clamp(self.mel_basis.float() @ spec, min=1e-5))

    def decode(self, salience: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
        """Salience ``[B, T, 360]`` -> f0 Hz ``[B, T]``."""
        center = salience.argmax(-1) + 4
        padded = F.pad(salience, (4, 4))
        idx = center[..., None] + torch.arange(-4, 5, device=salience.device)
        sal = padded.gather(-1, idx)
        sal = sal.float()
        cents = (sal * self.cents.float()[idx]).sum(-1) / sal.sum(-1).clamp_min(1e-9)
        f0 = 10.0 * 2.0 ** (cents / 1200.0)
        return torch.where(salience.amax(-1) > threshold, f0, torch.zeros_like(f0))


class RmvpeTracker:
    """Batched RMVPE f0: ``[B, N] at 16 kHz -> [B, N // 160 + 1]`` Hz."""

    name = "rmvpe"
    segment_quantum = 5120  # RVC feeds RMVPE 5120 k - 160 samples: 32 k frames

    def __init__(self, model: Rmvpe) -> None:
        self.model = model

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.model.log_mel(audio).to(next(self.model.parameters()).dtype)
        frames = mel.shape[-1]
        pad = 32 * ((frames - 1) // 32 + 1) - frames
        if pad:
            mel = F.pad(mel, (0, pad), mode="reflect" if pad < frames else "replicate")
        salience = self.model(mel)[:, :frames].float()
        return self.model.decode(salience)


def load_rmvpe(path: str | Path) -> Rmvpe:
    """Load ``rmvpe.pt`` (a plain state dict) strictly, checking every shape."""
    path = Path(path)
    source = f"pitch model {path}"
    state = load_torch_file(path, what="pitch model")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{source} is not an RMVPE state dict")
    first = state.get("unet.encoder.layers.0.conv.0.conv.0.weight")
    if first is None or first.dim() != 4:
        raise ModelLoadError(f"{source} is not an RMVPE state dict (no unet.encoder.layers.0 convolution)")
    n_blocks = len({k.split(".")[5] for k in state if k.startswith("unet.encoder.layers.0.conv.")})
    model = Rmvpe(n_blocks=n_blocks, channels=int(first.shape[0]))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_state_dict(state, expected, source=source, what="RMVPE")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return model.eval()
