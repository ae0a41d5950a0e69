"""RVC's ``rms_mix_rate`` and ``protect``: loudness envelope transfer and consonant protection.

``rms_mix_rate`` (RVC realtime GUI, after inference)::

    out *= (rms_in / max(rms_out, 1e-3)) ** (1 - rms_mix_rate)

with RMS over 40 ms frames every 10 ms (librosa's ``feature.rms``: centred, zero-padded),
linearly interpolated to one value per sample (``align_corners=True`` over ``n + 1`` points,
the last dropped). ``rms_mix_rate = 1`` leaves the output alone; 0 gives it the input's
envelope. rtvc measures the input on the 16 kHz signal the model converted (the same
10 ms frames), so the envelope lines up with the render exactly.

``protect`` (RVC WebUI's offline pipeline): on unvoiced frames (f0 = 0) the index-blended
features are pulled back towards the encoder's own, ``feats = protect * blended + (1 -
protect) * original``; voiced frames keep the blend. ``protect >= 0.5`` switches it off.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["PROTECT_OFF", "RMS_FLOOR", "frame_rms", "mix_rms", "protect_features"]

RMS_FLOOR = 1e-3  # RVC's floor on the output RMS (keeps silence from being amplified without bound)
PROTECT_OFF = 0.5  # RVC skips protection for protect >= 0.5


def frame_rms(x: torch.Tensor, hop: int) -> torch.Tensor:
    """RMS of ``x [B, n]`` over 4-hop frames every hop, centred, zero-padded: ``[B, n // hop + 1]``."""
    frame = 4 * hop
    padded = F.pad(x.float(), (frame // 2, frame // 2))
    return padded.unfold(-1, frame, hop).pow(2).mean(-1).sqrt()


def _per_sample(rms: torch.Tensor, n: int) -> torch.Tensor:
    return F.interpolate(rms[:, None], size=n + 1, mode="linear", align_corners=True)[:, 0, :-1]


def mix_rms(out: torch.Tensor, reference16k: torch.Tensor, hop: int, rate: torch.Tensor) -> torch.Tensor:
    """Apply ``rms_mix_rate`` per row.

    Parameters
    ----------
    out : torch.Tensor [shape=(B, frames * hop)]
        Rendered audio at the model rate (``hop`` samples per 10 ms).
    reference16k : torch.Tensor [shape=(B, frames * 160)]
        The input the render covers, at 16 kHz (same 10 ms frames, so the same frame count).
    rate : torch.Tensor [shape=(B,)]
        ``rms_mix_rate`` per row; rows at 1 are returned unchanged.
    """
    n = out.shape[-1]
    env_in = _per_sample(frame_rms(reference16k, 160), n)
    env_out = _per_sample(frame_rms(out, hop), n).clamp_min(RMS_FLOOR)
    rate = rate.to(out.device, torch.float32)[:, None]
    return torch.where(rate < 1.0, out * (env_in / env_out).pow(1.0 - rate), out)


def protect_features(blended: torch.Tensor, original: torch.Tensor, f0: torch.Tensor,
                     protect: torch.Tensor) -> torch.Tensor:
    """``[B, T, C]`` features; ``f0 [B, T]`` Hz (0 = unvoiced); ``protect [B]``, off where >= 0.5."""
    weight = torch.where(f0 > 0, torch.ones_like(f0), protect.to(f0)[:, None])[..., None]
    mixed = blended * weight + original * (1.0 - weight)
    return torch.where((protect < PROTECT_OFF).to(blended.device)[:, None, None], mixed, blended)
