"""One RVC block for a batch of streams of one voice: index blend, protect, synthesis, loudness (``rtrvc.infer``).

A :class:`RenderJob` is everything one stream's block needs, already cut to its window;
:func:`render_features` takes the jobs' content features (computed by the batched front end,
:mod:`~rtvc.voices.rvc.frontend`) and batches jobs with equal shapes through the synthesizer.
:func:`render_window` is the whole algorithm for one window, used as the reference the
streaming path is tested against.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from rtvc.audio.resample import resample
from rtvc.voices.rvc.decoder import sine_phase_at
from rtvc.voices.rvc.loudness import PROTECT_OFF, mix_rms, protect_features
from rtvc.voices.rvc.model import RvcModel
from rtvc.voices.rvc.pitch import coarse_pitch
from rtvc.voices.rvc.synthesizer import SynthNoise

__all__ = ["RenderJob", "render_features", "render_window"]


@dataclass(slots=True)
class RenderJob:
    """One block of one stream.

    ``audio16k``: the window at 16 kHz (``frames * 160`` samples); ``f0``: raw f0 per
    window frame (Hz, before shifting); ``noise``: drawn for the whole window (batch 1).
    ``protect`` and ``rms_mix_rate`` default to off (0.5 and 1); see :mod:`~rtvc.voices.rvc.loudness`.
    """

    audio16k: torch.Tensor
    f0: torch.Tensor | None
    noise: SynthNoise
    skip_head: int
    return_length: int
    pitch: float = 0.0
    formant: float = 0.0
    index_rate: float = 0.0
    decoder_margin: int = 0
    protect: float = PROTECT_OFF
    rms_mix_rate: float = 1.0

    @property
    def frames(self) -> int:
        return self.audio16k.shape[-1] // 160

    @property
    def return_length2(self) -> int:
        return int(math.ceil(self.return_length * 2.0 ** (self.formant / 12.0)))

    def shape_key(self) -> tuple:
        return (self.audio16k.shape[-1], self.skip_head, self.return_length, self.return_length2,
                self.decoder_margin)


def _frames_to_100hz(feats: torch.Tensor, frames: int) -> torch.Tensor:
    """RVC's framing: repeat the last 50 Hz frame, upsample x2 (nearest), cut to ``frames``."""
    feats = torch.cat([feats, feats[:, -1:]], dim=1)
    return F.interpolate(feats.transpose(1, 2), scale_factor=2.0, mode="nearest").transpose(1, 2)[:, :frames]


