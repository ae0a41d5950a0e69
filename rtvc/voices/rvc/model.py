"""An RVC voice's networks, loaded once and shared: synthesizer, content encoder, pitch trackers, index.

Content encoders and RMVPE models are cached by file path, so voices that share a
``hubert_base.pt`` share one encoder in memory. CPU runs float32; CUDA (when present)
float16 for the networks, float32 for pitch decoding and index search.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.checkpoint import RvcModelFile, load_synthesizer, read_rvc_model
from rtvc.voices.rvc.content import load_content_encoder
from rtvc.voices.rvc.hubert import ContentEncoder
from rtvc.voices.rvc.pitch import PitchTracker, YinTracker
from rtvc.voices.rvc.retrieval import RetrievalIndex
from rtvc.voices.rvc.rmvpe import RmvpeTracker, load_rmvpe
from rtvc.voices.rvc.synthesizer import Synthesizer

__all__ = ["RvcModel", "default_device"]

_SHARED: dict[tuple[str, str, str], object] = {}
_SHARED_LOCK = threading.Lock()


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _shared(kind: str, path: Path, device: torch.device, load: callable) -> object:
    """One instance per (kind, file, device) for the whole process."""
    key = (kind, str(path.resolve()), str(device))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = load()
        return _SHARED[key]


def _place(module: torch.nn.Module, device: torch.device, half: bool) -> torch.nn.Module:
    module = module.to(device)
    return module.half() if half else module


@dataclass
class RvcModel:
    """Everything one RVC voice computes with."""

    file: RvcModelFile
    synth: Synthesizer
    content: ContentEncoder
    trackers: dict[str, PitchTracker]
    index: RetrievalIndex | None
    device: torch.device
    dtype: torch.dtype
    output_layer: int = field(init=False)

    def __post_init__(self) -> None:
        # fairseq's extract_features(output_layer=N) returns the last layer when the model has fewer than N
        self.output_layer = min(9 if self.file.version == "v1" else 12, len(self.content.encoder.layers))
        dim = self.content.cfg.final_dim if self.file.version == "v1" else self.content.cfg.embed_dim
        if dim != self.file.content_dim:
            raise ModelLoadError(f"content encoder gives {dim}-d features; {self.file.path} "
                                 f"({self.file.version}) needs {self.file.content_dim}-d")

    @property
    def sample_rate(self) -> int:
        return self.file.sample_rate

    @classmethod
    def load(cls, model: str | Path, *, content: str | Path, pitch_model: str | Path | None = None,
             index: str | Path | None = None, device: torch.device | str | None = None) -> RvcModel:
        """Load and cross-check all files of a voice (ModelLoadError names the file at fault)."""
        device = torch.device(device) if device is not None else default_device()
        half = device.type == "cuda"
        model_file = read_rvc_model(model)
        synth = _place(load_synthesizer(model_file), device, half)
        content_path = Path(content)
        encoder = _shared("content", content_path, device,
                          lambda: _place(load_content_encoder(content_path), device, half))
        trackers: dict[str, PitchTracker] = {"yin": YinTracker()}
        if pitch_model is not None:
            rmvpe_path = Path(pitch_model)
            rmvpe = _shared("rmvpe", rmvpe_path, device, lambda: _place(load_rmvpe(rmvpe_path), device, half))
            trackers["rmvpe"] = RmvpeTracker(rmvpe)
        retrieval = RetrievalIndex.load(index, dim=model_file.content_dim) if index is not None else None
        return cls(model_file, synth, encoder, trackers, retrieval, device, torch.float16 if half else torch.float32)

    @torch.no_grad()
    def content_features(self, audio16k: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` at 16 kHz -> ``[B, frames, 256|768]`` at 50 frames/s (v1: layer 9 + final_proj)."""
        x = audio16k.to(self.device, self.dtype)
        return self.content(x, self.output_layer, project=self.file.version == "v1").float()
