"""RVC's normalising flow (VITS ``ResidualCouplingBlock``), run in reverse at inference.

Four mean-only affine coupling layers, each followed by a channel flip. Every coupling
layer is a WaveNet stack of ``n_layers`` convolutions of width ``kernel_size``, so the
whole flow sees ``4 * n_layers * (kernel_size - 1) / 2`` frames either side (24 for RVC):
that is why RVC gives the flow 24 frames of left context when it skips the head.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Flow", "WaveNet"]


class WaveNet(nn.Module):
    """Gated dilated convolutions with a global condition (VITS ``modules.WN``); weights already folded."""

    def __init__(self, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int) -> None:
        super().__init__()
        self.hidden, self.n_layers = hidden, n_layers
        if gin_channels:
            self.cond_layer = nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation,
                                            padding=(kernel_size * dilation - dilation) // 2))
            self.res_skip_layers.append(nn.Conv1d(hidden, 2 * hidden if i < n_layers - 1 else hidden, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        output = torch.zeros_like(x)
        cond = self.cond_layer(g) if g is not None else None
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            x_in = in_layer(x)
            if cond is not None:
                x_in = x_in + cond[:, 2 * i * self.hidden:2 * (i + 1) * self.hidden]
            acts = torch.tanh(x_in[:, :self.hidden]) * torch.sigmoid(x_in[:, self.hidden:])
            rs = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + rs[:, :self.hidden]) * x_mask
                output = output + rs[:, self.hidden:]
            else:
                output = output + rs
        return output * x_mask


class CouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half of the channels is shifted by a function of the first."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int) -> None:
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        x0, x1 = x[:, :self.half], x[:, self.half:]
        h = self.enc(self.pre(x0) * x_mask, x_mask, g)
        mean = self.post(h) * x_mask
        return torch.cat([x0, (x1 - mean) * x_mask], 1)


class Flip(nn.Module):
    """Reverse the channel order (no parameters; keeps RVC's module indices)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flip(x, [1])


class Flow(nn.Module):
    """``flows`` alternates coupling layers (even indices) and flips (odd indices), as in RVC."""

    def __init__(self, channels: int, hidden: int, kernel_size: int = 5, dilation_rate: int = 1, n_layers: int = 3,
                 n_flows: int = 4, gin_channels: int = 0) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(CouplingLayer(channels, hidden, kernel_size, dilation_rate, n_layers, gin_channels))
            self.flows.append(Flip())

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        for flow in reversed(self.flows):
            x = flow(x) if isinstance(flow, Flip) else flow.reverse(x, x_mask, g)
        return x
