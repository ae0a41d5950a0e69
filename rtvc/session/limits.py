"""Per-session and per-connection limits, read from the ``[limits]`` config table.

Every limit has its unit in its name. Until ``configs/default.toml`` carries
these keys, missing ones fall back to :data:`DEFAULT_LIMITS` (the same values
the default config will hold).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtvc.engine.settings import check_positive, read_table
from rtvc.errors import ConfigError

__all__ = ["DEFAULT_LIMITS", "Limits"]

DEFAULT_LIMITS: dict[str, Any] = {
    "max_message_bytes": 262144,  # largest WebSocket message accepted (text or binary), bytes
    "max_frame_ms": 200.0,  # longest audio frame (one binary message), ms of audio
    "min_block_ms": 5.0,  # smallest block a client may ask for (per-block overhead), ms
    "max_block_ms": 500.0,  # largest block a client may ask for (latency), ms
    "idle_timeout_s": 30.0,  # no message from the client for this long ends the session, s
    "input_queue_ms": 500.0,  # per-session input backlog bound; older input is dropped (counted), ms
    "output_queue_ms": 500.0,  # per-session output backlog bound for slow readers; oldest dropped, ms
    "realtime_lead_ms": 500.0,  # how far ahead of real time a session's input is converted, ms
    "max_sessions": 64,  # hard cap on concurrent sessions (admission control may refuse sooner)
    "flush_timeout_s": 5.0,  # session.end waits this long for the tail to be delivered, s
    "stats_interval_s": 1.0,  # period of the stats message pushed to clients, s
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int = DEFAULT_LIMITS["max_message_bytes"]
    max_frame_ms: float = DEFAULT_LIMITS["max_frame_ms"]
    min_block_ms: float = DEFAULT_LIMITS["min_block_ms"]
    max_block_ms: float = DEFAULT_LIMITS["max_block_ms"]
    idle_timeout_s: float = DEFAULT_LIMITS["idle_timeout_s"]
    input_queue_ms: float = DEFAULT_LIMITS["input_queue_ms"]
    output_queue_ms: float = DEFAULT_LIMITS["output_queue_ms"]
    realtime_lead_ms: float = DEFAULT_LIMITS["realtime_lead_ms"]
    max_sessions: int = DEFAULT_LIMITS["max_sessions"]
    flush_timeout_s: float = DEFAULT_LIMITS["flush_timeout_s"]
    stats_interval_s: float = DEFAULT_LIMITS["stats_interval_s"]

    def __post_init__(self) -> None:
        check_positive(self)
        if self.min_block_ms > self.max_block_ms:
            raise ConfigError(f"min_block_ms={self.min_block_ms} exceeds max_block_ms={self.max_block_ms}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, **overrides: Any) -> Limits:
        return cls(**{**read_table(config, "limits", DEFAULT_LIMITS), **overrides})
