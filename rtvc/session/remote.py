"""The server's side of one engine process: its pipe, its streams, and a session's stream handle over it.

:class:`RemoteStream` is what a session drives (the :class:`~rtvc.session.backend.StreamHandle` protocol);
every call turns into a message down the process's pipe (see :mod:`rtvc.session.worker` for the messages).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import numpy as np

from rtvc.engine import EngineSettings, LoadMeter
from rtvc.errors import EngineError
from rtvc.session.backend import FailFn, FrameFn
from rtvc.session.build import StreamInfo, check_update
from rtvc.session.queues import OutFrame
from rtvc.voices.base import Voice

if TYPE_CHECKING:
    import multiprocessing as mp

    from rtvc.session.procs import ProcessBackend

__all__ = ["PIPE_BUFFER_BYTES", "EngineProc", "RemoteError", "RemoteStream", "widen_pipe"]


class RemoteError(EngineError):
    """An error raised in an engine process, carried back with its code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class EngineProc:
    """One engine process as the server sees it."""

    def __init__(self, index: int, settings: EngineSettings) -> None:
        self.index = index
        self.conn: Connection | None = None
        self.process: mp.process.BaseProcess | None = None
        self.load = LoadMeter(settings.load_window_s)
        self.streams: dict[str, RemoteStream] = {}
        self.opening: dict[str, asyncio.Future] = {}
        self.requests: dict[str, asyncio.Future] = {}  # unload / voices questions awaiting their answer
        self.queue_depth = 0
        self.alive = False
        self.reader: threading.Thread | None = None
        self.restarts: list[float] = []  # monotonic times of recent restarts


class RemoteStream:
    """A stream run by an engine process (see :class:`rtvc.session.backend.StreamHandle`)."""

    def __init__(self, backend: ProcessBackend, proc: EngineProc, sid: str, info: StreamInfo, voice: Voice,
                 input_rate: int) -> None:
        self.info = info
        self.added = time.perf_counter()
        self._backend, self._proc, self._sid, self._voice = backend, proc, sid, voice
        self._samples_per_ms = input_rate / 1000.0
        self._queued = 0  # input samples queued in the engine process, as last reported
        self._dropped = 0
        self.on_frame: FrameFn = _ignore
        self.on_fail: FailFn = _ignore

    @property
    def dropped_in(self) -> int:
        return self._dropped

    def bind(self, on_frame: FrameFn, on_fail: FailFn) -> None:
        self.on_frame, self.on_fail = on_frame, on_fail

    def push(self, mono: np.ndarray, arrival: float, *, skipped: int = 0, discontinuity: bool = False) -> None:
        data = np.ascontiguousarray(mono, dtype=np.float32).tobytes()
        self._queued = min(self._queued + len(mono), self.info.input_queue_samples)  # until the next report
        self._backend.send(self._proc, ("audio", self._sid, data, arrival, skipped, discontinuity))

    def finish_input(self) -> None:
        self._backend.send(self._proc, ("end", self._sid))

    def update(self, params: Mapping[str, Any]) -> None:
        check_update(self._voice, params)  # ParamError now, as the session API promises
        self._backend.send(self._proc, ("update", self._sid, dict(params)))

    def queued_ms(self) -> float:
        return self._queued / self._samples_per_ms

    def close(self) -> None:
        self.on_frame, self.on_fail = _ignore, _ignore
        if self._proc.streams.pop(self._sid, None) is not None:
            self._backend.send(self._proc, ("close", self._sid))

    def _report(self, frame: OutFrame, queued: int, dropped: int) -> None:
        self._queued, self._dropped = queued, dropped
        self.on_frame(frame)


def _ignore(_: object) -> None:
    return None


PIPE_BUFFER_BYTES = 4 << 20  # ~1 s of 48 kHz float32 input for 20 sessions: a busy engine never blocks the loop


def widen_pipe(conn: Connection) -> None:
    """Give the (socketpair) pipe a large kernel send buffer: the event loop writes to it without blocking."""
    with socket.socket(fileno=os.dup(conn.fileno())) as sock:
        for option in (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF):
            if option is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, PIPE_BUFFER_BYTES)
                return
            except OSError:  # SO_SNDBUFFORCE needs privileges; SO_SNDBUF is capped at net.core.wmem_max
                continue
