"""RVC's waveform decoder: HiFi-GAN, with an NSF sine source for pitch models.

Module and parameter names follow RVC's ``GeneratorNSF`` / ``Generator`` so that the
WebUI's state dict loads strictly (after weight norm is folded, see ``synthesizer``).
Randomness is explicit: callers pass the source noise (``[B, 1, frames * hop]``) and the
initial sine phase, so a render is a pure function of its inputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Decoder", "sine_phase_at", "sine_source"]

LRELU_SLOPE = 0.1
SINE_AMP = 0.1
NOISE_STD = 0.003


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock1(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_padding(kernel))
                                    for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d))
                                   for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            x = x + c(F.leaky_relu(x, LRELU_SLOPE))
        return x


def sine_source(f0: torch.Tensor, hop: int, sample_rate: int, noise: torch.Tensor,
                phase0: torch.Tensor | None = None) -> torch.Tensor:
    """The NSF excitation before its 1x1 merge: ``[B, T] Hz -> [B, T * hop, 1]``.

    Phase advances by ``f0 / sample_rate`` cycles per sample, constant within a 10 ms
    frame; voiced samples carry a 0.1-amplitude sine plus 0.003 noise, unvoiced ones
    noise of amplitude 0.1 / 3 (RVC's ``SineGen`` with ``harmonic_num=0``).
    ``noise`` is standard normal ``[B, 1, T * hop]``; ``phase0`` (cycles, ``[B]``) the
    phase at the first sample (RVC: 0).
    """
    b, t = f0.shape
    step = f0.float() / sample_rate  # cycles per sample, per frame
    frame_advance = torch.fmod(step * hop, 1.0)
    start = torch.cumsum(frame_advance, dim=1) - frame_advance  # phase at each frame's first sample
    if phase0 is not None:
        start = start + phase0.float()[:, None]
    k = torch.arange(1, hop + 1, device=f0.device, dtype=torch.float32)
    phase = torch.fmod(start, 1.0)[:, :, None] + step[:, :, None] * k  # [B, T, hop]
    sine = SINE_AMP * torch.sin(2 * math.pi * phase)
    uv = (f0 > 0).to(sine.dtype)[:, :, None]
    noise_amp = uv * NOISE_STD + (1 - uv) * (SINE_AMP / 3)
    out = sine * uv + noise_amp * noise.reshape(b, t, hop).to(sine.dtype)
    return out.reshape(b, t * hop, 1)


class SourceModule(nn.Module):
    """Merges the sine source with a 1x1 linear layer and tanh (RVC ``SourceModuleHnNSF``)."""

    def __init__(self) -> None:
        super().__init__()
        self.l_linear = nn.Linear(1, 1)


class Decoder(nn.Module):
    """HiFi-GAN generator; with ``nsf`` the NSF variant conditioned on frame-rate f0 (Hz)."""

    def __init__(self, in_channels: int, resblock: str, resblock_kernel_sizes: tuple[int, ...],
                 resblock_dilation_sizes: tuple[tuple[int, ...], ...], upsample_rates: tuple[int, ...],
                 upsample_initial_channel: int, upsample_kernel_sizes: tuple[int, ...], gin_channels: int,
                 sample_rate: int, *, nsf: bool) -> None:
        super().__init__()
        self.nsf, self.sample_rate = nsf, sample_rate
        self.hop = math.prod(upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)
        block = ResBlock1 if resblock == "1" else ResBlock2
        if nsf:
            self.m_source = SourceModule()
            self.noise_convs = nn.ModuleList()
        self.conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            ch = upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(2 * ch, ch, k, u, padding=(k - u) // 2))
            if nsf:
                stride = math.prod(upsample_rates[i + 1:])
                self.noise_convs.append(nn.Conv1d(1, ch, stride * 2, stride=stride, padding=stride // 2)
                                        if i + 1 < len(upsample_rates) else nn.Conv1d(1, ch, 1))
            for kernel, dilations in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(ch, kernel, dilations))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor | None, f0: torch.Tensor | None = None,
                noise: torch.Tensor | None = None, phase0: torch.Tensor | None = None,
                n_res: int | None = None) -> torch.Tensor:
        """``x [B, C, T]`` latent, ``f0 [B, T]`` Hz -> audio ``[B, 1, T * hop]`` (``n_res * hop`` if given)."""
        source = None
        if self.nsf:
            if f0 is None or noise is None:
                raise ValueError("an NSF decoder needs f0 and source noise")
            excitation = sine_source(f0, self.hop, self.sample_rate, noise, phase0)
            source = torch.tanh(self.m_source.l_linear(excitation.to(x.dtype))).transpose(1, 2)
            if n_res is not None and n_res * self.hop != source.shape[-1]:
                source = F.interpolate(source, size=n_res * self.hop, mode="linear")
        if n_res is not None and n_res != x.shape[-1]:
            x = F.interpolate(x, size=n_res, mode="linear")
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x = x + self.noise_convs[i](source)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def sine_phase_at(f0: torch.Tensor, frame: int, hop: int, sample_rate: int) -> torch.Tensor:
    """Sine phase (cycles, ``[B]``) reached at ``frame`` when the source starts at frame 0 with phase 0."""
    advance = torch.fmod(f0[:, :frame].double() / sample_rate * hop, 1.0)
    return torch.fmod(advance.sum(dim=1), 1.0).float()
