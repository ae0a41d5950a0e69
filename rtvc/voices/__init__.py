"""Voices: what turns a block of input speech into a block of converted speech."""

from rtvc.voices.base import BlockLayout, ParamSpec, Voice, VoiceStream

__all__ = ["BlockLayout", "ParamSpec", "Voice", "VoiceStream"]
