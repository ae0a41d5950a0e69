"""Options every sub-command shares: --config and --data-dir."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rtvc.config import load_config
from rtvc.voices.registry import VoiceRegistry

__all__ = ["add_common", "config_from_args", "data_dir_from", "registry_from_config"]


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config (default: $RTVC_CONFIG, then configs/default.toml)")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (default: [server] data_dir of the config)")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["server"] = {"data_dir": str(args.data_dir)}
    return load_config(getattr(args, "config", None), overrides)


def data_dir_from(config: dict[str, Any]) -> Path:
    path = Path(config["server"]["data_dir"]).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def registry_from_config(config: dict[str, Any]) -> VoiceRegistry:
    """The voices this installation can use: the built-in ones, then the RVC voices imported into the data dir."""
    return VoiceRegistry.from_config(config, data_dir=data_dir_from(config))


def governance_store(args: argparse.Namespace) -> Any:
    """The governance database of the data dir the arguments name (a context manager that closes it)."""
    from rtvc.governance import GovernanceStore

    return GovernanceStore.open(data_dir_from(config_from_args(args)))
