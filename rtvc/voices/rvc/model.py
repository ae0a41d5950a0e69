"""An RVC voice's networks, loaded once and shared: synthesizer, content encoder, pitch trackers, index.

Content encoders and pitch networks are cached by the sha256 of their file (and device), so
voices that share a ``hubert_base.pt`` share one encoder object in memory wherever the file
lies; the batched front end (:mod:`~rtvc.voices.rvc.frontend`) relies on that identity to
run one encoder pass for the blocks of all those voices. CPU runs float32; CUDA (when
present) float16 for the synthesizer, content encoder and RMVPE, float32 for FCPE, pitch
decoding and index search.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.checkpoint import RvcModelFile, load_synthesizer, read_rvc_model
from rtvc.voices.rvc.content import load_content_encoder
from rtvc.voices.rvc.fcpe import FcpeTracker, bundled_fcpe_path, load_fcpe
from rtvc.voices.rvc.hubert import ContentEncoder
from rtvc.voices.rvc.onnx_inspect import is_onnx_file
from rtvc.voices.rvc.pitch import PitchTracker, YinTracker
from rtvc.voices.rvc.retrieval import RetrievalIndex
from rtvc.voices.rvc.rmvpe import RmvpeTracker, load_rmvpe
from rtvc.voices.rvc.synthesizer import Synthesizer
from rtvc.voices.store import sha256_of

__all__ = ["BUNDLED", "RvcModel", "default_device", "file_digest"]

BUNDLED = "bundled"  # fcpe_model default: the installed torchfcpe wheel's weights, if any

_SHARED: dict[tuple[str, str, str], object] = {}
_SHARED_LOCK = threading.Lock()
_DIGESTS: dict[tuple[str, int, int], str] = {}
_YIN = YinTracker()  # stateless: one instance lets YIN pitch batch across voices


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def file_digest(path: Path) -> str:
    """sha256 of a file or folder, remembered per (path, size, mtime) so each file is hashed once per process."""
    stat = os.stat(path)
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_of(path)
    return _DIGESTS[key]


def _shared(kind: str, path: Path, device: torch.device, load: Callable[[], object]) -> object:
    """One instance per (kind, file content, device) for the whole process."""
    if not path.exists():
        return load()  # the loader raises its own "not found" error
    key = (kind, file_digest(path), str(device))
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
             index: str | Path | None = None, device: torch.device | str | None = None,
             fcpe_model: str | Path | None = BUNDLED, sample_rate: int | None = None) -> RvcModel:
        """Load and cross-check all files of a voice (ModelLoadError names the file at fault).

        ``fcpe_model``: a torchfcpe checkpoint, ``"bundled"`` (the installed wheel's, if any) or None
        (no FCPE). It loads on the first block that uses it. ``model`` is a WebUI ``.pth`` or an
        ONNX synthesizer export; ``sample_rate`` (Hz) is for ONNX exports that do not record it.
        """
        device = torch.device(device) if device is not None else default_device()
        half = device.type == "cuda"
        if is_onnx_file(model):  # a user's ONNX export runs on onnxruntime (see onnx_synth)
            from rtvc.voices.rvc.onnx_synth import load_onnx_export

            model_file, synth = load_onnx_export(model, sample_rate=sample_rate)
        else:
            model_file = read_rvc_model(model)
            if sample_rate is not None and sample_rate != model_file.sample_rate:
                raise ModelLoadError(f"RVC model {model} runs at {model_file.sample_rate} Hz, not {sample_rate}")
            synth = _place(load_synthesizer(model_file), device, half)
        content_path = Path(content)
        encoder = _shared("content", content_path, device,
                          lambda: _place(load_content_encoder(content_path), device, half))
        trackers: dict[str, PitchTracker] = {"yin": _YIN}
        if pitch_model is not None:
            rmvpe_path = Path(pitch_model)
            trackers["rmvpe"] = _shared("rmvpe", rmvpe_path, device,
                                        lambda: RmvpeTracker(_place(load_rmvpe(rmvpe_path), device, half)))
        fcpe_path = bundled_fcpe_path() if fcpe_model == BUNDLED else fcpe_model
        if fcpe_path is not None:
            fcpe_path = Path(fcpe_path)
            if not fcpe_path.is_file():
                raise ModelLoadError(f"FCPE model file not found: {fcpe_path}")
            trackers["fcpe"] = _shared("fcpe", fcpe_path, device,
                                       lambda: FcpeTracker(lambda: load_fcpe(fcpe_path).to(device)))
        retrieval = RetrievalIndex.load(index, dim=model_file.content_dim) if index is not None else None
        return cls(model_file, synth, encoder, trackers, retrieval, device, torch.float16 if half else torch.float32)

    @torch.no_grad()
    def content_features(self, audio16k: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` at 16 kHz -> ``[B, frames, 256|768]`` at 50 frames/s (v1: layer 9 + final_proj)."""
        x = audio16k.to(self.device, self.dtype)
        return self.content(x, self.output_layer, project=self.file.version == "v1").float()
