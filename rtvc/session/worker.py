"""The engine process: runs session streams for the server process, over one duplex pipe.

One thread: it handles every waiting command, runs one engine pass (all due
blocks, model calls grouped per voice), reports it, and sleeps on the pipe
until a command comes or a throttled block falls due.

Messages from the server (tuples, first item the verb)::

    ("open", sid, request_json, watermark_token)  -> ("opened", sid, StreamInfo dict) | ("open_failed", sid, code, msg)
    ("audio", sid, float32_bytes, arrival, skipped, discontinuity)
    ("update", sid, params)        already validated by the server
    ("end", sid)                   no more input: flush the tail
    ("close", sid)                 forget the session now
    ("unload", req, voice)         erased: drop the voice's streams, registry entry and weights, verify (after a GC)
                                   -> ("unloaded", req, voice, still_loaded, closed_sids)
    ("voices", req)                -> ("voices", req, {"registered": [...], "loaded": [...], "streams": [...]})
    ("refresh",)                   the voice store changed: follow it (new, replaced and erased voices)
    ("stop",)

An ``open`` naming a voice this process does not know reloads the voice store once before it fails, so voices
imported while the server runs stream without a restart.

To the server, once per engine pass::

    ("report", frames, failures, start, end, blocks_due, voice_calls, voice_blocks)
    ("frames", frames)             blocks finished early in a long pass (see EngineSettings.handoff_ms)
    frames:   [(sid, pcm, samples, start_sample, discontinuity, last, ready, arrival, compute_s,
                queued_in_samples, dropped_in_total), ...]
    failures: [(sid, code, message), ...]

Times are ``perf_counter`` values (CLOCK_MONOTONIC: the same clock in both processes).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from rtvc.engine import Engine, EngineSettings, PassReport
from rtvc.errors import RtvcError
from rtvc.session.build import build_stream, default_registry
from rtvc.session.limits import Limits
from rtvc.session.request import StartRequest
from rtvc.session.stream import SessionStream

__all__ = ["worker_main"]

log = logging.getLogger(__name__)


class _Worker:
    """Single-threaded: reads commands between engine passes, so no GIL is shared inside the process."""

    def __init__(self, conn: Connection, config: Mapping[str, Any], limits: Limits, data_dir: Path) -> None:
        self.conn = conn
        self.config, self.limits, self.data_dir = config, limits, data_dir
        self.registry = default_registry(config, data_dir)
        self.streams: dict[str, tuple[SessionStream, Any]] = {}
        self.engine = Engine(EngineSettings(mode="thread", workers=1))
        self.handlers = {"open": self.open, "audio": self.audio, "update": self.update, "end": self.end,
                         "close": self.close, "unload": self.unload, "voices": self.voices, "refresh": self.refresh}

    def run(self) -> None:
        gc.freeze()  # the voices and libraries stay for the process's life: no full-GC pauses over them
        self.conn.send(("ready",))
        try:
            while True:
                if not self._drain():
                    return
                report, retry = self.engine.step(handoff=self._send_frames)
                if report is not None:
                    self._send_report(report)
                    continue  # more blocks may be due; commands are read again first
                timeout = None if retry is None else max(0.0, retry - time.perf_counter())
                self.conn.poll(timeout)
        except (EOFError, OSError, KeyboardInterrupt):  # the server went away: nothing left to serve
            return

    def _drain(self) -> bool:
        """Handle every command already waiting; False once told to stop."""
        while self.conn.poll(0):
            message = self.conn.recv()
            if message[0] == "stop":
                return False
            self.handlers[message[0]](*message[1:])
        return True

    def _send_frames(self, report: PassReport) -> None:
        self.conn.send(("frames", _frames(report)))

    def _send_report(self, report: PassReport) -> None:
        frames = _frames(report)
        failures = [(h.key, getattr(exc, "code", "internal"), _describe(exc)) for h, exc in report.failures]
        self.conn.send(("report", frames, failures, report.start, report.end, report.blocks_due, report.voice_calls,
                        report.voice_blocks))

    def open(self, sid: str, request_json: dict, token: int | None) -> None:
        try:
            request = StartRequest.from_json(request_json)
            stream, info = build_stream(self.registry.lookup(request.voice), request, config=self.config,
                                        limits=self.limits, data_dir=self.data_dir, watermark_token=token)
        except Exception as exc:
            self.conn.send(("open_failed", sid, getattr(exc, "code", "internal"), _describe(exc)))
            return
        self.streams[sid] = (stream, self.engine.add(stream, key=sid))
        self.conn.send(("opened", sid, info.to_dict()))

    def audio(self, sid: str, data: bytes, arrival: float, skipped: int, discontinuity: bool) -> None:
        entry = self.streams.get(sid)
        if entry is not None:
            entry[0].push(np.frombuffer(data, dtype=np.float32), arrival, skipped=skipped,
                          discontinuity=discontinuity)

    def update(self, sid: str, params: dict) -> None:
        entry = self.streams.get(sid)
        if entry is not None:
            entry[0].pipeline.update(params)

    def end(self, sid: str) -> None:
        entry = self.streams.get(sid)
        if entry is not None:
            entry[0].finish_input()

    def close(self, sid: str) -> None:
        entry = self.streams.pop(sid, None)
        if entry is not None:
            Engine.remove(entry[1])

    # -- voice lifecycle (rare; never on the audio path) -----------------------------------------------------

    def unload(self, req: str, name: str) -> None:
        closed = [sid for sid, (stream, _) in self.streams.items() if stream.voice.name == name]
        for sid in closed:  # the server ends these sessions first; any left over must not keep the weights
            Engine.remove(self.streams.pop(sid)[1])
        still_loaded = self.registry.unload(name)
        self.conn.send(("unloaded", req, name, still_loaded, closed))

    def voices(self, req: str) -> None:
        self.conn.send(("voices", req, {"registered": self.registry.names(), "loaded": self.registry.loaded(),
                                        "streams": sorted({s.voice.name for s, _ in self.streams.values()})}))

    def refresh(self) -> None:
        try:
            self.registry.refresh()
        except Exception:  # a broken store must not stop the sessions running here
            log.exception("engine process: voice store refresh failed")


def _frames(report: PassReport) -> list[tuple]:
    return [(h.key, f.pcm, f.samples, f.start_sample, f.discontinuity, f.last, f.ready, f.arrival, f.compute_s,
             len(h.task.queue), h.task.dropped) for h, f in report.outputs]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RtvcError):
        return str(exc)
    log.error("engine process: unexpected error", exc_info=exc)
    return f"internal error while converting: {type(exc).__name__}: {exc}"


def worker_main(conn: Connection, config: Mapping[str, Any], limits: Limits, data_dir: str) -> None:
    """Entry point of an engine process (spawned by :class:`rtvc.session.procs.ProcessBackend`)."""
    logging.basicConfig(level=logging.WARNING, format="rtvc-engine %(process)d %(levelname)s %(message)s")
    from rtvc.voices.dsp.iir import preload

    preload()  # the DSP voices' filters: imported now, not in the first session's first block
    _Worker(conn, config, limits, Path(data_dir)).run()
