"""The built-in DSP voices: presets of the PSOLA shifter and its effects.

Pitch presets follow the usual size of the change: about a fourth (5
semitones) for a clearly higher or lower but still natural voice, half an
octave with matching formants for the male/female presets (a shorter vocal
tract raises formants by roughly 15-20 %), more for the character voices.
"""

from __future__ import annotations

from rtvc.voices.base import Voice
from rtvc.voices.dsp.voice import DspVoice, PassthroughVoice

__all__ = ["builtin_dsp_voices"]


def builtin_dsp_voices() -> list[Voice]:
    """Fresh instances of every built-in DSP voice, in the order ``rtvc voices`` lists them."""
    return [
        PassthroughVoice(),
        DspVoice("higher", "higher pitch (+5 semitones), same formants: still sounds like you",
                 pitch_st=5.0),
        DspVoice("lower", "lower pitch (-5 semitones), same formants: still sounds like you",
                 pitch_st=-5.0),
        DspVoice("feminine", "male-to-female preset: pitch +6 semitones, formants x1.18",
                 pitch_st=6.0, formant=1.18),
        DspVoice("masculine", "female-to-male preset: pitch -6 semitones, formants x0.85",
                 pitch_st=-6.0, formant=0.85),
        DspVoice("robot", "robot: flat monotone pitch (110 Hz at pitch 0) with a metallic ring",
                 effect="robot"),
        DspVoice("giant", "giant: deep and big, pitch -9 semitones, formants x0.78",
                 pitch_st=-9.0, formant=0.78),
        DspVoice("critter", "small creature: pitch +9 semitones, formants x1.35",
                 pitch_st=9.0, formant=1.35),
        DspVoice("radio", "radio/telephone: 300-3400 Hz band with light saturation; pitch and formant optional",
                 effect="radio"),
    ]
