"""Pipeline cost per built-in voice: compute per block, real-time factor, streams per core.

48 kHz in and out, 20 ms chunks, one thread. Writes benchmarks/results/pipeline.json and pipeline.md.
Run: .venv/bin/python benchmarks/pipeline.py [--seconds 20]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from rtvc.audio.pcm import AudioFormat  # noqa: E402
from rtvc.audio.resample import resample  # noqa: E402
from rtvc.pipeline import Pipeline  # noqa: E402
from rtvc.voices.registry import builtin_voices  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "speech"
RESULTS = ROOT / "benchmarks" / "results"
RATE = 48000
CHUNK_MS = 20


def speech_48k(seconds: float) -> np.ndarray:
    pieces, total = [], 0
    for path in sorted(SPEECH.glob("*/*.wav")):
        x, rate = sf.read(str(path), dtype="float32")
        pieces.append(resample(x, rate, RATE))
        total += len(pieces[-1])
        if total >= seconds * RATE:
            break
    return np.concatenate(pieces)[: int(seconds * RATE)]


def measure(voice, audio: np.ndarray, block_ms: float) -> dict:
    fmt = AudioFormat("pcm_s16le", RATE, 1)
    pipeline = Pipeline(voice, input=fmt, output=fmt, block_ms=block_ms)
    pcm = fmt.encode(audio)
    chunk_bytes = RATE * CHUNK_MS // 1000 * 2
    per_chunk, cpu_total = [], 0.0
    for start in range(0, len(pcm), chunk_bytes):
        t0, c0 = time.perf_counter(), time.thread_time()
        pipeline.process_bytes(pcm[start : start + chunk_bytes])
        per_chunk.append(time.perf_counter() - t0)
        cpu_total += time.thread_time() - c0
    per_chunk_ms = np.array(per_chunk) * 1000.0
    blocks = len(audio) // pipeline.block_in
    # CPU time of this thread: what one stream costs a core, robust to other processes on the machine.
    rtf = cpu_total / (len(audio) / RATE)
    wall_rtf = float(per_chunk_ms.sum() / 1000.0 / (len(audio) / RATE))
    return {
        "voice": voice.name,
        "block_ms": pipeline.block_ms,
        "latency_ms": round(pipeline.latency_ms, 3),
        "cpu_per_block_ms": round(cpu_total * 1000.0 / blocks, 4),
        "wall_rtf": round(wall_rtf, 5),
        "compute_per_chunk_ms_p50": round(float(np.percentile(per_chunk_ms, 50)), 4),
        "compute_per_chunk_ms_p99": round(float(np.percentile(per_chunk_ms, 99)), 4),
        "rtf": round(rtf, 5),
        "streams_per_core_estimate": int(1.0 / rtf) if rtf > 0 else None,
    }


def sustained_streams(voice, audio: np.ndarray, block_ms: float, count: int) -> dict:
    """Run ``count`` streams interleaved on one thread: does each 20 ms round finish in 20 ms?"""
    fmt = AudioFormat("pcm_s16le", RATE, 1)
    pipelines = [Pipeline(voice, input=fmt, output=fmt, block_ms=block_ms) for _ in range(count)]
    pcm = fmt.encode(audio[: RATE * 5])
    chunk_bytes = RATE * CHUNK_MS // 1000 * 2
    rounds = []
    for start in range(0, len(pcm), chunk_bytes):
        t0 = time.perf_counter()
        for pipeline in pipelines:
            pipeline.process_bytes(pcm[start : start + chunk_bytes])
        rounds.append((time.perf_counter() - t0) * 1000.0)
    return {"streams": count, "round_ms_p50": round(float(np.median(rounds)), 3),
            "round_ms_p99": round(float(np.percentile(rounds, 99)), 3), "chunk_ms": CHUNK_MS,
            "real_time": bool(np.percentile(rounds, 99) < CHUNK_MS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--block-ms", type=float, default=10.0)
    args = parser.parse_args()
    audio = speech_48k(args.seconds)
    rows = []
    for voice in builtin_voices():
        row = measure(voice, audio, args.block_ms)
        row["sustained"] = sustained_streams(voice, audio, args.block_ms, 20)
        rows.append(row)
        print(json.dumps(row))
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "setup": {"rate_hz": RATE, "chunk_ms": CHUNK_MS, "block_ms": args.block_ms, "threads": 1,
                  "audio_seconds": args.seconds, "target_rtf": 0.05},
        "voices": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Pipeline cost per voice ({RATE} Hz in/out, {CHUNK_MS} ms chunks, block {args.block_ms} ms, one thread)",
        "",
        "RTF = CPU time of the converting thread / audio duration; wall RTF and chunk p99 include waiting for",
        "the CPU when other processes run on the machine.",
        "",
        "| voice | latency ms | CPU/block ms | RTF (CPU) | wall RTF | chunk p99 ms (wall) | streams/core (1/RTF) "
        "| 20 streams round p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['voice']} | {r['latency_ms']:.2f} | {r['cpu_per_block_ms']:.3f} | {r['rtf']:.4f} | "
            f"{r['wall_rtf']:.4f} | {r['compute_per_chunk_ms_p99']:.3f} | {r['streams_per_core_estimate']} | "
            f"{r['sustained']['round_ms_p99']:.2f} |"
        )
    (RESULTS / "pipeline.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
