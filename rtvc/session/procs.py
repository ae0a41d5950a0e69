"""Engine processes: session streams run in ``workers`` child processes, each with its own GIL.

The DSP voices are many small numpy calls, so a thread engine is bound by the
server process's GIL (about one core for the engine and the event loop
together). Here each engine process (:mod:`rtvc.session.worker`) owns its
sessions' pipelines and runs them on its own engine thread; the server process
keeps the sockets, the sessions' output queues and the statistics. Input audio
goes down a pipe as mono float32; each engine pass comes back as one report.
A session stays on the process that opened it (its state never moves).

Voices: each process has its own registry. When a voice is erased, :meth:`ProcessBackend.unload_voice` asks
every process to drop it and answer whether its weights are still alive; :meth:`~ProcessBackend.refresh_voices`
has them follow the voice store; :meth:`~ProcessBackend.voices_loaded` asks what each one holds.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rtvc.engine import Admission, EngineSettings, LoadMeter
from rtvc.errors import EngineError
from rtvc.session.backend import UnloadReply, VoiceErased, audio_seconds, record_pass
from rtvc.session.build import StreamInfo
from rtvc.session.limits import Limits
from rtvc.session.queues import OutFrame
from rtvc.session.remote import EngineProc, RemoteError, RemoteStream, widen_pipe
from rtvc.session.request import StartRequest
from rtvc.session.worker import worker_main
from rtvc.voices.base import Voice

__all__ = ["ProcessBackend", "RemoteError", "RemoteStream"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # an engine process imports numpy, scipy and the voices before it is ready
RESTARTS_PER_MINUTE = 5  # an engine process that keeps dying is left dead (its cause needs a person)
OPEN_TIMEOUT_S = 30.0
# An engine process answers between two engine passes, and a pass may include loading a model (seconds on a busy
# machine); the unload itself (a GC) takes well under a second.
UNLOAD_TIMEOUT_S = 30.0


class ProcessBackend:
    """``settings.workers`` engine processes; see the module docstring."""

    def __init__(self, settings: EngineSettings, *, config: Mapping[str, Any], limits: Limits, data_dir: Path,
                 metrics: Any = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._config, self._limits, self._data_dir = config, limits, data_dir
        self._procs = [EngineProc(i, settings) for i in range(settings.workers)]
        self._admission = Admission(max_load=settings.max_load, window_s=settings.load_window_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._restarting: set[asyncio.Task] = set()

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.gather(*(asyncio.to_thread(self._spawn, proc) for proc in self._procs))

    def _spawn(self, proc: EngineProc) -> None:
        ctx = mp.get_context("spawn")  # no fork: the server process has threads and an event loop
        parent, child = ctx.Pipe(duplex=True)
        proc.process = ctx.Process(target=worker_main, name=f"rtvc-engine-{proc.index}", daemon=True,
                                   args=(child, dict(self._config), self._limits, str(self._data_dir)))
        proc.process.start()
        child.close()
        widen_pipe(parent)
        if not parent.poll(START_TIMEOUT_S) or parent.recv() != ("ready",):
            proc.process.kill()
            raise EngineError(f"engine process {proc.index} did not start within {START_TIMEOUT_S:g} s")
        proc.conn, proc.alive = parent, True
        proc.reader = threading.Thread(target=self._read, args=(proc,), name=f"rtvc-engine-pipe-{proc.index}",
                                       daemon=True)
        proc.reader.start()

    async def stop(self) -> None:
        self._stopping = True
        if self._restarting:
            await asyncio.gather(*self._restarting, return_exceptions=True)
        for proc in self._procs:
            if proc.alive:
                self.send(proc, ("stop",))
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        for proc in self._procs:
            if proc.process is None:
                continue
            proc.process.join(timeout=5.0)
            if proc.process.is_alive():
                proc.process.kill()
            if proc.conn is not None:
                proc.conn.close()

    # -- sessions -------------------------------------------------------------------------------------

    def admit(self, *, pending: int = 0) -> None:
        alive = [p for p in self._procs if p.alive]
        if not alive:
            raise EngineError("no engine process is running")
        self._admission.check([p.load for p in alive], sum(len(p.streams) for p in alive), pending=pending)

    async def open(self, voice: Voice, request: StartRequest, *, watermark_token: int | None) -> RemoteStream:
        alive = [p for p in self._procs if p.alive]
        if not alive:
            raise EngineError("no engine process is running")
        proc = min(alive, key=lambda p: len(p.streams) + len(p.opening))
        sid = secrets.token_hex(8)
        future = self._loop.create_future()
        proc.opening[sid] = future
        try:
            self.send(proc, ("open", sid, request.to_json(), watermark_token))
            info = await asyncio.wait_for(future, OPEN_TIMEOUT_S)
        finally:
            proc.opening.pop(sid, None)
        stream = RemoteStream(self, proc, sid, StreamInfo(**info), voice, request.input.sample_rate)
        proc.streams[sid] = stream
        return stream

    def send(self, proc: EngineProc, message: tuple) -> None:
        """Event loop: one message down the pipe (small; the engine process reads continuously)."""
        if not proc.alive or proc.conn is None:
            return
        try:
            proc.conn.send(message)
        except (OSError, ValueError) as exc:
            self._lost(proc, exc)

    # -- from the engine processes --------------------------------------------------------------------

    def _read(self, proc: EngineProc) -> None:  # reader thread, one per process
        conn = proc.conn
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError) as exc:
                self._call(self._lost, proc, exc)
                return
            self._call(self._on_message, proc, message)

    def _call(self, fn, *args) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # loop closing
                pass

    def _on_message(self, proc: EngineProc, message: tuple) -> None:  # event loop
        kind = message[0]
        if kind == "frames":
            self._on_frames(proc, message[1])
        elif kind == "report":
            self._on_report(proc, *message[1:])
        elif kind == "opened":
            future = proc.opening.get(message[1])
            if future is not None and not future.done():
                future.set_result(message[2])
        elif kind == "open_failed":
            future = proc.opening.get(message[1])
            if future is not None and not future.done():
                future.set_exception(RemoteError(message[3], message[2]))
        elif kind in ("unloaded", "voices"):
            future = proc.requests.get(message[1])
            if future is not None and not future.done():
                future.set_result(message[2:])

    def _on_report(self, proc: EngineProc, frames, failures, start, end, blocks_due, voice_calls, voice_blocks) -> None:
        proc.load.add(start, end)
        proc.queue_depth = blocks_due
        record_pass(self.metrics, start, end, voice_calls, voice_blocks)
        self._on_frames(proc, frames)
        for sid, code, text in failures:
            stream = proc.streams.get(sid)
            if stream is not None:
                stream.on_fail(RemoteError(text, code))

    def _on_frames(self, proc: EngineProc, frames: list[tuple]) -> None:
        for sid, pcm, samples, first, disc, last, ready, arrival, compute_s, queued, dropped in frames:
            stream = proc.streams.get(sid)
            if stream is not None:
                frame = OutFrame(pcm, samples, first, disc, last, ready, arrival, compute_s=compute_s)
                self._admission.converted(audio_seconds(stream.info, samples))
                stream._report(frame, queued, dropped)

    def _lost(self, proc: EngineProc, exc: BaseException) -> None:  # event loop
        if not proc.alive:
            return
        proc.alive = False
        if not self._stopping:
            log.error("engine process %d is gone (%s); failing its %d session(s)", proc.index, exc, len(proc.streams))
        error = RemoteError("the engine process running this session stopped", "internal")
        for future in [*proc.opening.values(), *proc.requests.values()]:
            if not future.done():
                future.set_exception(error)
        for stream in list(proc.streams.values()):
            stream.on_fail(error)
        if not self._stopping:
            self._restart_later(proc)

    def _restart_later(self, proc: EngineProc) -> None:  # event loop
        now = time.monotonic()
        proc.restarts = [t for t in proc.restarts if now - t < 60.0]
        if len(proc.restarts) >= RESTARTS_PER_MINUTE:
            log.error("engine process %d died %d times within a minute; not restarting it", proc.index,
                      len(proc.restarts))
            return
        proc.restarts.append(now)
        task = asyncio.ensure_future(self._restart(proc))
        self._restarting.add(task)
        task.add_done_callback(self._restarting.discard)

    async def _restart(self, proc: EngineProc) -> None:
        """A fresh process in the dead one's place; its sessions have ended, new ones can use it again."""
        old, conn = proc.process, proc.conn
        if old is not None:
            await asyncio.to_thread(old.join, 2.0)
            if old.is_alive():
                old.kill()
        if conn is not None:
            conn.close()
        proc.streams.clear()
        proc.load = LoadMeter(self.settings.load_window_s)
        try:
            await asyncio.to_thread(self._spawn, proc)
        except (EngineError, OSError) as exc:
            log.error("engine process %d could not be restarted: %s", proc.index, exc)
            return
        if self._stopping:  # shut down while it was starting
            self.send(proc, ("stop",))
            return
        log.warning("engine process %d restarted (pid %d)", proc.index, proc.process.pid)

    # -- voice lifecycle: erasure and hot reload ------------------------------------------------------

    async def _ask(self, proc: EngineProc, verb: str, *args: Any, timeout_s: float) -> tuple | None:
        """Send ``(verb, req, *args)`` and wait for the answer's fields; None if none came in time."""
        req = secrets.token_hex(6)
        future = self._loop.create_future()
        proc.requests[req] = future
        try:
            self.send(proc, (verb, req, *args))
            return await asyncio.wait_for(future, timeout_s)
        except (TimeoutError, RemoteError):
            return None
        finally:
            proc.requests.pop(req, None)

    async def unload_voice(self, name: str, *, timeout_s: float = UNLOAD_TIMEOUT_S) -> list[UnloadReply]:
        """Every running engine process drops voice ``name`` (streams, registry entry, weights) and says whether
        it still holds it; a process that does not answer in time counts as still holding it."""
        alive = [p for p in self._procs if p.alive]
        answers = await asyncio.gather(*(self._ask(p, "unload", name, timeout_s=timeout_s) for p in alive))
        replies = []
        for proc, answer in zip(alive, answers, strict=True):
            where = f"engine process {proc.index} (pid {proc.process.pid})"
            if answer is None:
                replies.append(UnloadReply(where, answered=False, still_loaded=True, sessions_closed=0))
                continue
            _, still_loaded, closed = answer
            for sid in closed:  # sessions the server had not ended yet: they end now, without their voice
                stream = proc.streams.pop(sid, None)
                if stream is not None:
                    stream.on_fail(VoiceErased(f"voice {name!r} was erased"))
            replies.append(UnloadReply(where, answered=True, still_loaded=bool(still_loaded),
                                       sessions_closed=len(closed)))
        return replies

    async def voices_loaded(self, *, timeout_s: float = UNLOAD_TIMEOUT_S) -> list[dict[str, Any] | None]:
        """Per engine process: ``{"registered", "loaded", "streams"}`` voice names (None: no answer)."""
        alive = [p for p in self._procs if p.alive]
        answers = await asyncio.gather(*(self._ask(p, "voices", timeout_s=timeout_s) for p in alive))
        return [None if answer is None else answer[0] for answer in answers]

    def refresh_voices(self) -> None:
        """Event loop: the voice store changed; every engine process follows it."""
        for proc in self._procs:
            if proc.alive:
                self.send(proc, ("refresh",))

    # -- measurements ---------------------------------------------------------------------------------

    def load(self) -> float:
        now = time.perf_counter()
        alive = [p for p in self._procs if p.alive] or self._procs
        return sum(p.load.busy_fraction(now) for p in alive) / len(alive)

    def queue_depth(self) -> int:
        return sum(p.queue_depth for p in self._procs)

    def session_count(self) -> int:
        return sum(len(p.streams) for p in self._procs)