def _blend_index(model: RvcModel, feats: torch.Tensor, jobs: list[RenderJob]) -> torch.Tensor:
    """Index blend on each job's new 50 Hz frames (from ``skip_head // 2``), one faiss search for all."""
    rates = [job.index_rate for job in jobs]
    if model.index is None or not any(r > 0 for r in rates):
        return feats
    feats = feats.clone()
    spans = [(b, job.skip_head // 2) for b, job in enumerate(jobs) if job.index_rate > 0]
    rows = np.concatenate([feats[b, start:].cpu().numpy() for b, start in spans])
    retrieved = torch.from_numpy(model.index.retrieve(rows)).to(feats)
    at = 0
    for b, start in spans:
        n, rate = feats.shape[1] - start, jobs[b].index_rate
        feats[b, start:] = rate * retrieved[at:at + n] + (1.0 - rate) * feats[b, start:]
        at += n
    return feats


def _protected(model: RvcModel, feats: torch.Tensor, original: torch.Tensor, jobs: list[RenderJob]) -> torch.Tensor:
    """100 Hz features with RVC's protect applied where a job asks for it (index blend on, protect < 0.5)."""
    frames = jobs[0].frames
    phone = _frames_to_100hz(feats, frames)
    active = [model.file.f0 and job.f0 is not None and job.index_rate > 0 and job.protect < PROTECT_OFF
              for job in jobs]
    if not any(active):
        return phone
    f0 = torch.stack([job.f0 if on else torch.ones(frames) for job, on in zip(jobs, active, strict=True)])
    protect = torch.tensor([job.protect if on else PROTECT_OFF for job, on in zip(jobs, active, strict=True)])
    return protect_features(phone, _frames_to_100hz(original, frames), f0.to(phone), protect.to(phone.device))


@torch.no_grad()
def _synthesize(model: RvcModel, feats: torch.Tensor, original: torch.Tensor, jobs: list[RenderJob]) -> list[np.ndarray]:
    """Render ``jobs`` (equal shapes): ``feats`` index-blended, ``original`` as the encoder gave them (50 Hz)."""
    job0 = jobs[0]
    frames = job0.frames
    device, dtype = model.device, model.dtype
    b = len(jobs)
    phone = _protected(model, feats, original, jobs).to(device, dtype)
    lengths = torch.full((b,), frames, dtype=torch.long, device=device)
    sid = torch.zeros(b, dtype=torch.long, device=device)
    rl, rl2 = job0.return_length, job0.return_length2
    pitch = pitchf = phase0 = None
    if model.file.f0:
        shifted = torch.stack([job.f0 * 2.0 ** ((job.pitch - job.formant) / 12.0) for job in jobs]).float()
        pitch = coarse_pitch(shifted).to(device)
        pitchf = (shifted * rl2 / rl).to(device)
        dec_start = job0.skip_head - min(job0.decoder_margin, job0.skip_head)
        # the sine continues the phase it would have over the whole window (RVC restarts it at 0 each block)
        phase0 = sine_phase_at(pitchf, dec_start, model.synth.hop, model.sample_rate) if dec_start else None
    noise = SynthNoise(
        torch.cat([job.noise.prior for job in jobs]).to(device, dtype),
        torch.cat([job.noise.source for job in jobs]).to(device, dtype) if model.file.f0 else None)
    audio = model.synth.infer(phone, lengths, pitch, pitchf.to(dtype) if pitchf is not None else None, sid, noise,
                              skip_head=job0.skip_head, return_length=rl, return_length2=rl2,
                              decoder_margin=job0.decoder_margin, phase0=phase0)
    audio = audio[:, 0].float().cpu().numpy()
    hop = model.synth.hop
    upp_res = int(math.floor(2.0 ** (job0.formant / 12.0) * hop))
    rows = []
    for row in audio:
        if upp_res != hop:  # formant: squeeze the stretched render back to the block's duration
            row = resample(np.ascontiguousarray(row[: rl * upp_res]), upp_res, hop)[: rl * hop]
            row = np.pad(row, (0, rl * hop - len(row)))
        rows.append(row.astype(np.float32))
    rates = torch.tensor([job.rms_mix_rate for job in jobs])
    if bool((rates < 1.0).any()):  # loudness envelope from the input the render covers
        reference = torch.stack([job.audio16k[-rl * 160:] for job in jobs]).float()
        mixed = mix_rms(torch.from_numpy(np.stack(rows)), reference, hop, rates).numpy()
        rows = [np.ascontiguousarray(row, dtype=np.float32) for row in mixed]
    return rows


def render_features(model: RvcModel, jobs: list[RenderJob], feats: torch.Tensor) -> list[np.ndarray]:
    """Render jobs of one voice from their content features ``[B, frames, dim]`` (50 Hz, equal window lengths).

    Returns ``return_length * hop`` float32 samples per job, in order.
    """
    blended = _blend_index(model, feats, jobs)
    out: list[np.ndarray | None] = [None] * len(jobs)
    by_shape: dict[tuple, list[int]] = defaultdict(list)
    for row, job in enumerate(jobs):
        by_shape[job.shape_key()].append(row)
    for rows in by_shape.values():
        rendered = _synthesize(model, blended[rows], feats[rows], [jobs[r] for r in rows])
        for r, audio in zip(rows, rendered, strict=True):
            out[r] = audio
    return out  # type: ignore[return-value]


def render_window(model: RvcModel, job: RenderJob) -> np.ndarray:
    """The reference: RVC's block algorithm on one window, no batching, no caches."""
    feats = model.content_features(job.audio16k[None])
    return _synthesize(model, _blend_index(model, feats, [job]), feats, [job])[0]
