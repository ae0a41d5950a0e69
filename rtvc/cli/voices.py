"""``rtvc voices``: list the voices this installation can use."""

from __future__ import annotations

import argparse
import json

from rtvc.cli.common import add_common, config_from_args, registry_from_config
from rtvc.cli.voices_erase import register_erase
from rtvc.cli.voices_import import register_import

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("voices", help="list, import and export voices")
    add_common(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=list_voices)
    actions = parser.add_subparsers(dest="voices_action", metavar="ACTION")
    register_import(actions)
    register_erase(actions)


def list_voices(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    registry = registry_from_config(config)
    described = [voice.describe() for voice in registry]
    if args.json:
        print(json.dumps({"voices": described}, indent=2))
        return 0
    for voice in described:
        rate = f"{voice['sample_rate']} Hz" if voice["sample_rate"] else "any rate"
        print(f"{voice['id']:<12} {voice['kind']:<4} {rate:<9} {voice['description']}")
        for spec in voice["params"]:
            print(
                f"{'':<14}{spec['name']:<8} default {spec['default']:g} "
                f"({spec['minimum']:g}..{spec['maximum']:g} {spec['unit']}) {spec['description']}"
            )
    return 0
