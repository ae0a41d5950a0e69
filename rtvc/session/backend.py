"""Where session streams run: engine threads in this process, or engine processes.

Both backends give the session the same :class:`StreamHandle`; the session
never knows which one it has. ``[engine] mode`` picks one (:func:`make_backend`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rtvc.engine import Engine, EngineSettings, PassReport
from rtvc.errors import EngineError
from rtvc.session.build import StreamInfo, build_stream
from rtvc.session.limits import Limits
from rtvc.session.queues import OutFrame
from rtvc.session.request import StartRequest
from rtvc.session.stream import SessionStream
from rtvc.voices.base import Voice

__all__ = ["Backend", "LocalBackend", "StreamHandle", "UnloadReply", "VoiceErased", "audio_seconds", "make_backend",
           "record_pass"]

FrameFn = Callable[[OutFrame], None]
FailFn = Callable[[BaseException], None]


class VoiceErased(EngineError):
    """A session still running when its voice was erased (its grant's revocation normally ended it first)."""

    code = "no_consent"


@dataclass(frozen=True, slots=True)
class UnloadReply:
    """One engine's answer to "drop this voice": ``where`` it ran, whether it ``answered`` in time, whether it
    ``still_loaded`` the voice's weights afterwards, and how many sessions of the voice it had to close."""

    where: str
    answered: bool
    still_loaded: bool
    sessions_closed: int = 0


class StreamHandle(Protocol):
    """A session's stream as the session drives it (event loop thread only)."""

    info: StreamInfo

    @property
    def dropped_in(self) -> int: ...

    def bind(self, on_frame: FrameFn, on_fail: FailFn) -> None: ...

    def push(self, mono: np.ndarray, arrival: float, *, skipped: int = 0, discontinuity: bool = False) -> None: ...

    def finish_input(self) -> None: ...

    def update(self, params: Mapping[str, Any]) -> None: ...

    def queued_ms(self) -> float: ...

    def close(self) -> None: ...


class Backend(Protocol):
    settings: EngineSettings
    metrics: Any

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def admit(self, *, pending: int = 0) -> None: ...

    async def open(self, voice: Voice, request: StartRequest, *, watermark_token: int | None) -> StreamHandle: ...

    def load(self) -> float: ...

    def queue_depth(self) -> int: ...

    def session_count(self) -> int: ...

    async def unload_voice(self, name: str) -> list[UnloadReply]: ...

    def refresh_voices(self) -> None: ...


def audio_seconds(info: StreamInfo, samples: int) -> float:
    """Duration of ``samples`` output samples of a stream (for the engine's real-time factor)."""
    return samples * info.block_ms / (1000.0 * info.block_out)


def record_pass(metrics: Any, start: float, end: float, voice_calls: int, voice_blocks: int) -> None:
    if metrics is not None:
        metrics.engine_pass_done(end - start, voice_blocks)
        if voice_calls:
            metrics.voice_call(voice_calls, voice_blocks)


class LocalStream:
    """A stream run by engine threads of this process."""

    def __init__(self, engine: Engine, stream: SessionStream, info: StreamInfo) -> None:
        self.info = info
        self._engine = engine
        self._stream = stream
        self._handle = None
        self.on_frame: FrameFn = _ignore
        self.on_fail: FailFn = _ignore

    @property
    def dropped_in(self) -> int:
        return self._stream.dropped

    def bind(self, on_frame: FrameFn, on_fail: FailFn) -> None:
        self.on_frame, self.on_fail = on_frame, on_fail
        self._handle = self._engine.add(self._stream, key=self)

    def push(self, mono: np.ndarray, arrival: float, *, skipped: int = 0, discontinuity: bool = False) -> None:
        self._stream.push(mono, arrival, skipped=skipped, discontinuity=discontinuity)
        Engine.wake(self._handle)

    def finish_input(self) -> None:
        self._stream.finish_input()
        Engine.wake(self._handle)

    def update(self, params: Mapping[str, Any]) -> None:
        self._stream.pipeline.update(params)

    def queued_ms(self) -> float:
        return self._stream.queued_ms()

    def close(self) -> None:
        self.on_frame, self.on_fail = _ignore, _ignore
        if self._handle is not None:
            Engine.remove(self._handle)


def _ignore(_: object) -> None:
    return None


class LocalBackend:
    """Engine threads in the server process: no IPC, but all Python work shares one GIL."""

    def __init__(self, settings: EngineSettings, *, config: Mapping[str, Any], limits: Limits, data_dir: Path,
                 metrics: Any = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._config, self._limits, self._data_dir = config, limits, data_dir
        self._loop: asyncio.AbstractEventLoop | None = None
        self.engine = Engine(settings, dispatch=self._dispatch)
        self._streams: weakref.WeakSet[LocalStream] = weakref.WeakSet()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.engine.start()

    async def stop(self) -> None:
        self.engine.stop()

    def admit(self, *, pending: int = 0) -> None:
        self.engine.admit(pending=pending)

    async def open(self, voice: Voice, request: StartRequest, *, watermark_token: int | None) -> LocalStream:
        stream, info = await asyncio.to_thread(build_stream, voice, request, config=self._config,
                                               limits=self._limits, data_dir=self._data_dir,
                                               watermark_token=watermark_token)
        local = LocalStream(self.engine, stream, info)
        self._streams.add(local)
        return local

    async def unload_voice(self, name: str) -> list[UnloadReply]:
        """Close any stream of voice ``name`` still here; the voice's weights live in the server's registry, which
        the caller unloads and verifies."""
        left = [s for s in list(self._streams) if s._handle is not None and not s._handle.removed
                and s._stream.voice.name == name]
        for stream in left:
            stream.on_fail(VoiceErased(f"voice {name!r} was erased"))
            stream.close()
        return [UnloadReply("engine threads", answered=True, still_loaded=False, sessions_closed=len(left))]

    def refresh_voices(self) -> None:
        """The engine threads use the server's registry: nothing of their own to refresh."""

    def load(self) -> float:
        return self.engine.load()

    def queue_depth(self) -> int:
        return self.engine.queue_depth()

    def session_count(self) -> int:
        return self.engine.session_count()

    def _dispatch(self, report: PassReport) -> None:  # engine thread
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, report)

    def _deliver(self, report: PassReport) -> None:  # event loop
        if not report.partial:
            record_pass(self.metrics, report.start, report.end, report.voice_calls, report.voice_blocks)
        for handle, frame in report.outputs:
            self.engine.admission.converted(audio_seconds(handle.key.info, frame.samples))
            handle.key.on_frame(frame)
        for handle, exc in report.failures:
            handle.key.on_fail(exc)


def make_backend(settings: EngineSettings, *, config: Mapping[str, Any], limits: Limits, data_dir: Path,
                 metrics: Any = None) -> Backend:
    """The backend ``settings.mode`` names."""
    if settings.mode == "thread":
        return LocalBackend(settings, config=config, limits=limits, data_dir=data_dir, metrics=metrics)
    from rtvc.session.procs import ProcessBackend

    return ProcessBackend(settings, config=config, limits=limits, data_dir=data_dir, metrics=metrics)
