"""Run a user's ONNX synthesizer export (RVC WebUI, w-okada, deiteris) in place of rtvc's torch synthesizer.

These graphs render the whole window (the WebUI's and w-okada's cannot trim; deiteris'
could, but is run whole as well so one noise layout serves all three), so
:meth:`OnnxExportSynth.infer` renders all ``T`` frames and returns the requested tail.
All noise comes from the caller's :class:`SynthNoise` (the WebUI's ``rnd`` input is the
prior already scaled by RVC's 0.66666; in-graph draws are replaced by inputs, see
:mod:`rtvc.voices.rvc.onnx_graph`), so seeded output is reproducible and equals rtvc's
torch synthesizer on the same window and noise. The sine excitation starts at phase 0 at
the window's first frame, as in RVC. Graphs with a fixed batch of 1 (all real exports)
run once per stream; a graph with a free batch axis runs a whole batch at once.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from rtvc.errors import ModelLoadError, ParamError
from rtvc.voices.rvc.onnx_graph import NoiseFeed, make_deterministic
from rtvc.voices.rvc.onnx_inspect import OnnxExportFile, read_onnx_export
from rtvc.voices.rvc.synthesizer import NOISE_SCALE, SynthNoise

__all__ = ["OnnxExportSynth", "load_onnx_export"]

PROBE_FRAMES = 32  # window of the check run at load: long enough for every RVC decoder's kernels
_NP_TYPES = {1: np.float32, 10: np.float16, 7: np.int64}
_OTHER_NOISE_SEED = 20240229


def _session(model_bytes: bytes, source: Path):  # noqa: ANN202
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelLoadError("onnxruntime is not installed (pip install onnxruntime)") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())  # the engine's per-worker thread budget
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    try:
        return ort.InferenceSession(model_bytes, sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises its own exception types for graphs it cannot build
        raise ModelLoadError(f"ONNX model {source} cannot be loaded by onnxruntime: {str(exc)[:200]}") from None


class OnnxExportSynth:
    """Stands in for :class:`~rtvc.voices.rvc.synthesizer.Synthesizer` in the render path (same ``infer``)."""

    supports_formant = False

    def __init__(self, export: OnnxExportFile) -> None:
        self.export = export
        self.f0, self.content_dim = export.f0, export.content_dim
        self.hop = export.sample_rate // 100
        self.config = SimpleNamespace(inter_channels=export.inter_channels, sample_rate=export.sample_rate)
        self.checked_prior = export.inter_channels is not None
        patched, self.noise_feeds = make_deterministic(export.model, phone=export.inputs["phone"],
                                                       pitchf=export.inputs.get("pitchf"), opset=export.opset)
        self.session = _session(patched.SerializeToString(), export.path)
        self.input_types = {i.name: _NP_TYPES.get(i.type.tensor_type.elem_type, np.float32) for i in
                            patched.graph.input}
        self.outputs = [export.model.graph.output[0].name] + [f.shape_output for f in self.noise_feeds]
        export.model = None  # onnxruntime holds its own copy; a full-size graph is ~100 MB
        self.probe()

    # -- the render -------------------------------------------------------------------------------------

    def infer(self, phone: torch.Tensor, lengths: torch.Tensor, pitch: torch.Tensor | None,
              pitchf: torch.Tensor | None, sid: torch.Tensor, noise: SynthNoise, *, skip_head: int = 0,
              return_length: int | None = None, return_length2: int | None = None, decoder_margin: int = 0,
              phase0: torch.Tensor | None = None) -> torch.Tensor:
        """Render the whole window, return frames ``[skip_head, skip_head + return_length)``: ``[B, 1, n * hop]``.

        ``decoder_margin`` and ``phase0`` are moot for a whole-window render; a formant stretch
        (``return_length2``) cannot be done by these graphs.
        """
        total = phone.shape[1]
        return_length = total - skip_head if return_length is None else return_length
        if return_length2 is not None and return_length2 != return_length:
            raise ParamError(f"formant shift needs the voice's .pth; {self.export.path.name} is an ONNX export")
        if noise.prior_start or noise.source_start:
            raise ValueError("an ONNX export renders whole windows: noise must start at the window's first frame")
        rows = [list(range(phone.shape[0]))] if self.export.batch_axis else [[b] for b in range(phone.shape[0])]
        audio = []
        for idx in rows:
            audio.append(self._run(phone[idx], lengths[idx], None if pitch is None else pitch[idx],
                                   None if pitchf is None else pitchf[idx], sid[idx],
                                   noise.prior[idx], None if noise.source is None else noise.source[idx]))
        out = torch.from_numpy(np.concatenate(audio))
        return out[:, :, skip_head * self.hop:(skip_head + return_length) * self.hop]

    def _run(self, phone, lengths, pitch, pitchf, sid, prior, source) -> np.ndarray:  # noqa: ANN001
        b, frames = phone.shape[:2]
        names = self.export.inputs
        values = {"phone": phone, "lengths": lengths, "sid": sid, "pitch": pitch, "pitchf": pitchf,
                  "rnd": prior * NOISE_SCALE, "skip_head": 0, "return_length": frames, "formant_length": frames}
        feeds = {}
        for role, name in names.items():
            value = values[role]
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.array(value)
            feeds[name] = array.astype(self.input_types[name])
        for feed in self.noise_feeds:
            feeds[feed.input] = self._noise(feed, prior, source, b, frames)
        try:
            out, *shapes = self.session.run(self.outputs, feeds)
        except Exception as exc:  # ORT's own exception types
            raise ModelLoadError(f"ONNX model {self.export.path} failed on a {frames}-frame window: "
                                 f"{str(exc)[:200]}") from None
        for feed, shape in zip(self.noise_feeds, shapes, strict=True):
            self._check_noise(feed, tuple(int(d) for d in shape), b, frames)
        out = np.asarray(out, dtype=np.float32).reshape(b, 1, -1)
        if out.shape[-1] != frames * self.hop:
            raise self._rate_error(out.shape[-1] / frames)
        return out

    def _rate_error(self, per_frame: float) -> ModelLoadError:
        return ModelLoadError(f"ONNX model {self.export.path} renders {per_frame:g} samples per 10 ms frame "
                              f"({per_frame * 100:g} Hz); {self.export.sample_rate} Hz needs {self.hop} "
                              "(wrong --sample-rate, or the metadata's samplingRate is wrong)")

    def _noise(self, feed: NoiseFeed, prior: torch.Tensor, source: torch.Tensor | None, b: int,
               frames: int) -> np.ndarray:
        if feed.role == "prior":
            return prior.detach().float().cpu().numpy().reshape(-1)
        if feed.role == "source" and source is not None:
            return source.detach().float().cpu().numpy().reshape(-1)
        # anything else (RVC's zeroed random sine phase, for one): fixed values, enough for any shape it takes
        n = int(np.prod(feed.shape)) if feed.shape is not None else b * frames * (self.hop + 1024)
        generator = np.random.default_rng(_OTHER_NOISE_SEED)
        values = generator.standard_normal(n) if feed.kind == "normal" else generator.random(n)
        return values.astype(np.float32)

    def _check_noise(self, feed: NoiseFeed, shape: tuple[int, ...], b: int, frames: int) -> None:
        """The graph must have drawn noise shaped as what we fed: prior ``[B, C, T]``, excitation ``B*T*hop``."""
        if feed.role == "prior":
            if not self.checked_prior and len(shape) == 3:  # the probe learns the prior's channels
                self.config.inter_channels, self.checked_prior = shape[1], True
            ok = shape == (b, self.config.inter_channels, frames)
        elif feed.role == "source":
            size = int(np.prod(shape))
            if size != b * frames * self.hop and size % (b * frames) == 0:  # one value per output sample
                raise self._rate_error(size / (b * frames))
            ok = size == b * frames * self.hop
        else:
            return
        if not ok:
            raise ModelLoadError(f"ONNX model {self.export.path} draws {feed.role} noise of shape {list(shape)} "
                                 f"for a {frames}-frame window; an RVC synthesizer draws "
                                 + (f"[{b}, {self.config.inter_channels}, {frames}]" if feed.role == "prior"
                                    else f"{b * frames * self.hop} values"))

    def probe(self) -> None:
        """One small render at load: the graph must run on RVC's inputs and give ``hop`` samples per frame."""
        t, c = PROBE_FRAMES, self.content_dim
        generator = torch.Generator().manual_seed(0)
        channels = self.config.inter_channels or 1024  # unknown: feed plenty, _check_noise learns the real count
        noise = SynthNoise.draw(1, channels, t, self.hop, nsf=self.f0, generator=generator)
        pitchf = torch.full((1, t), 150.0) if self.f0 else None
        pitch = torch.full((1, t), 60, dtype=torch.long) if self.f0 else None
        audio = self.infer(torch.randn(1, t, c, generator=generator), torch.tensor([t]), pitch, pitchf,
                           torch.zeros(1, dtype=torch.long), noise)
        if self.config.inter_channels is None:  # the graph draws no prior noise: any count serves
            self.config.inter_channels, self.checked_prior = channels, True
        if not torch.isfinite(audio).all():
            raise ModelLoadError(f"ONNX model {self.export.path} renders non-finite audio (corrupt weights?)")


def load_onnx_export(path: str | Path, *, sample_rate: int | None = None) -> tuple[OnnxExportFile, OnnxExportSynth]:
    """Validate ``path`` and build its runner (checked by one small render); ModelLoadError otherwise."""
    export = read_onnx_export(path, sample_rate=sample_rate)
    return export, OnnxExportSynth(export)
