"""RVC's synthesizer (``SynthesizerTrnMs256NSFsid``, ``...768...`` and the ``_nono`` variants).

One class covers the four: ``content_dim`` 256 (v1) or 768 (v2), ``f0`` True (NSF decoder,
pitch embedding) or False. :meth:`Synthesizer.infer` is RVC's streaming ``infer``: the
prior encoder sees every frame, the flow gets 24 frames of left context before
``skip_head``, and the decoder renders only ``return_length`` frames (plus
``decoder_margin`` extra frames on the left that are rendered and dropped, to push the
decoder's left edge out of the returned audio). All noise is explicit (:class:`SynthNoise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rtvc.voices.rvc.config import SynthConfig
from rtvc.voices.rvc.decoder import Decoder
from rtvc.voices.rvc.flow import Flow
from rtvc.voices.rvc.text_encoder import TextEncoder

__all__ = ["FLOW_CONTEXT_FRAMES", "NOISE_SCALE", "SynthNoise", "Synthesizer"]

FLOW_CONTEXT_FRAMES = 24  # 4 couplings x 3 layers x (5 - 1) / 2: the flow's one-sided receptive field
NOISE_SCALE = 0.66666  # RVC's sampling temperature for the prior


@dataclass(slots=True)
class SynthNoise:
    """Standard-normal noise for one render.

    ``prior``: ``[B, inter_channels, frames]`` covering window frames ``[prior_start, prior_start + frames)``;
    ``source``: ``[B, 1, frames * hop]`` covering decoded frames from ``source_start``.
    """

    prior: torch.Tensor
    source: torch.Tensor | None
    prior_start: int = 0
    source_start: int = 0

    @classmethod
    def draw(cls, batch: int, channels: int, frames: int, hop: int, *, nsf: bool,
             generator: torch.Generator | None = None, device: torch.device | str = "cpu",
             dtype: torch.dtype = torch.float32) -> SynthNoise:
        """Noise for a whole window of ``frames`` frames (slices of it serve any trimmed render)."""
        prior = torch.randn(batch, channels, frames, generator=generator, device=device, dtype=dtype)
        source = torch.randn(batch, 1, frames * hop, generator=generator, device=device, dtype=dtype) if nsf else None
        return cls(prior, source)


class Synthesizer(nn.Module):
    """The inference half of RVC's generator (no posterior encoder)."""

    def __init__(self, config: SynthConfig, *, content_dim: int, f0: bool) -> None:
        super().__init__()
        c = config
        self.config, self.content_dim, self.f0 = c, content_dim, f0
        self.hop = c.hop
        self.enc_p = TextEncoder(content_dim, c.inter_channels, c.hidden_channels, c.filter_channels, c.n_heads,
                                 c.n_layers, c.kernel_size, f0=f0)
        self.dec = Decoder(c.inter_channels, c.resblock, c.resblock_kernel_sizes, c.resblock_dilation_sizes,
                           c.upsample_rates, c.upsample_initial_channel, c.upsample_kernel_sizes, c.gin_channels,
                           c.sample_rate, nsf=f0)
        self.flow = Flow(c.inter_channels, c.hidden_channels, gin_channels=c.gin_channels)
        self.emb_g = nn.Embedding(c.spk_embed_dim, c.gin_channels)

    def infer(self, phone: torch.Tensor, lengths: torch.Tensor, pitch: torch.Tensor | None,
              pitchf: torch.Tensor | None, sid: torch.Tensor, noise: SynthNoise, *, skip_head: int = 0,
              return_length: int | None = None, return_length2: int | None = None, decoder_margin: int = 0,
              phase0: torch.Tensor | None = None) -> torch.Tensor:
        """Render audio for window frames ``[skip_head, skip_head + return_length)``.

        Parameters
        ----------
        phone : [B, T, content_dim] content features at 100 frames/s
        lengths : [B] int64 valid frames (RVC's ``phone_lengths``)
        pitch : [B, T] int64 coarse pitch 1..255 (pitch models) or None
        pitchf : [B, T] float f0 in Hz (0 = unvoiced) or None
        sid : [B] int64 speaker ids
        noise : SynthNoise, drawn for the whole window (see :meth:`SynthNoise.draw`)
        skip_head, return_length : frames to skip / render (default: render everything)
        return_length2 : frames to actually decode and stretch to (formant shift); default return_length
        decoder_margin : extra frames decoded left of ``skip_head`` and dropped
        phase0 : [B] sine phase (cycles) at the first decoded frame

        Returns
        -------
        torch.Tensor [B, 1, return_length2 * hop]
        """
        total = phone.shape[1]
        if return_length is None:
            return_length = total - skip_head
        if not (0 <= skip_head and return_length > 0 and skip_head + return_length <= total):
            raise ValueError(f"cannot render frames [{skip_head}, {skip_head + return_length}) of {total}")
        margin = min(decoder_margin, skip_head)
        dec_start = skip_head - margin
        flow_head = max(dec_start - FLOW_CONTEXT_FRAMES, 0)
        g = self.emb_g(sid).unsqueeze(-1)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.f0 else None, lengths, flow_head)
        prior = noise.prior[:, :, flow_head - noise.prior_start:flow_head - noise.prior_start + m_p.shape[2]]
        z_p = (m_p + torch.exp(logs_p) * prior.to(m_p.dtype) * NOISE_SCALE) * x_mask
        z = self.flow.reverse(z_p, x_mask, g)
        local = dec_start - flow_head
        n_dec = margin + return_length
        z = (z * x_mask)[:, :, local:local + n_dec]
        n_res = None
        if return_length2 is not None and return_length2 != return_length:
            n_res = round(n_dec * return_length2 / return_length)
        f0 = source = None
        if self.f0:
            if pitchf is None:
                raise ValueError("a pitch model needs pitchf")
            f0 = pitchf[:, dec_start:dec_start + n_dec]
            if noise.source is None:
                raise ValueError("a pitch model needs source noise")
            at = (dec_start - noise.source_start) * self.hop
            source = noise.source[:, :, at:at + n_dec * self.hop]
        audio = self.dec(z, g, f0, source, phase0, n_res)
        drop = audio.shape[-1] - (return_length2 or return_length) * self.hop
        return audio[:, :, drop:] if margin else audio

    def receptive_margin(self) -> int:
        """Frames of left context after which the decoder's zero padding no longer reaches the output."""
        c = self.config
        frames = 3.0  # conv_pre, kernel 7
        rate = 1
        for u, k in zip(c.upsample_rates, c.upsample_kernel_sizes, strict=True):
            rate *= u
            frames += k / rate  # transposed conv reach, in frames
            reach = max(sum((kk - 1) // 2 * (d + (1 if c.resblock == "1" else 0)) for d in ds)
                        for kk, ds in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes, strict=True))
            frames += reach / rate
        return int(frames) + 1 + (3 // c.hop + 1)  # conv_post
