"""The ``rtvc`` command. Each sub-command lives in its own module with
``register(subparsers)``; only this module reads argv."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rtvc import __version__
from rtvc.errors import RtvcError

__all__ = ["main"]

# Sub-command modules under rtvc.cli, in the order `rtvc --help` lists them.
COMMANDS = ("serve", "voices", "convert", "detect", "keys", "consent", "audit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtvc", description="Real-time streaming voice conversion.")
    parser.add_argument("--version", action="version", version=f"rtvc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"rtvc.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RtvcError as exc:
        print(f"rtvc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
