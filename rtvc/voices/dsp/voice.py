"""DSP voices: the PSOLA shifter plus an optional character effect, behind the Voice interface.

A DSP voice runs at whatever rate the pipeline opens it with, takes blocks of
any fixed length and returns each block delayed by a fixed number of samples
(``layout.delay``), which depends only on the rate. Its state (pitch frames,
marks, the overlap-add buffer) lives in the stream, so block boundaries leave
no joins, and its output is a deterministic function of the input samples and
the parameter values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np

from rtvc.errors import AudioFormatError, AudioValueError
from rtvc.voices.base import BlockLayout, ParamSpec, Voice, VoiceStream
from rtvc.voices.dsp.effects import BandPass, MetallicComb, Saturation
from rtvc.voices.dsp.psola import PsolaShifter

__all__ = ["MIN_RATE_HZ", "MAX_RATE_HZ", "DspVoice", "PassthroughVoice", "formant_param", "pitch_param"]

MIN_RATE_HZ = 8000
MAX_RATE_HZ = 96000
FORMANT_RANGE = (0.7, 1.4)
PITCH_RANGE_ST = (-12.0, 12.0)
ROBOT_BASE_HZ = 110.0  # the robot's monotone at pitch 0

Effect = Literal["radio", "robot"] | None


def pitch_param(default: float, description: str = "pitch shift") -> ParamSpec:
    return ParamSpec("pitch", default, *PITCH_RANGE_ST, "semitones", description)


def formant_param(default: float) -> ParamSpec:
    return ParamSpec("formant", default, *FORMANT_RANGE, "ratio",
                     "formant (vocal tract) scaling; above 1 sounds smaller, below 1 larger")


def _check_open(sample_rate: int, block: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        raise AudioFormatError(f"sample rate must be an integer number of Hz, got {sample_rate!r}")
    if not MIN_RATE_HZ <= sample_rate <= MAX_RATE_HZ:
        raise AudioFormatError(f"DSP voices run at {MIN_RATE_HZ}..{MAX_RATE_HZ} Hz, got {sample_rate} Hz")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise AudioFormatError(f"block must be a positive number of samples, got {block!r}")


def _check_block(window: np.ndarray, block: int) -> np.ndarray:
    window = np.asarray(window)
    if window.shape != (block,):
        raise AudioFormatError(f"expected a block of shape ({block},), got {window.shape}")
    if not np.isfinite(window).all():  # NaN would poison the stream's state for good
        raise AudioValueError("block contains NaN or infinite samples")
    return window.astype(np.float64, copy=False)


class DspVoice(Voice):
    """A voice built from :class:`PsolaShifter` and an optional effect.

    Parameters
    ----------
    name, description : str
    pitch_st, formant : float
        Defaults of the ``pitch`` (semitones) and ``formant`` (ratio) parameters.
    effect : "radio", "robot" or None
        ``robot``: the pitch parameter sets a flat output F0 (``110 Hz * 2**(pitch/12)``)
        and a metallic comb colours the result. ``radio``: a 300-3400 Hz band and light
        saturation after the shifter.
    """

    kind = "dsp"
    sample_rate = None
    keeps_timing = True

    def __init__(self, name: str, description: str, *, pitch_st: float = 0.0, formant: float = 1.0,
                 effect: Effect = None) -> None:
        self.name, self.description, self.effect = name, description, effect
        pitch_text = f"robot monotone, semitones from {ROBOT_BASE_HZ:g} Hz" if effect == "robot" else "pitch shift"
        self.params = (pitch_param(pitch_st, pitch_text), formant_param(formant))

    def delay(self, sample_rate: int) -> int:
        """The stream delay in samples at ``sample_rate`` (the same for every parameter value)."""
        return PsolaShifter.delay_for(sample_rate)

    def open(self, *, sample_rate: int, block: int, params: Mapping[str, float]) -> DspStream:
        _check_open(sample_rate, block)
        # params come checked (the pipeline may add its own keys, e.g. the gate): take ours, defaults for the rest
        own = {spec.name: float(params.get(spec.name, spec.default)) for spec in self.params}
        return DspStream(self, sample_rate, block, own)


class DspStream(VoiceStream):
    """One session of a :class:`DspVoice`."""

    def __init__(self, voice: DspVoice, sample_rate: int, block: int, params: Mapping[str, float]) -> None:
        self.sample_rate = sample_rate
        self._voice = voice
        self._shifter = PsolaShifter(sample_rate, formant_max=FORMANT_RANGE[1])
        self.layout = BlockLayout(block=block, delay=self._shifter.delay)
        self._stages: list[Callable[[np.ndarray], np.ndarray]] = []
        if voice.effect == "radio":
            self._stages = [BandPass(sample_rate).process, Saturation().process]
        elif voice.effect == "robot":
            self._stages = [MetallicComb(sample_rate).process]
        self.params: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self._apply(dict(params))

    def update(self, params: Mapping[str, float]) -> None:
        self._pending.update(params)

    def process(self, window: np.ndarray) -> np.ndarray:
        x = _check_block(window, self.layout.block)
        if self._pending:
            self._apply(self._pending)
            self._pending = {}
        y = self._shifter.process(x)
        for stage in self._stages:
            y = stage(y)
        return np.asarray(y, dtype=np.float32)

    def _apply(self, params: Mapping[str, float]) -> None:
        self.params.update((name, params[name]) for name in ("pitch", "formant") if name in params)
        pitch, formant = self.params.get("pitch"), self.params.get("formant")
        if self._voice.effect == "robot":
            monotone = None if pitch is None else ROBOT_BASE_HZ * 2.0 ** (pitch / 12.0)
            self._shifter.set(formant=formant, monotone_hz=monotone)
        else:
            self._shifter.set(pitch_st=pitch, formant=formant)


class PassthroughVoice(Voice):
    """The input, unchanged and undelayed: checks the audio path end to end."""

    kind = "dsp"
    sample_rate = None
    keeps_timing = True
    params = ()

    def __init__(self, name: str = "passthrough", description: str = "your own voice, unchanged") -> None:
        self.name, self.description = name, description

    def delay(self, sample_rate: int) -> int:
        return 0

    def open(self, *, sample_rate: int, block: int, params: Mapping[str, float]) -> PassthroughStream:
        _check_open(sample_rate, block)
        return PassthroughStream(sample_rate, block)


class PassthroughStream(VoiceStream):
    def __init__(self, sample_rate: int, block: int) -> None:
        self.sample_rate = sample_rate
        self.layout = BlockLayout(block=block)

    def process(self, window: np.ndarray) -> np.ndarray:
        return _check_block(window, self.layout.block).astype(np.float32)

    def update(self, params: Mapping[str, float]) -> None:
        return None
