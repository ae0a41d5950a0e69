"""Where voices are looked up by name: the built-in DSP voices now, RVC models later."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rtvc.errors import ConfigError, UnknownVoice
from rtvc.voices.base import Voice
from rtvc.voices.dsp.catalog import builtin_dsp_voices

__all__ = ["VoiceRegistry", "builtin_voices"]


def builtin_voices() -> list[Voice]:
    """Every voice that needs no downloaded weights."""
    return builtin_dsp_voices()


class VoiceRegistry:
    """Voices by name, in the order they were added.

    ``VoiceRegistry()`` holds the built-in voices; pass ``voices`` to start from others.
    """

    def __init__(self, voices: Iterable[Voice] | None = None) -> None:
        self._voices: dict[str, Voice] = {}
        for voice in builtin_voices() if voices is None else voices:
            self.add(voice)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, data_dir: str | Path | None = None) -> VoiceRegistry:
        """Built-in voices, then the RVC voices imported into the data dir (``[server] data_dir`` by default)."""
        from rtvc.voices.rvc.library import stored_rvc_voices  # torch: only when stored voices are wanted

        root = Path(data_dir if data_dir is not None else config["server"]["data_dir"]).expanduser()
        registry = cls()
        rvc = config.get("rvc", {})
        device = rvc.get("device", "auto")
        if root.is_dir():
            for voice in stored_rvc_voices(root, device=None if device == "auto" else device,
                                           backend=rvc.get("backend", "torch")):
                registry.add(voice)
        return registry

    def add(self, voice: Voice) -> None:
        """Register ``voice``; a second voice with the same name is a ConfigError."""
        if voice.name in self._voices:
            raise ConfigError(f"two voices are named {voice.name!r}")
        self._voices[voice.name] = voice

    def remove(self, name: str) -> Voice | None:
        """Forget ``name`` (after erasure); returns the voice, or None if it was not here."""
        return self._voices.pop(name, None)

    def get(self, name: str) -> Voice:
        """The voice called ``name``; UnknownVoice (lists the known ones) if there is none."""
        try:
            return self._voices[name]
        except (KeyError, TypeError):
            raise UnknownVoice(str(name), list(self._voices)) from None

    def names(self) -> list[str]:
        return list(self._voices)

    def describe(self) -> list[dict]:
        """JSON-ready descriptions of every voice (``rtvc voices --json``)."""
        return [voice.describe() for voice in self._voices.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._voices

    def __iter__(self) -> Iterator[Voice]:
        return iter(self._voices.values())

    def __len__(self) -> int:
        return len(self._voices)
