"""Per-session and per-connection limits, read from the ``[limits]`` config table.

Every limit has its unit in its name; the defaults are the ``[limits]`` table of
``configs/default.toml`` (:data:`DEFAULT_LIMITS` is read from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtvc.config import default_table
from rtvc.engine.settings import check_positive, read_table
from rtvc.errors import ConfigError

__all__ = ["DEFAULT_LIMITS", "Limits"]

DEFAULT_LIMITS: dict[str, Any] = default_table("limits")  # keys, units and meaning: configs/default.toml


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
