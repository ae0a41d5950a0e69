"""Engine settings, read from the ``[engine]`` config table (defaults: ``configs/default.toml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from rtvc.config import default_table
from rtvc.errors import ConfigError

__all__ = ["DEFAULT_ENGINE", "EngineSettings", "check_positive", "read_table"]

DEFAULT_ENGINE: dict[str, Any] = default_table("engine")  # keys, units and meaning: configs/default.toml


def read_table(config: Mapping[str, Any] | None, name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``config[name]`` over ``defaults``; keys the defaults lack are a ConfigError."""
    table = dict(defaults)
    given = (config or {}).get(name, {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(sorted(unknown))}")
    table.update(given)
    return table


def check_positive(obj: object) -> None:
    """Every numeric field of the dataclass ``obj`` must be a positive number."""
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, str):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{f.name} must be a positive number, got {value!r}")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    mode: str = DEFAULT_ENGINE["mode"]
    workers: int = DEFAULT_ENGINE["workers"]
    max_load: float = DEFAULT_ENGINE["max_load"]
    load_window_s: float = DEFAULT_ENGINE["load_window_s"]
    handoff_ms: float = DEFAULT_ENGINE["handoff_ms"]

    def __post_init__(self) -> None:
        check_positive(self)
        if self.mode not in ("process", "thread"):
            raise ConfigError(f"[engine] mode must be 'process' or 'thread', got {self.mode!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, **overrides: Any) -> EngineSettings:
        return cls(**{**read_table(config, "engine", DEFAULT_ENGINE), **overrides})
