"""RVC cost per block: a full-size v2 40k model (random weights, real config) with a full-size content encoder.

Per block, the time of each stage of RVC's realtime algorithm as rtvc runs it (content encoder over the
whole window, pitch on the new audio, index blend on the new frames, synthesizer rendering block +
crossfade + search, loudness envelope), for block sizes 20-1000 ms and left context ("extra") 0.1-2.5 s;
real-time factor = compute / block duration; the smallest block at which one stream runs in real time,
per context. On CPU the figures are process CPU time (the machine is shared: wall time would count
other jobs' load); pitch is timed with YIN and, when the torchfcpe wheel is installed, FCPE (the
total uses FCPE then, as "auto" does for a voice without rmvpe.pt).
With a CUDA device also: concurrent streams per GPU with batching (p99 block compute, wall time).

Writes benchmarks/results/rvc.json and rvc.md.
Run: .venv/bin/python benchmarks/rvc.py [--reps 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtvc.voices.rvc.hubert import HubertConfig  # noqa: E402
from rtvc.voices.rvc.render import _blend_index, _synthesize  # noqa: E402
from rtvc.voices.rvc.synthetic import random_hubert_weights, write_fairseq_checkpoint, write_random_pth  # noqa: E402
from rtvc.voices.rvc.voice import RVCVoice  # noqa: E402

BLOCKS_MS = (20, 40, 60, 100, 200, 300, 500, 1000)
CONTEXTS_S = (0.1, 0.5, 1.0, 2.5)
SR = 40000


def _speech(seconds: float) -> np.ndarray:
    path = sorted((ROOT.parent / "shared" / "speech").glob("*/*.wav"))[3]
    x, rate = sf.read(str(path), dtype="float32")
    from rtvc.audio.resample import resample

    x = resample(x, rate, SR)
    reps = int(np.ceil(seconds * SR / len(x))) + 1
    return np.tile(x, reps)[: int(seconds * SR)]


def _files(tmp: Path, *, index: bool) -> dict[str, Path]:
    files = {"model": tmp / "v2_40k.pth", "content": tmp / "hubert_base.pt"}
    write_random_pth(files["model"], version="v2", sr="40k", tiny=False, seed=0)
    cfg = HubertConfig()  # HuBERT / ContentVec base: 768-d, 12 layers, 512-channel CNN
    write_fairseq_checkpoint(files["content"], cfg, random_hubert_weights(cfg, seed=0))
    if index:
        import faiss

        vectors = np.random.default_rng(0).standard_normal((20000, 768)).astype(np.float32)
        ivf = faiss.index_factory(768, f"IVF{min(int(16 * np.sqrt(len(vectors))), len(vectors) // 39)},Flat")
        ivf.train(vectors)
        ivf.add(vectors)
        files["index"] = tmp / "added_IVF512_Flat_nprobe_1_bench_v2.index"
        faiss.write_index(ivf, str(files["index"]))
    return files


WALL_CLOCK = torch.cuda.is_available()  # CPU: process CPU time unless --clock wall


def _timed(fn):  # noqa: ANN001, ANN202
    """(result, seconds): wall time on CUDA, process CPU time on CPU (robust to other load on a shared machine)."""
    if WALL_CLOCK:
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return out, time.perf_counter() - start
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def time_block(voice: RVCVoice, block_ms: int, context_s: float, reps: int, x: np.ndarray) -> dict:
    """Median stage times (ms) over ``reps`` consecutive blocks after one warm-up block."""
    model = voice.model
    params = voice.check_params({"f0_method": 2, "extra_ms": context_s * 1000, "index_rate": 0.5 if voice.has_index
                                 else 0.0, "rms_mix_rate": 0.0})
    block = block_ms * SR // 1000
    stream = voice.open(sample_rate=SR, block=block, params=params, seed=0)
    window = stream.layout.window
    padded = np.concatenate([np.zeros(window, np.float32), x])
    stages: dict[str, list[float]] = {k: [] for k in ("content", "pitch_yin", "pitch_fcpe", "index", "synth",
                                                      "total")}
    fcpe = model.trackers.get("fcpe")
    for k in range(reps + 1):
        w = padded[(k + 1) * block:(k + 1) * block + window]
        stream.ingest(w)
        seg = stream.history[-stream.f0_segment(model):][None].to(model.device)
        f0, t_yin = _timed(lambda: model.trackers["yin"](seg))  # noqa: B023
        t_fcpe = float("nan")
        if fcpe is not None:
            f0, t_fcpe = _timed(lambda: fcpe(seg))  # noqa: B023
        stream.update_pitch(f0[0].float().cpu())
        job = stream.job(model)
        feats, t_content = _timed(lambda: model.content_features(job.audio16k[None]))  # noqa: B023
        blended, t_index = _timed(lambda: _blend_index(model, feats, [job]))  # noqa: B023
        _, t_synth = _timed(lambda: _synthesize(model, blended, feats, [job]))  # noqa: B023
        total = t_content + (t_yin if fcpe is None else t_fcpe) + t_index + t_synth
        if k:
            for name, value in zip(stages, (t_content, t_yin, t_fcpe, t_index, t_synth, total), strict=True):
                stages[name].append(value * 1000)
    med = {name: float(np.median(v)) for name, v in stages.items()}
    med = {name: None if np.isnan(v) else v for name, v in med.items()}  # no FCPE: no fcpe column
    med["rtf"] = med["total"] / block_ms
    med.update(block_ms=block_ms, context_s=context_s, latency_ms=1000 * stream.layout.latency / SR + block_ms)
    return med


def gpu_streams(voice: RVCVoice, block_ms: int, context_s: float, counts: list[int], reps: int, x: np.ndarray) -> list:
    """Batched blocks of N streams: p99 compute per round vs the block duration."""
    params = voice.check_params({"f0_method": 2, "extra_ms": context_s * 1000})
    block = block_ms * SR // 1000
    rows = []
    for n in counts:
        streams = [voice.open(sample_rate=SR, block=block, params=params, seed=i) for i in range(n)]
        window = streams[0].layout.window
        padded = np.concatenate([np.zeros(window, np.float32), x])
        times = []
        for k in range(reps + 2):
            w = padded[(k + 1) * block:(k + 1) * block + window]
            _, t = _timed(lambda: voice.run(streams, [w] * n))  # noqa: B023
            if k >= 2:
                times.append(t * 1000)
        p99 = float(np.percentile(times, 99))
        rows.append({"streams": n, "block_ms": block_ms, "context_s": context_s, "p50_ms": float(np.median(times)),
                     "p99_ms": p99, "real_time": p99 < block_ms, "half_block": p99 <= block_ms / 2})
        print(f"  gpu {n:3d} streams: p50 {rows[-1]['p50_ms']:.1f} ms, p99 {p99:.1f} ms (block {block_ms} ms)")
        if p99 > block_ms:
            break
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer configurations")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: one stream per core; more threads spin badly on a busy CPU)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="on CPU: process CPU time (default; other load does not count) or wall time")
    parser.add_argument("--blocks", type=int, nargs="*", help="block sizes, ms (default: 20-1000)")
    parser.add_argument("--contexts", type=float, nargs="*", help="left contexts, s (default: 0.1-2.5)")
    args = parser.parse_args()
    global WALL_CLOCK
    WALL_CLOCK = WALL_CLOCK or args.clock == "wall"
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    blocks = args.blocks or ((20, 60, 200) if args.quick else BLOCKS_MS)
    contexts = args.contexts or ((0.5,) if args.quick else CONTEXTS_S)
    with tempfile.TemporaryDirectory() as tmp:
        files = _files(Path(tmp), index=True)
        voice = RVCVoice.from_files("bench", model=files["model"], content=files["content"], index=files["index"],
                                    device=device)
        if "fcpe" in voice.model.trackers:  # load it outside the timed blocks
            voice.model.trackers["fcpe"](torch.zeros(1, 4000, device=voice.model.device))
        x = _speech(12.0)
        rows = []
        with torch.no_grad():
            for context in contexts:
                for block in blocks:
                    row = time_block(voice, block, context, args.reps, x)
                    rows.append(row)
                    print(f"context {context:.1f} s block {block:3d} ms: content {row['content']:.1f} pitch yin "
                          f"{row['pitch_yin']:.1f} fcpe {row['pitch_fcpe'] or 0:.1f} index {row['index']:.1f} synth "
                          f"{row['synth']:.1f} total {row['total']:.1f} ms  RTF {row['rtf']:.2f}", flush=True)
            smallest = {}
            for context in contexts:
                ok = [r["block_ms"] for r in rows if r["context_s"] == context and r["rtf"] < 1.0]
                smallest[str(context)] = min(ok) if ok else None
            gpu = gpu_streams(voice, 60, 0.5, [1, 8, 16, 32, 48, 64], 20, x) if device == "cuda" else []
    result = {
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
        "load_average_1m": os.getloadavg()[0],  # other work on the machine inflates every figure
        "model": "v2 40k, reference config (27.6 M params), random weights; content: HuBERT base 768-d 12 layers",
        "clock": "wall time" if WALL_CLOCK else "process CPU time",
        "pitch": "fcpe" if "fcpe" in voice.model.trackers else "yin",
        "index": "IVF Flat, 20000 x 768, k=8", "crossfade_ms": 40, "search_ms": 10, "rms_mix_rate": 0.0,
        "rows": rows, "smallest_real_time_block_ms": smallest, "gpu_streams": gpu,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rvc.json").write_text(json.dumps(result, indent=2))
    lines = [f"# RVC block cost ({result['device']}, {result['torch_threads']} torch threads, "
             f"load average {result['load_average_1m']:.1f} at the end)", "",
             f"{result['model']}; pitch in the total: {result['pitch']}; index {result['index']}; "
             "crossfade 40 ms, search 10 ms; rms_mix_rate 0.",
             f"Stage times are medians per block in ms of {result['clock']}; RTF = total / block.", "",
             "| context s | block ms | content | pitch yin | pitch fcpe | index | synth | total | RTF | latency ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['context_s']} | {r['block_ms']} | {r['content']:.1f} | {r['pitch_yin']:.1f} "
                     f"| {_ms(r['pitch_fcpe'])} | {r['index']:.1f} | {r['synth']:.1f} | {r['total']:.1f} "
                     f"| {r['rtf']:.2f} | {r['latency_ms']:.0f} |")
    lines += ["", "Smallest real-time block per context: "
              + ", ".join(f"{c} s: {f'{b} ms' if b else f'none up to {max(blocks)} ms'}" for c, b in smallest.items())
              + f" ({result['torch_threads']} thread(s), {result['clock']})"]
    if gpu:
        lines += ["", "| streams | block ms | p50 ms | p99 ms | p99 <= block/2 |", "|---|---|---|---|---|"]
        lines += [f"| {g['streams']} | {g['block_ms']} | {g['p50_ms']:.1f} | {g['p99_ms']:.1f} | {g['half_block']} |"
                  for g in gpu]
    (args.out / "rvc.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
