"""RVC's prior ("text") encoder: content features + coarse pitch -> mean and log-scale of the latent.

Parameter names follow RVC's ``TextEncoder256/768`` and VITS' ``attentions.Encoder`` so the
WebUI's state dict loads strictly. Relative-position attention is computed with a banded
gather instead of VITS' pad-and-reshape trick; the result is the same.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ChannelLayerNorm", "TextEncoder"]


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, T]`` (VITS' ``gamma``/``beta`` naming)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels, self.eps = channels, eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps).transpose(1, -1)


class RelativeAttention(nn.Module):
    """Multi-head self-attention with relative position keys/values within ``±window`` frames."""

    def __init__(self, channels: int, n_heads: int, window: int = 10) -> None:
        super().__init__()
        self.n_heads, self.window = n_heads, window
        self.k_channels = channels // n_heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * window + 1, self.k_channels))
        self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * window + 1, self.k_channels))

    def _band(self, length: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """For each query i and relative slot r: key index i + r - window, clamped, and whether it exists."""
        i = torch.arange(length, device=device)[:, None]
        r = torch.arange(2 * self.window + 1, device=device)[None, :]
        j = i + r - self.window
        valid = (j >= 0) & (j < length)
        # inverse map for scores: slot of key j for query i (clamped), and whether |j - i| <= window
        jj = torch.arange(length, device=device)[None, :]
        slot = jj - i + self.window
        near = (slot >= 0) & (slot <= 2 * self.window)
        return j.clamp(0, length - 1), valid, torch.where(near, slot, torch.zeros_like(slot)), near

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        h, d = self.n_heads, self.k_channels
        q = self.conv_q(x).view(b, h, d, t).transpose(2, 3) / math.sqrt(d)
        k = self.conv_k(x).view(b, h, d, t).transpose(2, 3)
        v = self.conv_v(x).view(b, h, d, t).transpose(2, 3)
        key_index, valid, slot, near = self._band(t, x.device)
        scores = q @ k.transpose(-2, -1)  # [b, h, t, t]
        rel_logits = q @ self.emb_rel_k.transpose(-2, -1)  # [b, h, t, 2w+1]
        local = torch.gather(rel_logits, 3, slot.expand(b, h, t, t)) * near
        scores = (scores + local).masked_fill(mask == 0, -1e4)
        p = F.softmax(scores, dim=-1)
        out = p @ v
        band = torch.gather(p, 3, key_index.expand(b, h, t, -1)) * valid  # [b, h, t, 2w+1]
        out = out + band @ self.emb_rel_v
        return self.conv_o(out.transpose(2, 3).reshape(b, c, t))


class FeedForward(nn.Module):
    """Two same-padded convolutions with ReLU (VITS' ``FFN``)."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(F.pad(x * x_mask, self.pad)))
        return self.conv_2(F.pad(x * x_mask, self.pad)) * x_mask


class Encoder(nn.Module):
    """Post-LayerNorm transformer stack."""

    def __init__(self, channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int) -> None:
        super().__init__()
        self.attn_layers = nn.ModuleList(RelativeAttention(channels, n_heads) for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(FeedForward(channels, filter_channels, kernel_size) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        layers = zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True)
        for attn, norm1, ffn, norm2 in layers:
            x = norm1(x + attn(x, attn_mask))
            x = norm2(x + ffn(x, x_mask))
        return x * x_mask


class TextEncoder(nn.Module):
    """``phone [B, T, in_dim]`` (+ coarse ``pitch [B, T]``) -> ``m, logs [B, out, T - skip]``, ``x_mask``."""

    def __init__(self, in_dim: int, out_channels: int, hidden_channels: int, filter_channels: int, n_heads: int,
                 n_layers: int, kernel_size: int, *, f0: bool) -> None:
        super().__init__()
        self.out_channels, self.hidden_channels = out_channels, hidden_channels
        self.emb_phone = nn.Linear(in_dim, hidden_channels)
        if f0:
            self.emb_pitch = nn.Embedding(256, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, phone: torch.Tensor, pitch: torch.Tensor | None, lengths: torch.Tensor,
                skip: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden_channels), 0.1).transpose(1, -1)
        x_mask = (torch.arange(x.shape[2], device=x.device)[None, :] < lengths[:, None]).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * x_mask, x_mask)
        if skip:
            x, x_mask = x[:, :, skip:], x_mask[:, :, skip:]
        m, logs = torch.split(self.proj(x) * x_mask, self.out_channels, dim=1)
        return m, logs, x_mask
