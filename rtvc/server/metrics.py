"""The server's Prometheus metrics, fed by the session manager, the sessions and the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rtvc.engine.metrics import Counter, Gauge, Histogram, MetricsRegistry

__all__ = ["ServerMetrics"]

# Seconds. Blocks take tens of microseconds to tens of milliseconds; delays reach the queue bounds.
_COMPUTE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_DELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class ServerMetrics:
    """Every metric ``/metrics`` exposes. Recording methods are safe from any thread."""

    def __init__(self) -> None:
        r = self.registry = MetricsRegistry()
        self.sessions_active = r.add(Gauge("rtvc_sessions_active", "Sessions open now."))
        self.sessions_opened = r.add(Counter("rtvc_sessions_opened_total", "Sessions started, by transport."))
        self.sessions_refused = r.add(Counter("rtvc_sessions_refused_total", "Session starts refused, by error code."))
        self.sessions_ended = r.add(Counter("rtvc_sessions_ended_total", "Sessions ended, by reason."))
        self.frames_in = r.add(Counter("rtvc_frames_in_total", "Audio frames received from clients."))
        self.frames_out = r.add(Counter("rtvc_frames_out_total", "Audio frames handed to transports."))
        self.dropped_in = r.add(Counter("rtvc_dropped_in_samples_total", "Input samples dropped (queue overflow)."))
        self.dropped_out = r.add(Counter("rtvc_dropped_out_samples_total", "Output samples dropped (slow readers)."))
        self.block_compute = r.add(Histogram("rtvc_block_compute_seconds",
                                             "Engine time per block and session (stages + share of the model call).",
                                             _COMPUTE_BUCKETS))
        self.block_delay = r.add(Histogram("rtvc_block_delay_seconds",
                                           "Server-added delay: input block complete -> output handed to the transport.",
                                           _DELAY_BUCKETS))
        self.latency = r.add(Histogram("rtvc_latency_seconds",
                                       "End-to-end latency inside the server: algorithmic latency + server delay.",
                                       _DELAY_BUCKETS))
        self.compute_seconds = r.add(Counter("rtvc_compute_seconds_total", "Engine seconds spent converting."))
        self.audio_seconds = r.add(Counter("rtvc_audio_seconds_total", "Seconds of input audio converted."))
        self.rtf = r.add(Gauge("rtvc_rtf", "Real-time factor since start: compute seconds / audio seconds.",
                               self._rtf))
        self.engine_load = r.add(Gauge("rtvc_engine_load", "Engine busy fraction over the load window (0..1)."))
        self.engine_queue = r.add(Gauge("rtvc_engine_queue_depth", "Blocks the engine found due in its last pass."))
        self.engine_pass = r.add(Histogram("rtvc_engine_pass_seconds", "Duration of one engine pass over all sessions.",
                                           _COMPUTE_BUCKETS + (0.5, 1.0)))
        self.voice_calls = r.add(Counter("rtvc_voice_calls_total", "Model calls (one per voice per pass)."))
        self.voice_blocks = r.add(Counter("rtvc_voice_blocks_total", "Blocks converted by those calls (batching)."))

    def _rtf(self) -> float:
        audio = self.audio_seconds.value()
        return self.compute_seconds.value() / audio if audio else 0.0

    def bind(self, *, active_sessions: Callable[[], float], engine_load: Callable[[], float],
             engine_queue_depth: Callable[[], float]) -> None:
        """Where the gauges read their values at render time."""
        self.sessions_active.set_source(active_sessions)
        self.engine_load.set_source(engine_load)
        self.engine_queue.set_source(engine_queue_depth)

    def render(self) -> str:
        return self.registry.render()

    # -- recording hooks ------------------------------------------------------------------------------

    def session_opened(self, transport: str) -> None:
        self.sessions_opened.inc(transport=transport)

    def session_refused(self, code: str) -> None:
        self.sessions_refused.inc(code=str(code))

    def session_ended(self, reason: str) -> None:
        self.sessions_ended.inc(reason=reason)

    def frame_in(self, dropped_samples: int) -> None:
        self.frames_in.inc()
        if dropped_samples:
            self.dropped_in.inc(dropped_samples)

    def dropped(self, in_samples: int, out_samples: int) -> None:
        if in_samples:
            self.dropped_in.inc(in_samples)
        if out_samples:
            self.dropped_out.inc(out_samples)

    def frame_out(self, session: Any, frame: Any, now: float) -> None:
        self.frames_out.inc()
        delay = max(0.0, now - frame.arrival)
        self.block_delay.observe(delay)
        self.latency.observe(delay + session.started["latency_ms"] / 1000.0)

    def block_computed(self, compute_s: float, audio_s: float) -> None:
        self.block_compute.observe(compute_s)
        self.compute_seconds.inc(compute_s)
        self.audio_seconds.inc(audio_s)

    def engine_pass_done(self, seconds: float, blocks: int) -> None:
        self.engine_pass.observe(seconds)

    def voice_call(self, calls: int, blocks: int) -> None:
        self.voice_calls.inc(calls)
        self.voice_blocks.inc(blocks)
