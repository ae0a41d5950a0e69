"""One live conversion session, as the transports see it (event loop side).

Lifecycle: open (by :class:`rtvc.session.SessionManager`) -> audio in with
:meth:`Session.submit`, converted audio out with :meth:`Session.next_output`
-> :meth:`Session.request_end` / :meth:`Session.end` (graceful: the tail is
flushed and delivered) or :meth:`Session.close` (immediate: the client went
away, shutdown, an error). ``closed`` is set once nothing more will come out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rtvc.audio.pcm import to_mono
from rtvc.errors import RtvcError
from rtvc.protocol import ErrorCode, ProtocolError, check_payload, error_message
from rtvc.session.backend import StreamHandle
from rtvc.session.queues import OutFrame, OutputQueue
from rtvc.session.request import StartRequest
from rtvc.session.stats import SessionStats

__all__ = ["OutputFrame", "Session"]

log = logging.getLogger(__name__)

OutputFrame = OutFrame  # the public name in the session API


class Session:
    """A session's transport-facing state. Create through ``SessionManager.open``; use on the event loop only.

    Attributes
    ----------
    id : str
    started : dict
        The ``session.started`` payload.
    closed : asyncio.Event
        Set when the session is over and all its output was handed out (or discarded).
    end_reason : str | None
        ``"client"``, ``"disconnect"``, ``"idle_timeout"``, ``"shutdown"``, ``"error"``, ...
    error : RtvcError | None
        What ended the session when it did not end cleanly.
    watermark_token : int | None
        The 64-bit token the watermark of this session's output carries.
    grant_id : str | None
        The consent grant the session streams under (None for built-in voices or without governance).
    recorded : bool
        The session is in the governance ledger (its end must be recorded too).
    """

    def __init__(self, *, session_id: str, request: StartRequest, stream: StreamHandle, started: dict[str, Any],
                 client: Any, transport: str, max_frame_ms: float, output_queue_ms: float, flush_timeout_s: float,
                 on_close: Callable[[Session], None], watermark_token: int | None = None,
                 metrics: Any = None) -> None:
        self.id = session_id
        self.request = request
        self.started = started
        self.client = client
        self.transport = transport
        self.watermark_token = watermark_token
        self.grant_id: str | None = None
        self.recorded = False
        self.stream = stream
        self.closed = asyncio.Event()
        self.end_reason: str | None = None
        self.error: RtvcError | None = None
        self.created = time.time()
        fmt_in, fmt_out = request.input, request.output
        self._stats = SessionStats(input_rate=fmt_in.sample_rate, output_rate=fmt_out.sample_rate)
        self._metrics = metrics
        self._on_close = on_close
        self._flush_timeout_s = flush_timeout_s
        self._block_s = stream.info.block_ms / 1000.0
        self._bytes_per_frame_in = fmt_in.frame_bytes
        self._max_frames_in = max(1, round(max_frame_ms * fmt_in.sample_rate / 1000.0))
        self._max_samples_out = max(1, round(max_frame_ms * fmt_out.sample_rate / 1000.0))
        self._out = OutputQueue(max(stream.info.block_out, round(output_queue_ms * fmt_out.sample_rate / 1000.0)))
        self._out_event = asyncio.Event()
        self._output_finished = False  # the engine produced the last frame (or the session was aborted)
        self._input_finished = False
        self._next_in = 0  # expected start_sample of the next input frame
        self._seq_out = 0
        self._queue_dropped_seen = 0  # stream.dropped_in already counted in the metrics
        stream.bind(self._deliver, self._fail)

    # -- input ----------------------------------------------------------------------------------------

    def submit(self, pcm: bytes | bytearray | memoryview, start_sample: int | None = None, discontinuity: bool = False,
               last: bool = False) -> int:
        """Queue one input frame (wire bytes in the input format). Non-blocking.

        ``start_sample`` (sample frames at the input rate) places the frame on the
        sender's timeline: a gap up to the input queue length is filled with
        silence, a longer gap is skipped (the output timeline jumps with it), a
        frame overlapping earlier input loses the overlap. Returns the samples
        dropped for overlap (queue overflow is counted as the engine meets it).

        Raises
        ------
        ProtocolError
            ``bad_frame``: partial sample frame or longer than ``max_frame_ms``;
            ``bad_message``: input after the last frame.
        AudioValueError
            ``bad_audio``: NaN or infinite float samples.
        """
        if self._input_finished:
            raise ProtocolError("audio after the last frame (or after session.end)", ErrorCode.BAD_MESSAGE)
        if self.closed.is_set():
            return 0
        n = check_payload(len(pcm), bytes_per_frame=self._bytes_per_frame_in, max_frames=self._max_frames_in)
        mono = to_mono(self.request.input.decode(pcm))
        stats = self._stats
        stats.frames_in += 1
        stats.samples_in += n
        dropped, skipped = 0, 0
        if start_sample is not None and start_sample != self._next_in:
            gap = start_sample - self._next_in
            if gap < 0:  # overlap with audio already received: keep only the new part
                dropped = min(-gap, n)
                mono, discontinuity = mono[dropped:], True
            elif gap <= self.stream.info.input_queue_samples:
                mono = np.concatenate([np.zeros(gap, dtype=np.float32), mono])
            else:
                skipped, discontinuity = gap, True
        self._next_in = max(self._next_in, (self._next_in if start_sample is None else start_sample) + n)
        if len(mono) or skipped:
            self.stream.push(mono, time.perf_counter(), skipped=skipped, discontinuity=discontinuity)
        stats.dropped_in += dropped
        if self._metrics is not None:
            self._metrics.frame_in(dropped)
        if last:
            self.request_end()
        return dropped

    def request_end(self) -> None:
        """Stop taking input; the tail is flushed and the output ends with a frame flagged ``last``."""
        if self._input_finished:
            return
        self._input_finished = True
        self.stream.finish_input()

    def update(self, params: dict[str, Any]) -> None:
        """Validate new parameters now (ParamError, nothing changed then); they apply at the next block."""
        self.stream.update(params)

    # -- output ---------------------------------------------------------------------------------------

    async def next_output(self) -> OutputFrame | None:
        """The next output frame (contiguous blocks merged up to ``max_frame_ms``); None once all was delivered."""
        while True:
            frame = self._out.pop(self._max_samples_out)
            if frame is not None:
                frame.seq, self._seq_out = self._seq_out, self._seq_out + 1
                self._stats.frames_out += 1
                self._stats.samples_out += frame.samples
                if self._metrics is not None:
                    self._metrics.frame_out(self, frame, time.perf_counter())
                if frame.last:
                    self._finish("client")
                return frame
            if self._output_finished:
                self._finish("client")
                return None
            self._out_event.clear()
            await self._out_event.wait()

    def _deliver(self, frame: OutFrame) -> None:
        """Event loop: the engine finished a block (or sent the final empty frame)."""
        if self._output_finished:
            return
        if frame.samples:
            self._stats.record_block(frame.compute_s, self._block_s)
            if self._metrics is not None:
                self._metrics.block_computed(frame.compute_s, self._block_s)
        dropped = self._out.push(frame)
        self._stats.dropped_out += dropped
        if self._metrics is not None:
            queue_dropped = self.stream.dropped_in
            self._metrics.dropped(queue_dropped - self._queue_dropped_seen, dropped)
            self._queue_dropped_seen = queue_dropped
        if frame.last:
            self._output_finished = True
        self._out_event.set()

    def _fail(self, exc: BaseException) -> None:
        """Event loop: the engine could not process this session; it ends with an error, nothing more is sent."""
        if not isinstance(exc, RtvcError):
            log.error("session %s failed", self.id, exc_info=exc)
            exc = RtvcError(f"internal error while converting: {type(exc).__name__}")
        self.close(reason="error", error=exc)

    # -- ending ---------------------------------------------------------------------------------------

    async def end(self, reason: str = "client") -> dict[str, Any]:
        """Flush the tail, wait (up to ``flush_timeout_s``) until it was handed out; return ``session.ended``.

        Someone must be reading :meth:`next_output` for the tail to drain; if not,
        the queued output is discarded at the timeout.
        """
        if self.end_reason is None:
            self.end_reason = reason
        self.request_end()
        try:
            await asyncio.wait_for(self.closed.wait(), self._flush_timeout_s)
        except TimeoutError:
            self.close(reason=self.end_reason or reason)
        return self.ended_message()

    def close(self, reason: str = "disconnect", error: RtvcError | None = None) -> None:
        """End now: drop queued input and output, free the engine slot. Idempotent.

        ``error``: why, when it is an error (then :meth:`final_message` reports it).
        """
        if self.closed.is_set():
            return
        if error is not None and self.error is None:
            self.error = error
        if self.end_reason is None:
            self.end_reason = reason
        self._input_finished = True
        self._out = OutputQueue(self._out.capacity)
        self._finish(self.end_reason)

    def _finish(self, reason: str) -> None:
        if self.closed.is_set():
            return
        if self.end_reason is None:
            self.end_reason = reason
        self._output_finished = True
        self.stream.close()
        self.closed.set()
        self._out_event.set()
        self._on_close(self)

    # -- reporting ------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The ``stats`` message payload (without ``type``)."""
        queue_out_ms = 1000.0 * len(self._out) / self.request.output.sample_rate
        return self._stats.snapshot(queue_in_ms=self.stream.queued_ms(), queue_out_ms=queue_out_ms,
                                    dropped_in_queue=self.stream.dropped_in)

    def converted_s(self) -> float:
        """Seconds of converted audio handed out so far."""
        return self._stats.samples_out / self.request.output.sample_rate

    def stats_message(self) -> dict[str, Any]:
        return {"type": "stats", "session_id": self.id, **self.stats()}

    def ended_message(self) -> dict[str, Any]:
        """``session.ended`` with the totals."""
        totals = self.stats()
        return {
            "type": "session.ended",
            "session_id": self.id,
            "reason": self.end_reason or "client",
            "duration_s": round(time.time() - self.created, 3),
            **{k: totals[k] for k in ("frames_in", "frames_out", "samples_in", "samples_out", "dropped_in",
                                      "dropped_out", "rtf")},
        }

    def final_message(self) -> dict[str, Any]:
        """What the transport sends once ``next_output`` returned None: ``session.ended`` or the error."""
        if self.error is not None:
            return error_message(self.error.code, str(self.error))
        return self.ended_message()
