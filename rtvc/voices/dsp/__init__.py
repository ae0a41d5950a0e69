"""Built-in voices made from signal processing alone (no model weights)."""

from rtvc.voices.dsp.catalog import builtin_dsp_voices
from rtvc.voices.dsp.psola import PsolaShifter
from rtvc.voices.dsp.voice import DspVoice, PassthroughVoice

__all__ = ["DspVoice", "PassthroughVoice", "PsolaShifter", "builtin_dsp_voices"]
