"""The engine-facing half of a session: queued input -> pipeline blocks -> encoded output frames.

The transport pushes decoded mono input from the event loop thread; the engine
worker calls :meth:`SessionStream.next_job` and :meth:`SessionStream.finish_job`
from its own thread. Input is converted no faster than real time plus
``realtime_lead_ms`` (a sender that runs ahead is throttled, then its oldest
input dropped by the bounded queue), so one greedy client cannot take the
engine's time from the others.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np

from rtvc.pipeline import BlockJob, Pipeline
from rtvc.session.queues import InputQueue, OutFrame
from rtvc.voices.base import Voice

__all__ = ["SessionStream"]


class SessionStream:
    """Feeds ``pipeline`` one block at a time.

    Parameters
    ----------
    pipeline : Pipeline
    input_queue_ms : float
        Input backlog bound, ms at the input rate.
    realtime_lead_ms : float
        Input may be converted this far ahead of the wall clock (measured from the first audio).
    """

    def __init__(self, pipeline: Pipeline, *, input_queue_ms: float, realtime_lead_ms: float) -> None:
        self.pipeline = pipeline
        self.rate_in = pipeline.input.sample_rate
        self.rate_out = pipeline.output.sample_rate
        self.queue = InputQueue(max(pipeline.block_in, round(input_queue_ms * self.rate_in / 1000.0)))
        self.lead_s = realtime_lead_ms / 1000.0
        self.block_s = pipeline.block_in / self.rate_in
        self.done = False  # the pipeline has produced its last output
        self.retry_at: float | None = None  # perf_counter() time a throttled block becomes due
        self._t0: float | None = None  # arrival of the first audio
        self._consumed = 0  # input samples handed to the pipeline (the real-time budget counts these)
        self._skipped = 0  # input timeline samples missing so far (dropped or never sent)
        self._input_done = False
        self._flushing = False
        self._pending: tuple[float, float, bool] | None = None  # (arrival, prepare seconds, discontinuity)

    @property
    def voice(self) -> Voice:
        return self.pipeline.voice

    # -- event loop thread ----------------------------------------------------------------------------

    def push(self, mono: np.ndarray, arrival: float, *, skipped: int = 0, discontinuity: bool = False) -> int:
        """Queue mono float32 input; returns samples dropped to keep the queue bounded."""
        if self._t0 is None:
            self._t0 = arrival
        return self.queue.push(mono, arrival, skipped=skipped, discontinuity=discontinuity)

    def finish_input(self) -> None:
        """No more input: the queued remainder and the pipeline's tail will come out, then ``done``."""
        self._input_done = True

    # -- engine thread --------------------------------------------------------------------------------

    def next_job(self, now: float) -> BlockJob | None:
        """Prepare the next block if its input is here and due; else None (``retry_at`` set when throttled)."""
        self.retry_at = None
        if self.done:
            return None
        t_start = time.perf_counter()
        if not self._flushing:
            due = self._t0 is not None and (self._consumed + self.pipeline.block_in) / self.rate_in <= (
                now - self._t0 + self.lead_s
            )
            if not due and len(self.queue) >= self.pipeline.block_in and not self._input_done:
                self.retry_at = self._t0 + (self._consumed + self.pipeline.block_in) / self.rate_in - self.lead_s
                return None
            block = self.queue.pop(self.pipeline.block_in, partial=self._input_done)
            if block is None:
                return None
            if len(block.samples):
                self.pipeline.feed(block.samples)
            self._consumed += len(block.samples)
            self._skipped += block.skipped
            if self._input_done and not len(self.queue):
                self.pipeline.end_input()
                self._flushing = True
            arrival, discontinuity = block.arrival, block.discontinuity
        else:
            arrival, discontinuity = time.perf_counter(), False
        job = self.pipeline.prepare_block()
        if job is None:
            if self._flushing:
                self.done = True
            return None
        self._pending = (arrival, time.perf_counter() - t_start, discontinuity)
        return job

    def finish_job(self, job: BlockJob, rendered: np.ndarray, voice_s: float) -> OutFrame:
        """Run the stages after the voice and encode; ``voice_s`` is this block's share of the model call."""
        t_start = time.perf_counter()
        arrival, prepare_s, discontinuity = self._pending or (t_start, 0.0, False)
        self._pending = None
        start = self.pipeline.samples_out + round(Fraction(self._skipped * self.rate_out, self.rate_in))
        y = self.pipeline.finish_block(job, rendered)
        pcm = self.pipeline.output.encode(y)
        if job.last:
            self.done = True
        ready = time.perf_counter()
        return OutFrame(pcm, len(y), start, discontinuity, job.last, ready, arrival,
                        compute_s=prepare_s + voice_s + (ready - t_start))

    def end_frame(self) -> OutFrame:
        """An empty frame flagged last, for a flush that ended without a block marked last."""
        start = self.pipeline.samples_out + round(Fraction(self._skipped * self.rate_out, self.rate_in))
        return OutFrame(b"", 0, start, False, True, time.perf_counter(), time.perf_counter())

    def queued_ms(self) -> float:
        return 1000.0 * len(self.queue) / self.rate_in

    @property
    def dropped(self) -> int:
        """Input samples the bounded queue dropped so far."""
        return self.queue.dropped
