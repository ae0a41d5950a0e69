"""The batched front end of RVC voices: one block for many streams, of one voice or of several.

Streams whose voices share a content encoder object (the same file, by sha256, on the same
device: see :mod:`~rtvc.voices.rvc.model`) run together: every stream's new audio goes into
its history, pitch runs once per (tracker, segment length) over all of them, the content
encoder runs once per window length (one pass up to the deepest layer any voice needs: v1
voices take layer 9 + ``final_proj``, v2 voices layer 12), and then each voice's index blend
and synthesizer run on that voice's rows only (:func:`~rtvc.voices.rvc.render.render_features`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from rtvc.voices.rvc.render import RenderJob, render_features

if TYPE_CHECKING:
    from rtvc.voices.rvc.model import RvcModel
    from rtvc.voices.rvc.voice import RVCStream

__all__ = ["content_features", "run_batch"]


@torch.no_grad()
def _track_pitch(streams: Sequence[RVCStream]) -> None:
    """f0 for each stream's new segment, one tracker call per (tracker object, segment length)."""
    groups: dict[tuple[int, int], list[RVCStream]] = defaultdict(list)
    for stream in streams:
        model = stream.voice.model
        if model.file.f0:
            tracker = model.trackers[stream.tracker_name(model)]
            groups[(id(tracker), stream.f0_segment(model))].append(stream)
    for (_, length), group in groups.items():
        model = group[0].voice.model
        tracker = model.trackers[group[0].tracker_name(model)]
        audio = torch.stack([s.history[-length:] for s in group]).to(model.device)
        f0 = tracker(audio).float().cpu()
        for stream, track in zip(group, f0, strict=True):
            stream.update_pitch(track)


@torch.no_grad()
def content_features(models: Sequence[RvcModel], audio16k: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Each model's content features ``[frames, dim]`` (50 Hz, float32) for its window, batched.

    Rows are grouped by (encoder object, window length); each group is one encoder pass.
    Encoders without ``hidden_states`` (exported ONNX graphs, fixed to one layer) run once per
    (encoder, length, layer).
    """
    out: list[torch.Tensor | None] = [None] * len(models)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (model, audio) in enumerate(zip(models, audio16k, strict=True)):
        layered = hasattr(model.content, "hidden_states")
        groups[(id(model.content), audio.shape[-1], None if layered else model.output_layer)].append(i)
    for rows in groups.values():
        model0 = models[rows[0]]
        encoder = model0.content
        x = torch.stack([audio16k[i] for i in rows]).to(model0.device, model0.dtype)
        if hasattr(encoder, "hidden_states"):
            layers = sorted({models[i].output_layer for i in rows})
            states = dict(zip(layers, encoder.hidden_states(x, layers), strict=True))
            picked = torch.stack([states[models[i].output_layer][r] for r, i in enumerate(rows)])
            project = [r for r, i in enumerate(rows) if models[i].file.version == "v1"]
            feats = list(picked)
            if project:
                for r, row in zip(project, encoder.project(picked[project]), strict=True):
                    feats[r] = row
        else:
            feats = list(encoder(x, model0.output_layer, project=model0.file.version == "v1"))
        for i, row in zip(rows, feats, strict=True):
            out[i] = row.float()
    return out  # type: ignore[return-value]


def run_batch(streams: Sequence[RVCStream], windows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One block for each stream (streams of voices sharing one content encoder); outputs in order."""
    streams = list(streams)
    for stream, window in zip(streams, windows, strict=True):
        stream.ingest(window)
    _track_pitch(streams)
    jobs: list[RenderJob] = [stream.job(stream.voice.model) for stream in streams]
    models = [stream.voice.model for stream in streams]
    feats = content_features(models, [job.audio16k for job in jobs])
    out: list[np.ndarray | None] = [None] * len(streams)
    by_voice: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (model, job) in enumerate(zip(models, jobs, strict=True)):
        by_voice[(id(model), job.audio16k.shape[-1])].append(i)
    for rows in by_voice.values():
        rendered = render_features(models[rows[0]], [jobs[i] for i in rows], torch.stack([feats[i] for i in rows]))
        for i, audio in zip(rows, rendered, strict=True):
            out[i] = audio
    return out  # type: ignore[return-value]
