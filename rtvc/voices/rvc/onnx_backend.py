"""onnxruntime backend: export a voice's synthesizer and content encoder to ONNX and run them with ORT.

The synthesizer graph is RVC's trimmed ``infer`` with the trim points as inputs
(``flow_head``, ``dec_local``, ``n_dec``: int64 scalars) and all noise as inputs, so one
graph serves every block size and its output equals the torch backend's for the same
noise. ORT uses the CUDA execution provider when it is available, the CPU one otherwise.
Formant shifting (which stretches the decoder input) stays on the torch synthesizer.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.hubert import ContentEncoder
from rtvc.voices.rvc.model import RvcModel
from rtvc.voices.rvc.synthesizer import FLOW_CONTEXT_FRAMES, NOISE_SCALE, Synthesizer, SynthNoise

__all__ = ["OnnxContent", "OnnxSynthesizer", "export_content", "export_synthesizer", "use_onnx"]

OPSET = 17


class _SynthGraph(nn.Module):
    def __init__(self, synth: Synthesizer) -> None:
        super().__init__()
        self.synth = synth

    def forward(self, phone, pitch, pitchf, prior, source, phase0, flow_head, dec_local, n_dec):  # noqa: ANN001
        s = self.synth
        enc = s.enc_p
        x = enc.emb_phone(phone)
        if s.f0:
            x = x + enc.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(enc.hidden_channels), 0.1).transpose(1, 2)
        mask = torch.ones_like(x[:, :1])
        x = enc.encoder(x, mask)
        x = x.index_select(2, torch.arange(flow_head, x.shape[2], device=x.device))
        mask = mask[:, :, : x.shape[2]]
        m, logs = torch.split(enc.proj(x), enc.out_channels, dim=1)
        g = s.emb_g.weight[:1].unsqueeze(-1).expand(x.shape[0], -1, -1)  # speaker 0, as RVC realtime
        z = s.flow.reverse(m + torch.exp(logs) * prior * NOISE_SCALE, mask, g)
        z = z.index_select(2, torch.arange(dec_local, dec_local + n_dec, device=x.device))
        return s.dec(z, g, pitchf if s.f0 else None, source if s.f0 else None, phase0 if s.f0 else None)


class _ContentGraph(nn.Module):
    def __init__(self, content: ContentEncoder, layer: int, project: bool) -> None:
        super().__init__()
        self.content, self.layer, self.project = content, layer, project

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.content(wave, self.layer, project=self.project)


def _export(module: nn.Module, args: tuple, path: Path, names: list[str], dynamic: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=names, output_names=["out"], dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)


@torch.no_grad()
def export_synthesizer(synth: Synthesizer, path: str | Path) -> Path:
    """Write the trimmed-render graph of ``synth`` (float32) to ``path``."""
    synth = synth.float().cpu().eval()
    t, flow_head, dec_local, n_dec = 80, 30, 24, 20
    c, hop = synth.config.inter_channels, synth.hop
    args = (torch.randn(1, t, synth.content_dim), torch.randint(1, 255, (1, t)), torch.rand(1, n_dec) * 200 + 80,
            torch.randn(1, c, t - flow_head), torch.randn(1, 1, n_dec * hop), torch.zeros(1),
            torch.tensor(flow_head), torch.tensor(dec_local), torch.tensor(n_dec))
    names = ["phone", "pitch", "pitchf", "prior", "source", "phase0", "flow_head", "dec_local", "n_dec"]
    dynamic = {"phone": {0: "b", 1: "t"}, "pitch": {0: "b", 1: "t"}, "pitchf": {0: "b", 1: "n"},
               "prior": {0: "b", 2: "tf"}, "source": {0: "b", 2: "ns"}, "phase0": {0: "b"}, "out": {0: "b", 2: "no"}}
    path = Path(path)
    _export(_SynthGraph(synth), args, path, names, dynamic)
    return path


@torch.no_grad()
def export_content(content: ContentEncoder, layer: int, project: bool, path: str | Path) -> Path:
    content = content.float().cpu().eval()
    path = Path(path)
    _export(_ContentGraph(content, layer, project), (torch.randn(1, 16000),), path, ["wave"],
            {"wave": {0: "b", 1: "n"}, "out": {0: "b", 1: "f"}})
    return path


def _session(path: Path):  # noqa: ANN202
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelLoadError("onnxruntime is not installed (pip install onnxruntime)") from None
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    try:
        return ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # ORT raises its own exception types for unreadable models
        raise ModelLoadError(f"ONNX model {path} cannot be loaded: {str(exc)[:200]}") from None


class OnnxSynthesizer:
    """Stands in for :class:`Synthesizer` in the render path (same ``infer`` signature)."""

    def __init__(self, path: Path, torch_synth: Synthesizer) -> None:
        self.session = _session(path)
        self.torch_synth = torch_synth
        self.config, self.hop, self.f0 = torch_synth.config, torch_synth.hop, torch_synth.f0

    def infer(self, phone, lengths, pitch, pitchf, sid, noise: SynthNoise, *, skip_head=0,  # noqa: ANN001
              return_length=None, return_length2=None, decoder_margin=0, phase0=None) -> torch.Tensor:
        total = phone.shape[1]
        return_length = total - skip_head if return_length is None else return_length
        if (return_length2 is not None and return_length2 != return_length) or int(sid.abs().sum()) != 0:
            return self.torch_synth.infer(phone, lengths, pitch, pitchf, sid, noise, skip_head=skip_head,
                                          return_length=return_length, return_length2=return_length2,
                                          decoder_margin=decoder_margin, phase0=phase0)
        margin = min(decoder_margin, skip_head)
        dec_start = skip_head - margin
        flow_head = max(dec_start - FLOW_CONTEXT_FRAMES, 0)
        n_dec = margin + return_length
        b = phone.shape[0]

        def np32(x: torch.Tensor | None, shape: tuple) -> np.ndarray:
            return np.zeros(shape, np.float32) if x is None else x.detach().float().cpu().numpy()

        feeds = {
            "phone": np32(phone, ()), "prior": np32(noise.prior[:, :, flow_head - noise.prior_start:
                                                                total - noise.prior_start], ()),
            "flow_head": np.array(flow_head, np.int64), "dec_local": np.array(dec_start - flow_head, np.int64),
            "n_dec": np.array(n_dec, np.int64),
        }
        if self.f0:
            at = (dec_start - noise.source_start) * self.hop
            feeds.update({
                "pitch": pitch.cpu().numpy().astype(np.int64),
                "pitchf": np32(pitchf[:, dec_start:dec_start + n_dec], ()),
                "source": np32(noise.source[:, :, at:at + n_dec * self.hop], ()),
                "phase0": np32(phase0, (b,)),
            })
        wanted = {i.name for i in self.session.get_inputs()}
        audio = torch.from_numpy(self.session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0])
        return audio[:, :, margin * self.hop:] if margin else audio


class OnnxContent:
    """Stands in for :class:`ContentEncoder` (fixed output layer / projection, as exported)."""

    def __init__(self, path: Path, torch_content: ContentEncoder) -> None:
        self.session = _session(path)
        self.cfg, self.encoder = torch_content.cfg, torch_content.encoder

    def __call__(self, wave: torch.Tensor, output_layer: int | None = None, *, project: bool = False) -> torch.Tensor:
        out = self.session.run(None, {"wave": wave.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out)


def onnx_paths(root: Path, model_sha: str, content_sha: str, layer: int, project: bool) -> tuple[Path, Path]:
    return (root / "onnx" / f"{model_sha}.synth.onnx",
            root / "onnx" / f"{content_sha}.content-l{layer}{'p' if project else ''}.onnx")


def export_voice(model: RvcModel, root: Path, model_sha: str, content_sha: str) -> tuple[Path, Path]:
    """Export both graphs of a loaded voice into ``root/onnx`` (content graphs are shared by digest)."""
    if not isinstance(model.synth, Synthesizer):  # imported from a user's ONNX export: it already runs on ORT
        raise ModelLoadError(f"{model.file.path} is an ONNX export already; it runs on onnxruntime as imported")
    project = model.file.version == "v1"
    synth_path, content_path = onnx_paths(root, model_sha, content_sha, model.output_layer, project)
    export_synthesizer(model.synth, synth_path)
    if not content_path.exists():
        export_content(model.content, model.output_layer, project, content_path)
    return synth_path, content_path


def use_onnx(model: RvcModel, record: object) -> None:
    """Swap a loaded voice's synthesizer and content encoder for their exported ONNX graphs."""
    root = record.root  # type: ignore[attr-defined]
    files = record.files  # type: ignore[attr-defined]
    synth_path, content_path = onnx_paths(root, files["model"].sha256, files["content"].sha256,
                                          model.output_layer, model.file.version == "v1")
    if not synth_path.exists() or not content_path.exists():
        raise ModelLoadError(f"voice {record.name!r} has no ONNX export; run `rtvc voices export-onnx "  # type: ignore[attr-defined]
                             f"{record.name}` first")  # type: ignore[attr-defined]
    model.synth = OnnxSynthesizer(synth_path, model.synth)  # type: ignore[assignment]
    model.content = OnnxContent(content_path, model.content)  # type: ignore[assignment]
