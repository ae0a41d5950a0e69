"""RVC models as rtvc voices: RVC's realtime algorithm as a :class:`~rtvc.voices.base.VoiceStream`.

Per block (lengths in samples at the model rate ``sr``, all multiples of ``sr / 100``)::

    window  = extra + crossfade + search + block        (the pipeline's left context + block)
    render  = block + crossfade + search                 (the window's tail, for the pipeline's SOLA)

The stream resamples only the new block to 16 kHz (exact streaming resampler) into its
own window history, runs the content encoder over the whole window, computes f0 only
for the new audio plus 50 ms with RVC's cache rule (drop 3 frames at the left edge of
each segment and the last one), and has the synthesizer render ``render`` (RVC's
``skip_head`` / ``return_length``). The 16 kHz path lags the model-rate input by the
resampler's delay; the layout reports it as ``delay``.

Sessions of this voice, and of other voices sharing its content encoder, batch through
:mod:`~rtvc.voices.rvc.frontend` (the engine groups them by :attr:`RVCVoice.batch_key`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from rtvc.audio.resample import ResampleStream
from rtvc.errors import ParamError
from rtvc.voices.base import BlockLayout, ParamSpec, Voice, VoiceStream
from rtvc.voices.rvc.fcpe import FCPE_INSTALL, bundled_fcpe_path
from rtvc.voices.rvc.frontend import run_batch
from rtvc.voices.rvc.loudness import PROTECT_OFF
from rtvc.voices.rvc.model import BUNDLED, RvcModel
from rtvc.voices.rvc.pitch import HOP, frame_count
from rtvc.voices.rvc.render import RenderJob
from rtvc.voices.rvc.synthesizer import SynthNoise

__all__ = ["F0_METHODS", "RVCStream", "RVCVoice"]

log = logging.getLogger(__name__)

F0_METHODS = {0: "auto", 1: "rmvpe", 2: "yin", 3: "fcpe"}  # numeric codes (ParamSpec values are numbers)
LAYOUT_PARAMS = ("extra_ms", "crossfade_ms")  # fixed when a session opens
F0_MARGIN_16K = 800  # RVC computes f0 on the new block plus 50 ms


def _params(has_index: bool, has_rmvpe: bool, f0: bool, formant: bool = True,
            has_fcpe: bool = False) -> tuple[ParamSpec, ...]:
    specs = []
    if f0:
        specs.append(ParamSpec("pitch", 0.0, -24.0, 24.0, "semitones", "pitch shift"))
    if formant:  # ONNX exports render whole windows and cannot stretch the decoder input
        specs.append(ParamSpec("formant", 0.0, -4.0, 4.0, "semitones", "formant (timbre) shift, duration kept"))
    specs.append(ParamSpec("index_rate", 0.0, 0.0, 1.0 if has_index else 0.0, "",
                           "pull towards the training voice via the retrieval index (needs an index)"))
    if f0:
        missing = [name for name, there in (("rmvpe.pt", has_rmvpe), ("FCPE weights", has_fcpe)) if not there]
        specs.append(ParamSpec("f0_method", 0.0, 0.0, 3.0, "",
                               "pitch tracker: 0 auto (rmvpe, else fcpe, else yin), 1 rmvpe, 2 yin (no weights), "
                               "3 fcpe" + (f"; missing here: {', '.join(missing)}" if missing else "")))
        specs.append(ParamSpec("protect", PROTECT_OFF, 0.0, PROTECT_OFF, "",
                               "keep unvoiced sounds (consonants, breaths) off the index blend: 0 full, "
                               "0.5 off (RVC's meaning; only acts with index_rate > 0)"))
    specs.append(ParamSpec("rms_mix_rate", 0.0, 0.0, 1.0, "",
                           "output loudness envelope: 0 follows the input (RVC realtime), 1 the model's own"))
    specs.append(ParamSpec("extra_ms", 500.0, 50.0, 5000.0, "ms", "left context per block (set at session start)"))
    specs.append(ParamSpec("crossfade_ms", 40.0, 10.0, 150.0, "ms", "SOLA crossfade (set at session start)"))
    return tuple(specs)


class RVCVoice(Voice):
    """An RVC model with its content encoder, optional RMVPE and index.

    Networks load on the first :meth:`open` / :meth:`run` (``loader`` builds the
    :class:`RvcModel`), so listing voices stays cheap.

    Parameters
    ----------
    name, description : str
    sample_rate : int
        The model's rate (32000 / 40000 / 48000).
    loader : callable returning RvcModel
    f0, has_index, has_rmvpe, formant : bool
        What the voice's files provide (decides its parameters).
    has_fcpe : bool or None
        FCPE weights available (None: whether the torchfcpe wheel's are installed).
    decoder_margin_frames : int
        Frames decoded left of the rendered span and dropped (0 = RVC; more = fewer edge artefacts).
    default_block_ms : float
        Block duration this voice runs best at (the pipeline may choose another).
    """

    kind = "rvc"
    keeps_timing = False  # SOLA moves each block by up to 10 ms

    def __init__(self, name: str, *, description: str, sample_rate: int, loader: Callable[[], RvcModel],
                 f0: bool = True, has_index: bool = False, has_rmvpe: bool = False, formant: bool = True,
                 has_fcpe: bool | None = None, decoder_margin_frames: int = 0, default_block_ms: float = 200.0,
                 info: dict | None = None) -> None:
        self.name, self.description, self.sample_rate = name, description, sample_rate
        self.f0, self.has_index, self.has_rmvpe = f0, has_index, has_rmvpe
        self.has_fcpe = bundled_fcpe_path() is not None if has_fcpe is None else has_fcpe  # None: the wheel's
        self.params = _params(has_index, has_rmvpe, f0, formant, self.has_fcpe)
        self.decoder_margin_frames = decoder_margin_frames
        self.default_block_ms = default_block_ms
        self.info = dict(info or {})
        self._loader = loader
        self._model: RvcModel | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_files(cls, name: str, *, model: str | Path, content: str | Path, pitch_model: str | Path | None = None,
                   index: str | Path | None = None, device: str | None = None,
                   fcpe_model: str | Path | None = BUNDLED, **kwargs: object) -> RVCVoice:
        """Load now (validating every file) and wrap as a voice (``fcpe_model``: see :meth:`RvcModel.load`)."""
        loaded = RvcModel.load(model, content=content, pitch_model=pitch_model, index=index, device=device,
                               fcpe_model=fcpe_model)
        voice = cls(name, description=kwargs.pop("description", f"RVC {loaded.file.version} "  # type: ignore[arg-type]
                    f"{loaded.sample_rate // 1000}k"), sample_rate=loaded.sample_rate, loader=lambda: loaded,
                    f0=loaded.file.f0, has_index=loaded.index is not None, has_rmvpe="rmvpe" in loaded.trackers,
                    formant=getattr(loaded.synth, "supports_formant", True), has_fcpe="fcpe" in loaded.trackers,
                    info=loaded.file.describe(), **kwargs)
        voice._model = loaded
        return voice

    @property
    def model(self) -> RvcModel:
        with self._lock:
            if self._model is None:
                self._model = self._loader()
            return self._model

    @property
    def loaded(self) -> bool:
        """Whether the networks are in memory (they load on the first session)."""
        return self._model is not None

    @property
    def loaded_model(self) -> RvcModel | None:
        """The model if loaded, without loading it."""
        return self._model

    def unload(self) -> None:
        """Drop this voice's reference to its networks (erasure); a later use would load them again."""
        with self._lock:
            self._model = None

    @property
    def batch_key(self) -> object:
        """The engine batches voices whose ``batch_key`` is the same object: here the shared content encoder.

        :meth:`run` takes streams of any voice with this key (see :mod:`~rtvc.voices.rvc.frontend`).
        """
        return self.model.content

    def block_quantum(self, sample_rate: int) -> int:
        return sample_rate // 100  # RVC works in 10 ms frames

    def check_params(self, params: Mapping[str, object], *, partial: bool = False) -> dict[str, float]:
        checked = super().check_params(params, partial=partial)
        method = checked.get("f0_method")
        if method is not None:
            if method != round(method):
                raise ParamError(f"f0_method must be one of {F0_METHODS}, got {method:g}")
            if round(method) == 1 and not self.has_rmvpe:
                raise ParamError(f"voice {self.name!r} has no rmvpe.pt; use f0_method 0 (auto) or 2 (yin)")
            if round(method) == 3 and not self.has_fcpe:
                raise ParamError(f"FCPE weights are not installed ({FCPE_INSTALL}); use f0_method 0 (auto) "
                                 "or 2 (yin)")
        return checked

    def open(self, *, sample_rate: int, block: int, params: Mapping[str, float], seed: int | None = None) -> RVCStream:
        if sample_rate != self.sample_rate:
            raise ParamError(f"voice {self.name!r} runs at {self.sample_rate} Hz, not {sample_rate}")
        return RVCStream(self, block=block, params=dict(params), seed=seed)

    def run(self, streams: Sequence[VoiceStream], windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One block for each stream, of this voice or of any voice with the same :attr:`batch_key`.

        Content encoder and pitch trackers run batched over all streams, each voice's
        synthesizer over its own streams.
        """
        key = self.batch_key
        for stream in streams:
            if not isinstance(stream, RVCStream) or stream.voice.batch_key is not key:
                raise TypeError("RVCVoice.run takes streams of RVC voices sharing this voice's content encoder")
        return run_batch(streams, windows)

    def describe(self) -> dict:
        out = super().describe()
        out.update({"default_block_ms": self.default_block_ms, "rvc": self.info,
                    "index": self.has_index, "rmvpe": self.has_rmvpe, "fcpe": self.has_fcpe})
        return out


class RVCStream(VoiceStream):
    """One session of an RVC voice; see the module docstring for the block arithmetic."""

    def __init__(self, voice: RVCVoice, *, block: int, params: dict[str, float], seed: int | None) -> None:
        sr = voice.sample_rate
        zc = sr // 100
        if block <= 0 or block % zc:
            raise ParamError(f"RVC blocks must be whole 10 ms frames ({zc} samples at {sr} Hz), got {block}")
        self.voice, self.sample_rate = voice, sr
        self.params = dict(params)
        self.zc = zc
        crossfade = min(block, max(zc, round(params.get("crossfade_ms", 40.0) * sr / 1000 / zc) * zc))
        extra = max(zc, round(params.get("extra_ms", 500.0) * sr / 1000 / zc) * zc)
        self._resampler = ResampleStream(sr, 16000)
        self.layout = BlockLayout(block=block, context=extra + crossfade + zc, crossfade=crossfade, search=zc,
                                  delay=self._resampler.delay_in)
        self.frames = self.layout.window // zc  # p_len
        self.skip_head = extra // zc
        self.return_length = self.layout.rendered // zc
        self.block_frames = block // zc
        longest_f0 = 5120 * ((self.block_frames * HOP + F0_MARGIN_16K - 1) // 5120 + 1) - HOP
        self.history = torch.zeros(max(self.frames * HOP, longest_f0))
        self.f0_cache = torch.zeros(max(self.frames, frame_count(longest_f0)))
        self.generator = torch.Generator().manual_seed(seed if seed is not None else int(torch.seed() % 2**62))
        self.blocks = 0

    # -- stages, called by RVCVoice.run -----------------------------------------------------------------

    def ingest(self, window: np.ndarray) -> None:
        window = np.asarray(window, dtype=np.float32)
        if window.shape != (self.layout.window,):
            raise ValueError(f"expected a window of {self.layout.window} samples, got {window.shape}")
        new = torch.from_numpy(self._resampler.process(window[-self.layout.block:]).copy())
        n = len(new)  # exactly block * 16000 / sr: blocks are whole 10 ms frames
        self.history = torch.cat([self.history[n:], new])
        self.blocks += 1

    def tracker_name(self, model: RvcModel) -> str:
        method = F0_METHODS[int(round(self.params.get("f0_method", 0.0)))]
        if method == "auto":
            return next(name for name in ("rmvpe", "fcpe", "yin") if name in model.trackers)
        return method

    def f0_segment(self, model: RvcModel) -> int:
        """16 kHz samples the tracker reads: the block plus 50 ms (RMVPE: rounded up to 5120 k - 160)."""
        length = self.block_frames * HOP + F0_MARGIN_16K
        quantum = model.trackers[self.tracker_name(model)].segment_quantum
        if quantum > 1:
            length = quantum * ((length - 1) // quantum + 1) - HOP
        return length

    def update_pitch(self, f0: torch.Tensor) -> None:
        """Shift the cache by one block and write ``f0[3:-1]`` at its end (RVC's edge handling)."""
        shift = self.block_frames
        self.f0_cache = torch.cat([self.f0_cache[shift:], torch.zeros(shift)])
        kept = f0[3:-1]
        self.f0_cache[-len(kept):] = kept

    def job(self, model: RvcModel) -> RenderJob:
        noise = SynthNoise.draw(1, model.synth.config.inter_channels, self.frames, model.synth.hop,
                                nsf=model.file.f0, generator=self.generator)
        p = self.params
        return RenderJob(audio16k=self.history[-self.frames * HOP:], f0=self.f0_cache[-self.frames:].clone(),
                         noise=noise, skip_head=self.skip_head, return_length=self.return_length,
                         pitch=p.get("pitch", 0.0), formant=p.get("formant", 0.0),
                         index_rate=p.get("index_rate", 0.0), decoder_margin=self.voice.decoder_margin_frames,
                         protect=p.get("protect", PROTECT_OFF), rms_mix_rate=p.get("rms_mix_rate", 0.0))

    # -- VoiceStream ------------------------------------------------------------------------------------

    def process(self, window: np.ndarray) -> np.ndarray:
        return self.voice.run([self], [window])[0]

    def update(self, params: Mapping[str, float]) -> None:
        fixed = [name for name in LAYOUT_PARAMS if name in params and params[name] != self.params.get(name)]
        if fixed:
            log.warning("RVC %s: %s apply when a session opens; ignored mid-session", self.voice.name, fixed)
        self.params.update({k: v for k, v in params.items() if k not in LAYOUT_PARAMS})
