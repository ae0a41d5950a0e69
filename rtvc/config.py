"""Configuration: ``configs/default.toml`` is both the defaults and the schema.

A user file (``--config F`` or ``$RTVC_CONFIG``) may set any key the default
file has, with a value of the same type; an unknown key or a wrong type is a
:class:`ConfigError`, never silently ignored. CLI flags override both.
"""

from __future__ import annotations

import copy
import functools
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rtvc.errors import ConfigError

__all__ = ["DEFAULT_CONFIG_PATH", "ENV_VAR", "default_table", "load_config", "merge"]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configs" / "default.toml"
ENV_VAR = "RTVC_CONFIG"


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


@functools.cache
def _defaults() -> dict[str, Any]:
    return _read(DEFAULT_CONFIG_PATH)


def default_table(name: str) -> dict[str, Any]:
    """A copy of the ``[name]`` table of ``configs/default.toml``: the one place defaults are written."""
    return copy.deepcopy(_defaults()[name])


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def merge(base: Mapping[str, Any], override: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
    """Return ``base`` updated by ``override``; unknown keys and type changes raise ConfigError."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            known = ", ".join(sorted(base)) or "none"
            raise ConfigError(f"unknown config key {path!r} (known here: {known})")
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {path!r} must be a table")
            merged[key] = merge(default, value, where=path)
        elif not _same_type(default, value):
            raise ConfigError(
                f"config key {path!r} must be {type(default).__name__}, got {type(value).__name__} ({value!r})"
            )
        else:
            merged[key] = float(value) if isinstance(default, float) else value
    return merged


def load_config(path: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the file at ``path`` (or ``$RTVC_CONFIG``), then ``overrides``."""
    config = _read(DEFAULT_CONFIG_PATH)
    chosen = path if path is not None else os.environ.get(ENV_VAR) or None
    if chosen is not None:
        config = merge(config, _read(Path(chosen)))
    if overrides:
        config = merge(config, overrides)
    return config
