"""Where voices are looked up by name: the built-in DSP voices, and the RVC voices of the data dir's voice store.

A registry made by :meth:`VoiceRegistry.from_config` follows its voice store while the server runs:
:meth:`~VoiceRegistry.refresh` adds voices imported since (another process may have imported them), drops
erased ones and swaps replaced ones. :meth:`~VoiceRegistry.unload` forgets a voice and verifies that its weights
are gone from this process (weak references, then a garbage collection), which erasure relies on.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rtvc.errors import ConfigError, ModelLoadError, UnknownVoice
from rtvc.voices.base import Voice
from rtvc.voices.dsp.catalog import builtin_dsp_voices
from rtvc.voices.store import NAME_RE, StoredVoice, VoiceStore

__all__ = ["VoiceRegistry", "builtin_voices", "holds_weights"]

log = logging.getLogger(__name__)

SETTLED_NS = 1_000_000_000


def builtin_voices() -> list[Voice]:
    """Every voice that needs no downloaded weights."""
    return builtin_dsp_voices()


def holds_weights(voice: object) -> bool:
    """Whether ``voice`` has model weights in memory (lazy RVC voices load them on their first session)."""
    return bool(getattr(voice, "loaded", False))  # built-in voices have no weights


def _release_weights(voice: object) -> None:
    """Drop the voice's weights even if something still holds the voice object (a stream not yet closed)."""
    unload = getattr(voice, "unload", None)
    if callable(unload):
        unload()


def _signature(record: StoredVoice) -> tuple:
    return record.created, tuple(sorted((role, f.sha256) for role, f in record.files.items()))


def _dir_mark(path: Path) -> tuple[int, int, int] | None:
    """Changes whenever an entry of ``path`` is added, removed or renamed over (records are written by rename)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_ino


class VoiceRegistry:
    """Voices by name, in the order they were added.

    ``VoiceRegistry()`` holds the built-in voices; pass ``voices`` to start from others.
    """

    def __init__(self, voices: Iterable[Voice] | None = None) -> None:
        self._voices: dict[str, Voice] = {}
        self._store: VoiceStore | None = None
        self._voice_settings: dict[str, Any] = {}
        self._stored: dict[str, tuple] = {}  # name -> signature of the store record it came from
        self._store_mark: tuple[int, int, int] | None = None
        self._released: dict[str, list[weakref.ref]] = {}  # unloaded voices and models, to verify they are gone
        for voice in builtin_voices() if voices is None else voices:
            self.add(voice)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, data_dir: str | Path | None = None) -> VoiceRegistry:
        """Built-in voices, then the RVC voices imported into the data dir (``[server] data_dir`` by default)."""
        root = Path(data_dir if data_dir is not None else config["server"]["data_dir"]).expanduser()
        registry = cls()
        rvc = config.get("rvc", {})
        device = rvc.get("device", "auto")
        registry._store = VoiceStore(root)
        registry._voice_settings = {"device": None if device == "auto" else device,
                                    "backend": rvc.get("backend", "torch")}
        registry.refresh(force=True)
        return registry

    # -- following the voice store ------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> tuple[list[str], list[str]]:
        """Match the voice store: returns (names added, names removed); a replaced voice is in both.

        Cheap when the store did not change (one ``stat``) unless ``force``. No-op for a registry not made by
        :meth:`from_config`. Unreadable records are skipped with a warning.
        """
        if self._store is None:
            return [], []
        mark = _dir_mark(self._store.root)
        if not force and mark == self._store_mark:
            return [], []
        # Taken before reading, so a change made meanwhile is seen next time; a mark younger than the timestamp
        # granularity could hide a second change in the same tick, so it is read again until it is a second old.
        settled = mark is None or time.time_ns() - mark[0] > SETTLED_NS
        self._store_mark = mark if settled else None
        records: dict[str, StoredVoice] = {}
        for name in self._store.names():
            try:
                record = self._store.get(name)
            except (ModelLoadError, UnknownVoice) as exc:  # vanished or unreadable: skip, never fail the server
                log.warning("voice store: skipping %s: %s", name, exc)
                continue
            if record.kind == "rvc":
                records[name] = record
        removed = [name for name, sig in self._stored.items()
                   if name not in records or _signature(records[name]) != sig]
        for name in removed:
            self.unload(name, collect=False)
        added = []
        for name, record in records.items():
            if name in self._stored:
                continue
            if name in self._voices:
                log.warning("voice store: %s has the name of a built-in voice; not loaded", name)
                continue
            from rtvc.voices.rvc.library import voice_from_record  # torch: only when stored voices are there

            self._voices[name] = voice_from_record(record, **self._voice_settings)
            self._stored[name] = _signature(record)
            added.append(name)
        if added or removed:
            log.info("voice store changed: added %s, removed %s", added or "-", removed or "-")
        return added, removed

    def lookup(self, name: str) -> Voice:
        """:meth:`get`, reloading from the voice store first if ``name`` is unknown here but stored there."""
        try:
            return self.get(name)
        except UnknownVoice:
            if self._store is None or not isinstance(name, str) or not NAME_RE.match(name):
                raise
            self.refresh(force=(self._store.root / f"{name}.json").is_file())
            return self.get(name)

    # -- unloading -----------------------------------------------------------------------------------------

    def unload(self, name: str, *, collect: bool = True) -> bool:
        """Forget ``name`` and drop its weights. Returns True if they are still in memory in this process
        (something holds the model), checked after a garbage collection when ``collect``."""
        voice = self._voices.pop(name, None)
        self._stored.pop(name, None)
        if voice is not None:
            refs = self._released.setdefault(name, [])
            refs.append(weakref.ref(voice))
            model = getattr(voice, "loaded_model", None)
            if model is not None:
                refs.append(weakref.ref(model))
            _release_weights(voice)
            del voice, model
        return self.still_loaded(name, collect=collect)

    def still_loaded(self, name: str, *, collect: bool = False) -> bool:
        """Whether ``name`` is registered with weights, or an unloaded copy's weights are still alive."""
        if not self._held(name):
            return False
        if collect:
            gc.collect()  # cheap: objects frozen at startup (gc.freeze) are skipped
            if self._held(name):
                gc.unfreeze()  # an unloaded model could hide in the frozen generation: one full pass
                gc.collect()
                gc.freeze()
        return self._held(name)

    def loaded(self) -> list[str]:
        """Names whose weights are in memory in this process (registered or not)."""
        names = {name for name, voice in self._voices.items() if holds_weights(voice)}
        return sorted(names | {name for name in self._released if self._held(name)})

    def _held(self, name: str) -> bool:
        voice = self._voices.get(name)
        if voice is not None and holds_weights(voice):
            return True
        refs = [ref for ref in self._released.get(name, ()) if ref() is not None]
        if refs:
            self._released[name] = refs
        else:
            self._released.pop(name, None)
        # a released voice object may linger (a closing session describes it); only weights count
        return any(not isinstance(obj, Voice) or holds_weights(obj) for obj in (ref() for ref in refs)
                   if obj is not None)

    # -- the registry --------------------------------------------------------------------------------------

    def add(self, voice: Voice) -> None:
        """Register ``voice``; a second voice with the same name is a ConfigError."""
        if voice.name in self._voices:
            raise ConfigError(f"two voices are named {voice.name!r}")
        self._voices[voice.name] = voice

    def remove(self, name: str) -> Voice | None:
        """Forget ``name`` without verifying anything; returns the voice, or None if it was not here."""
        self._stored.pop(name, None)
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
