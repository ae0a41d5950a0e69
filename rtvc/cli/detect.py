"""``rtvc detect``: is the rtvc watermark in these files, where, and which session token does it carry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rtvc.cli.common import add_common, config_from_args, data_dir_from
from rtvc.errors import RtvcError
from rtvc.watermark import DetectionReport, detect_file
from rtvc.watermark.key import key_from_config

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("detect", help="find the watermark and session tokens in audio files")
    add_common(parser)
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE", help="audio files (wav, flac, mp3, ogg, m4a, ...)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run_detect)


def _describe(path: Path, report: DetectionReport) -> str:
    head = f"{path}: {report.duration_s:.1f} s, "
    if not report.present:
        return head + f"no watermark (score {report.score:.1f} < {report.threshold:.1f})"
    spans = ", ".join(f"{s.start_s:.0f}-{s.end_s:.0f} s" for s in report.spans)
    lines = [head + f"WATERMARKED (score {report.score:.1f} >= {report.threshold:.1f}); marked {spans}"]
    lines += [f"  token {t.hex} at {t.start_s:.0f}-{t.end_s:.0f} s" for t in report.tokens]
    if not report.tokens:
        lines.append("  token: not decoded (excerpt too short or too damaged)")
    return "\n".join(lines)


def run_detect(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    key = key_from_config(config, data_dir_from(config), create=False)
    results, failed = [], False
    for path in args.files:
        try:
            report = detect_file(path, key)
        except RtvcError as exc:
            failed = True
            results.append({"path": str(path), "error": {"code": exc.code, "message": str(exc)}})
            if not args.json:
                print(f"{path}: error: {exc}")
            continue
        results.append({"path": str(path), **report.to_json()})
        if not args.json:
            print(_describe(path, report))
    if args.json:
        print(json.dumps({"key_id": key.key_id, "files": results}, indent=2))
    return 2 if failed else 0
