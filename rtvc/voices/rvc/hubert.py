"""HuBERT / ContentVec content encoder, written against fairseq's parameter names (no fairseq).

Architecture (fairseq ``HubertModel`` with ``extractor_mode="default"``,
``layer_norm_first=False``): 7 bias-free convolutions (the first with a per-channel
GroupNorm) at 320x total stride, LayerNorm, projection to the model width, a grouped
positional convolution with weight norm, LayerNorm, then post-LN transformer layers.
``forward(wave, output_layer)`` stops after ``output_layer`` layers like fairseq's
``extract_features(output_layer=N)``; v1 voices then apply ``final_proj``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ContentEncoder", "HubertConfig"]

DEFAULT_CONV_LAYERS = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


@dataclass(frozen=True, slots=True)
class HubertConfig:
    """What the network needs; read from the checkpoint's config and checked against its tensors."""

    embed_dim: int = 768
    layers: int = 12
    heads: int = 12
    ffn_dim: int = 3072
    conv_layers: tuple[tuple[int, int, int], ...] = DEFAULT_CONV_LAYERS
    conv_pos: int = 128
    conv_pos_groups: int = 16
    final_dim: int = 256  # 0: no final_proj
    layer_norm_eps: float = 1e-5

    @property
    def stride(self) -> int:
        return math.prod(s for _, _, s in self.conv_layers)


class _ConvLayer(nn.Module):
    """``conv_layers.N``: index 0 the convolution, 2 the optional GroupNorm (fairseq's Sequential layout)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, *, norm: bool) -> None:
        super().__init__()
        self.stride, self.channels = stride, cout
        self.add_module("0", nn.Conv1d(cin, cout, kernel, stride=stride, bias=False))
        if norm:
            self.add_module("2", nn.GroupNorm(cout, cout, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = getattr(self, "0")(x)
        if hasattr(self, "2"):
            x = F.group_norm(x.float(), self.channels, getattr(self, "2").weight.float(),
                             getattr(self, "2").bias.float(), 1e-5).to(x.dtype)  # fairseq's Fp32GroupNorm
        return F.gelu(x)


class _FeatureExtractor(nn.Module):
    def __init__(self, conv_layers: tuple[tuple[int, int, int], ...]) -> None:
        super().__init__()
        cin = 1
        layers = []
        for i, (dim, kernel, stride) in enumerate(conv_layers):
            layers.append(_ConvLayer(cin, dim, kernel, stride, norm=i == 0))
            cin = dim
        self.conv_layers = nn.ModuleList(layers)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave.unsqueeze(1)
        for layer in self.conv_layers:
            x = layer(x)
        return x


class _PosConv(nn.Module):
    """``pos_conv.0``: grouped convolution with weight norm over the kernel axis (``dim=2``)."""

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.kernel, self.groups = kernel, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.zeros(dim, dim // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch._weight_norm(self.weight_v, self.weight_g, 2)
        y = F.conv1d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)
        if self.kernel % 2 == 0:
            y = y[:, :, :-1]  # fairseq's SamePad
        return F.gelu(y)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        h = self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, h, c // h).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, eps: float) -> None:
        super().__init__()
        self.self_attn = _Attention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class _Encoder(nn.Module):
    def __init__(self, cfg: HubertConfig) -> None:
        super().__init__()
        self.pos_conv = nn.ModuleList([_PosConv(cfg.embed_dim, cfg.conv_pos, cfg.conv_pos_groups)])
        self.layer_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(_Layer(cfg.embed_dim, cfg.heads, cfg.ffn_dim, cfg.layer_norm_eps)
                                    for _ in range(cfg.layers))


class ContentEncoder(nn.Module):
    """``wave [B, N] at 16 kHz -> features [B, frames, dim]``, frames = ``(N - 400) // 320 + 1``."""

    def __init__(self, cfg: HubertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = _FeatureExtractor(cfg.conv_layers)
        conv_dim = cfg.conv_layers[-1][0]
        self.layer_norm = nn.LayerNorm(conv_dim, eps=cfg.layer_norm_eps)
        self.post_extract_proj = nn.Linear(conv_dim, cfg.embed_dim)
        self.encoder = _Encoder(cfg)
        if cfg.final_dim:
            self.final_proj = nn.Linear(cfg.embed_dim, cfg.final_dim)

    def forward(self, wave: torch.Tensor, output_layer: int | None = None, *, project: bool = False) -> torch.Tensor:
        """Hidden state after ``output_layer`` layers (1-based, default all); ``project`` applies final_proj."""
        layer = len(self.encoder.layers) if output_layer is None else output_layer
        (x,) = self.hidden_states(wave, (layer,))
        return self.project(x) if project else x

    def hidden_states(self, wave: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """One pass up to the deepest of ``layers`` (1-based); the hidden state after each, in order.

        Voices sharing this encoder may need different layers (v1: 9, v2: 12): one batch serves both.
        """
        if not layers or not all(1 <= n <= len(self.encoder.layers) for n in layers):
            raise ValueError(f"output layers must be in 1..{len(self.encoder.layers)}, got {list(layers)}")
        x = self.feature_extractor(wave).transpose(1, 2)
        x = self.post_extract_proj(self.layer_norm(x))
        x = x + self.encoder.pos_conv[0](x.transpose(1, 2)).transpose(1, 2)
        x = self.encoder.layer_norm(x)
        states = {}
        for i, layer in enumerate(self.encoder.layers[:max(layers)], start=1):
            x = layer(x)
            if i in layers:
                states[i] = x
        return [states[n] for n in layers]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``final_proj`` (768 -> 256), which v1 voices apply after layer 9."""
        if not self.cfg.final_dim:
            raise ValueError("this content encoder has no final_proj (v1 voices need one)")
        return self.final_proj(x)

    @staticmethod
    def frames(samples: int) -> int:
        """Output frames for ``samples`` input samples with the standard 400-sample receptive field."""
        return max(0, (samples - 400) // 320 + 1)
