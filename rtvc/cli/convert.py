"""``rtvc convert``: run a file through the same streaming pipeline the server uses."""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from rtvc.audio.pcm import SUPPORTED_RATES, AudioFormat
from rtvc.cli.common import add_common, config_from_args, data_dir_from, registry_from_config
from rtvc.errors import AudioFormatError, ConfigError
from rtvc.governance import LOCAL_ADMIN, GovernanceStore
from rtvc.governance.errors import NoConsent
from rtvc.governance.validate import PURPOSES
from rtvc.pipeline import Pipeline
from rtvc.watermark import Watermarker, WatermarkKey

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help="convert a file through the streaming pipeline")
    add_common(parser)
    parser.add_argument("input", type=Path, metavar="IN", help="input audio file (wav, flac, ...)")
    parser.add_argument("output", type=Path, metavar="OUT", help="output file (format from its extension)")
    parser.add_argument("--voice", required=True, help="voice id (see `rtvc voices`)")
    parser.add_argument("--pitch", type=float, help="pitch shift in semitones")
    parser.add_argument("--formant", type=float, help="formant factor")
    parser.add_argument("--gate-db", type=float, help="noise gate threshold, dBFS")
    parser.add_argument("--block-ms", type=float, help="block duration in ms")
    parser.add_argument("--chunk-ms", type=float, help="feed the pipeline in pieces of this many ms (default 20)")
    parser.add_argument("--out-rate", type=int, help=f"output rate in Hz, one of {', '.join(map(str, SUPPORTED_RATES))}")
    parser.add_argument("--purpose", default="dubbing", choices=PURPOSES,
                        help="purpose of use, recorded in the audit log; RVC voices need a grant allowing it")
    parser.add_argument("--key", default=os.environ.get("RTVC_KEY"),
                        help="client API key ($RTVC_KEY); required for RVC voices, checked against their grants")
    parser.add_argument("--token", help="64-bit watermark token as hex, for reproducible output (default: random)")
    parser.add_argument("--keep-latency", action="store_true",
                        help="keep the algorithmic delay at the start instead of aligning OUT with IN")
    parser.set_defaults(func=convert)


def _read(path: Path) -> tuple[np.ndarray, int]:
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"cannot read {path}: {exc}") from None
    if samples.shape[1] > 2:
        raise AudioFormatError(f"{path} has {samples.shape[1]} channels; rtvc takes mono or stereo")
    if len(samples) == 0:
        raise AudioFormatError(f"{path} contains no audio")
    return samples, rate


def _token(text: str | None) -> int:
    if text is None:
        return secrets.randbits(64)
    try:
        token = int(text, 16)
    except ValueError:
        raise ConfigError(f"--token must be hexadecimal, got {text!r}") from None
    if not 0 <= token < 2**64:
        raise ConfigError(f"--token must fit in 64 bits, got {text!r}")
    return token


def convert(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    registry = registry_from_config(config)
    voice = registry.get(args.voice)
    samples, rate = _read(args.input)
    params = {name: value for name, value in (("pitch", args.pitch), ("formant", args.formant)) if value is not None}
    params["gate_db"] = args.gate_db if args.gate_db is not None else config["pipeline"]["gate_db"]
    chunk_ms = args.chunk_ms if args.chunk_ms is not None else config["convert"]["chunk_ms"]
    if not chunk_ms > 0:
        raise ConfigError(f"--chunk-ms must be positive, got {chunk_ms}")
    token = _token(args.token)
    out_rate = args.out_rate or rate
    output = AudioFormat("pcm_f32le", out_rate, 1)  # validates the rate before anything is made
    # Every converted output is watermarked, as on the server; if the mark cannot be made, nothing is written.
    watermark = Watermarker(WatermarkKey.load_or_create(data_dir_from(config)), token, out_rate)
    # Same rule as a stream: an RVC voice is converted only under a live grant for this client and purpose;
    # every conversion, built-in voices too, is recorded in the audit log with its watermark token.
    governance = GovernanceStore.open(data_dir_from(config))
    client = governance.keys.verify(args.key) if args.key else None
    if args.key and client is None:
        raise NoConsent("--key is not a valid, active API key")
    if client is None and voice.kind == "rvc":
        raise NoConsent(f"voice {voice.name!r} belongs to someone: pass --key of a client its consent grant allows")
    record = governance.sessions.start(client or LOCAL_ADMIN, voice.name, args.purpose, f"{token:016x}",
                                       transport="local", builtin=voice.kind != "rvc")
    pipeline = Pipeline(
        voice,
        input=AudioFormat("pcm_f32le", rate, samples.shape[1]),
        output=output,
        params=params,
        block_ms=args.block_ms,
        default_block_ms=config["pipeline"]["block_ms"],
        max_buffer_ms=config["pipeline"]["max_buffer_ms"],
        postprocess=watermark,
    )
    chunk = max(1, round(chunk_ms * rate / 1000.0))
    pieces = []
    started = time.perf_counter()
    try:
        for start in range(0, len(samples), chunk):
            pieces.append(pipeline.process(samples[start : start + chunk]))
        pieces.append(pipeline.process(samples[:0], last=True))
    except BaseException:
        governance.sessions.end(record.session_id, converted_s=0.0, reason="error")
        raise
    compute_s = time.perf_counter() - started
    governance.sessions.end(record.session_id, converted_s=len(samples) / rate, reason="completed")
    out = np.concatenate(pieces)[:, 0]
    if not args.keep_latency:  # aligned with IN: same duration, delay removed
        out = out[pipeline.latency : pipeline.latency + -(-len(samples) * out_rate // rate)]
    try:
        sf.write(str(args.output), out, out_rate, subtype="PCM_16")
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioFormatError(f"cannot write {args.output}: {exc}") from None
    duration_s = len(samples) / rate
    print(
        f"{args.input} -> {args.output}: voice {voice.name}, {duration_s:.2f} s at {rate} Hz -> {out_rate} Hz, "
        f"block {pipeline.block_ms:.2f} ms, algorithmic latency {pipeline.latency_ms:.2f} ms "
        f"({pipeline.latency} samples), compute RTF {compute_s / duration_s:.4f}, watermark token {token:016x}"
    )
    return 0
