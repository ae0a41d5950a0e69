"""Command line: ``python -m clients.python file IN.wav OUT.wav ...`` and ``python -m clients.python mic ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

import soundfile as sf

from clients.python.client import DEFAULT_URL, ServerError

__all__ = ["main"]


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"parameter {name!r}: {value!r} is not a number") from None


def _device_latency(text: str) -> str | float:
    if text in ("low", "high"):
        return text
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected low, high or seconds, got {text!r}") from None
    if not 0 < seconds <= 2:
        raise argparse.ArgumentTypeError(f"device latency must be in (0, 2] seconds, got {seconds}")
    return seconds


def _add_session_options(parser: argparse.ArgumentParser, *, voice_required: bool = True) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"stream endpoint (default {DEFAULT_URL})")
    parser.add_argument("--key", default=os.environ.get("RTVC_KEY"), help="API key (default: $RTVC_KEY)")
    parser.add_argument("--voice", required=voice_required, help="voice id (see GET /v1/voices)")
    parser.add_argument("--purpose", default="live_streaming",
                        choices=("live_streaming", "game_character", "accessibility", "dubbing", "research"),
                        help="purpose of use (a consent grant must allow it for RVC voices); recorded by the server")
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                        help="voice parameter, e.g. pitch=4 (repeatable)")
    parser.add_argument("--frame-ms", type=float, default=20.0, help="frame duration sent (default 20)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m clients.python", description="rtvc.v1 streaming client.")
    sub = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    file = sub.add_parser("file", help="convert a WAV file through a server")
    file.add_argument("input", help="input WAV (or any format soundfile reads)")
    file.add_argument("output", help="converted WAV to write")
    _add_session_options(file)
    file.add_argument("--realtime", action="store_true", help="pace frames in real time (default: as fast as allowed)")
    file.add_argument("--out-rate", type=int, help="output sample rate (default: the input's)")
    file.add_argument("--encoding", default="pcm_s16le", choices=("pcm_s16le", "pcm_f32le"))
    file.add_argument("--keep-latency", action="store_true", help="keep the leading algorithmic latency")
    file.add_argument("--json", action="store_true", help="print the summary as JSON")
    mic = sub.add_parser("mic", help="live: microphone -> server -> speakers (needs sounddevice)")
    mic.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    mic.add_argument("--input-device", help="input device index or name")
    mic.add_argument("--output-device", help="output device index or name")
    mic.add_argument("--rate", type=int, default=48000, help="sound card rate (default 48000)")
    mic.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    mic.add_argument("--playout-ms", type=float, default=200.0,
                     help="most converted audio held for the speaker; older audio is dropped (default 200)")
    mic.add_argument("--prime-ms", type=float, default=20.0,
                     help="audio queued before playback starts or restarts after an underrun (default 20)")
    mic.add_argument("--device-latency", type=_device_latency, default="low", metavar="low|high|SECONDS",
                     help="latency PortAudio should aim for on both devices (default low)")
    _add_session_options(mic, voice_required=False)  # not needed for --list-devices
    return parser


def _run_file(args: argparse.Namespace) -> int:
    from clients.python.filemode import stream_samples

    samples, rate = sf.read(args.input, dtype="float32", always_2d=True)
    report = asyncio.run(stream_samples(
        args.url, args.key, samples, rate, voice=args.voice, purpose=args.purpose, params=dict(args.param),
        realtime=args.realtime, frame_ms=args.frame_ms, output_rate=args.out_rate, encoding=args.encoding,
        keep_latency=args.keep_latency,
    ))
    sf.write(args.output, report.audio, report.sample_rate, subtype="PCM_16")
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    lat = summary["added_latency_ms"]
    mode = "real time" if args.realtime else "as fast as allowed"
    print(f"wrote {args.output}: {summary['output_s']} s at {report.sample_rate} Hz ({mode}, {summary['wall_s']} s)")
    print(f"latency: algorithmic {summary['algorithmic_latency_ms']} ms; added p50/p95/p99 "
          f"{lat['p50']}/{lat['p95']}/{lat['p99']} ms")
    print(f"dropped in/out: {summary['dropped_in']}/{summary['dropped_out']}; "
          f"discontinuities {summary['discontinuities']}; missing samples {summary['gap_samples']}")
    for error in report.errors:
        print(f"server error {error.get('code')}: {error.get('message')}", file=sys.stderr)
    return 0


def _run_mic(args: argparse.Namespace) -> int:
    from clients.python.micmode import list_devices, run_mic

    if args.list_devices:
        print(list_devices())
        return 0
    if not args.voice:
        print("error: mic mode needs --voice", file=sys.stderr)
        return 2
    ended = asyncio.run(run_mic(
        args.url, args.key, voice=args.voice, purpose=args.purpose, params=dict(args.param),
        input_device=args.input_device, output_device=args.output_device, sample_rate=args.rate,
        frame_ms=args.frame_ms, playout_max_ms=args.playout_ms, playout_prime_ms=args.prime_ms,
        device_latency=args.device_latency, duration_s=args.duration,
    ))
    print(json.dumps(ended))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.mode == "mic" and args.list_devices) and not args.key:
        print("error: an API key is needed (--key or $RTVC_KEY)", file=sys.stderr)
        return 2
    try:
        return _run_file(args) if args.mode == "file" else _run_mic(args)
    except ServerError as exc:
        print(f"error: server refused: {exc}", file=sys.stderr)
        return 2
    except (OSError, sf.LibsndfileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
