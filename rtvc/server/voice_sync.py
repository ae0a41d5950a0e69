"""The server's voices follow the voice store, and an erased voice leaves every copy: the server's registry,
the engine threads, every engine process.

    sync = VoiceSync(registry, backend)
    sync.refresh()                    # event loop, every poll: voices imported, replaced or erased elsewhere
    result = await sync.unload(name)  # event loop: drop everywhere, then verify (weights gone after a GC)
    result.verified
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from rtvc.session.backend import UnloadReply

__all__ = ["UnloadResult", "VoiceSync"]

log = logging.getLogger(__name__)

SETTLE_S = 1.0  # an engine thread may be finishing a block of the voice when its session is closed
SETTLE_STEP_S = 0.05


@dataclass(frozen=True, slots=True)
class UnloadResult:
    """What dropping ``voice`` found: each engine's reply and whether the server process still holds it."""

    voice: str
    engines: list[UnloadReply]
    server_still_loaded: bool

    @property
    def processes(self) -> int:
        return len(self.engines)

    @property
    def answered(self) -> int:
        return sum(reply.answered for reply in self.engines)

    @property
    def still_loaded(self) -> int:
        """Places that still hold the voice: engines (or those that did not answer) and the server itself."""
        return sum(reply.still_loaded for reply in self.engines) + int(self.server_still_loaded)

    @property
    def sessions_closed(self) -> int:
        return sum(reply.sessions_closed for reply in self.engines)

    @property
    def verified(self) -> bool:
        return self.answered == self.processes and self.still_loaded == 0

    def describe(self) -> str:
        holders = [r.where + ("" if r.answered else " (no answer)") for r in self.engines if r.still_loaded]
        if self.server_still_loaded:
            holders.append("the server process")
        if not holders:
            return f"voice {self.voice!r} unloaded from the server and {self.processes} engine(s)"
        return f"voice {self.voice!r} is still loaded in: {', '.join(holders)}"


class VoiceSync:
    """Voice store -> registry and engines (hot reload), and erasure -> unload everywhere, verified."""

    def __init__(self, registry: Any, backend: Any) -> None:
        self.registry = registry
        self.backend = backend

    def refresh(self) -> bool:
        """Event loop: follow the voice store (one ``stat`` when nothing changed); True if the voices changed."""
        refresh = getattr(self.registry, "refresh", None)
        if refresh is None:
            return False
        added, removed = refresh()
        if not (added or removed):
            return False
        self.backend.refresh_voices()
        return True

    async def unload(self, name: str) -> UnloadResult:
        """Event loop: drop ``name`` from the registry and every engine, then check nothing holds its weights."""
        unload = getattr(self.registry, "unload", None)
        if unload is None:  # a plain registry (tests): forgetting the name is all it can do
            self.registry.remove(name)
        else:
            unload(name, collect=False)
        engines = await self.backend.unload_voice(name)
        server_still = self._server_holds(name, collect=True)
        waited = 0.0
        while server_still and waited < SETTLE_S:  # cheap checks while an engine thread lets go; one GC at the end
            await asyncio.sleep(SETTLE_STEP_S)
            waited += SETTLE_STEP_S
            server_still = self._server_holds(name, collect=waited >= SETTLE_S)
        result = UnloadResult(name, engines, server_still)
        if result.verified:
            log.info("%s", result.describe())
        else:
            log.error("ERASURE NOT COMPLETE IN MEMORY: %s", result.describe())
        return result

    def _server_holds(self, name: str, *, collect: bool) -> bool:
        still_loaded = getattr(self.registry, "still_loaded", None)
        if still_loaded is None:
            return name in self.registry
        return name in self.registry or still_loaded(name, collect=collect)
