"""Watermark benchmark: imperceptibility, embedding cost, presence and token recovery under attacks.

The shared speech (20 files, 12 speakers) is converted with built-in voices through the real
streaming pipeline, one long session per voice (all files back to back), each session with its own
random token and the watermark as the pipeline's postprocess stage at 48 kHz; the same sessions
are also run without it. Attacks (benchmarks/watermark_attacks.py) are applied to whole sessions,
then windows are cut at random start samples and given to ``rtvc.watermark.detect``.

    .venv/bin/python benchmarks/watermark.py            # ~10 min on 2 cores
    .venv/bin/python benchmarks/watermark.py --quick    # smoke run, small counts

Writes benchmarks/results/watermark.json and watermark.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the pool runs one worker per core
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402
from pesq import pesq  # noqa: E402
from pystoi import stoi  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from watermark_attacks import ATTACKS, DESCRIPTIONS  # noqa: E402

from rtvc.audio.pcm import AudioFormat  # noqa: E402
from rtvc.pipeline import Pipeline  # noqa: E402
from rtvc.voices.registry import builtin_voices  # noqa: E402
from rtvc.watermark import Watermarker, WatermarkKey, detect  # noqa: E402
from rtvc.watermark.code import encode_token  # noqa: E402
from rtvc.watermark.detection import presence_threshold  # noqa: E402
from rtvc.watermark.scheme import Layout  # noqa: E402
from rtvc.watermark.sync import Analysis, scan_pilot, soft_bits  # noqa: E402

SPEECH_DIR = ROOT / ".." / "shared" / "speech"
RESULTS = ROOT / "benchmarks" / "results"
VOICES = ("feminine", "masculine", "giant", "critter", "robot", "radio")
OUT_RATE = 48000
DETECT_IN = 16000  # windows are given to detect() as 16 kHz recordings (one resampling per attacked session)
ATTRIBUTION = ("Audio from LibriSpeech (Panayotov et al., 2015, CC BY 4.0) and the CSTR VCTK Corpus "
               "(Yamagishi et al., CC BY 4.0).")


@dataclass
class Session:
    voice: str
    token: int
    unmarked: np.ndarray  # float32 at OUT_RATE, aligned with the input
    marked: np.ndarray
    bounds: list[tuple[int, int]]  # each speech file's samples in the session


def _convert(voice, x16: np.ndarray, watermarker: Watermarker | None) -> np.ndarray:
    pipe = Pipeline(voice, input=AudioFormat("pcm_f32le", 16000, 1), output=AudioFormat("pcm_f32le", OUT_RATE, 1),
                    params={}, postprocess=watermarker)
    pieces = [pipe.process(x16[i : i + 320]) for i in range(0, len(x16), 320)]  # 20 ms client chunks
    pieces.append(pipe.process(x16[:0], last=True))
    return np.concatenate(pieces)[:, 0][pipe.latency :]


def build_sessions(key: WatermarkKey, rng: np.random.Generator) -> tuple[list[Session], np.ndarray]:
    files = sorted(SPEECH_DIR.glob("*/*.wav"))
    speech = [sf.read(str(f), dtype="float32")[0] for f in files]
    x16 = np.concatenate(speech)
    edges = np.cumsum([0] + [len(s) for s in speech]) * (OUT_RATE // 16000)
    voices = {v.name: v for v in builtin_voices()}
    sessions = []
    for name in VOICES:
        token = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        unmarked = _convert(voices[name], x16, None)
        marked = _convert(voices[name], x16, Watermarker(key, token, OUT_RATE))
        sessions.append(Session(name, token, unmarked, marked, list(zip(edges[:-1], edges[1:], strict=True))))
    return sessions, x16


def imperceptibility(sessions: list[Session]) -> dict:
    rows = []
    for s in sessions:
        for a, b in s.bounds:
            host, marked = s.unmarked[a:b].astype(np.float64), s.marked[a:b].astype(np.float64)
            mark = marked - host
            h16, m16 = soxr.resample(host, OUT_RATE, 16000), soxr.resample(marked, OUT_RATE, 16000)
            rows.append({"voice": s.voice, "snr_db": 10 * np.log10(np.sum(host**2) / np.sum(mark**2)),
                         "pesq_wb": pesq(16000, h16, m16, "wb"), "stoi": stoi(h16, m16, 16000, extended=False)})
    out = {"files": len(rows)}
    for metric in ("snr_db", "pesq_wb", "stoi"):
        values = np.array([r[metric] for r in rows])
        out[metric] = {"mean": float(values.mean()), "min": float(values.min()), "p5": float(np.percentile(values, 5))}
    out["per_voice"] = {v: {m: float(np.mean([r[m] for r in rows if r["voice"] == v])) for m in ("snr_db", "pesq_wb")}
                        for v in VOICES}
    return out


def embedding_cost(key: WatermarkKey, x16: np.ndarray) -> dict:
    """Wall time of Watermarker.process per 20 ms frame, one stream on one core."""
    out = {}
    for rate in (8000, 16000, 48000):
        x = soxr.resample(x16[: 30 * 16000], 16000, rate).astype(np.float32)
        frame = rate // 50
        wm = Watermarker(key, 1, rate)
        times = []
        for i in range(0, len(x) - frame + 1, frame):
            t = time.perf_counter()
            wm.process(x[i : i + frame])
            times.append(time.perf_counter() - t)
        ms = np.array(times) * 1e3
        out[str(rate)] = {"mean_ms": float(ms.mean()), "p99_ms": float(np.percentile(ms, 99)), "frames": len(ms)}
    return out


# ---- work done in worker processes (sessions are inherited through fork) -----------------------------------------

_SESSIONS: list[Session] = []
_SPEECH16: np.ndarray = np.zeros(0)


def _attacked(name: str, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    marked, unmarked = [], []
    for i, s in enumerate(_SESSIONS):
        for src, dst in ((s.marked, marked), (s.unmarked, unmarked)):
            y, rate = ATTACKS[name](src, OUT_RATE, np.random.default_rng([seed, i]))
            dst.append(soxr.resample(y, rate, DETECT_IN).astype(np.float32) if rate != DETECT_IN else y)
    return marked, unmarked


def _cut(signals: list[np.ndarray], seconds: float, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    i = int(rng.integers(0, len(signals)))
    n = int(seconds * DETECT_IN)
    start = int(rng.integers(0, len(signals[i]) - n))
    return i, signals[i][start : start + n]


def _raw_ber(window: np.ndarray, key: WatermarkKey, layout: Layout, token: int) -> float | None:
    """Pre-FEC bit error rate at the alignment the pilot finds (None if the pilot is not found)."""
    analysis = Analysis(window)
    align = scan_pilot(analysis, layout, [[0, analysis.frames]])[0]
    if abs(align.z) < presence_threshold(1):
        return None
    truth = 1.0 - 2.0 * encode_token(token, key)
    best = max(soft_bits(analysis, layout, align, 0, analysis.frames), key=lambda s: float(s @ truth))
    return float(np.mean(np.sign(best) != truth))


def run_attack(job: tuple[str, dict, int]) -> dict:
    name, counts, seed = job
    key = WatermarkKey(bytes(range(32)))
    layout = Layout.from_key(key)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    marked, unmarked = _attacked(name, seed)
    out: dict = {"attack": name}
    for seconds in (1, 2):
        scores = [detect(_cut(marked, seconds, rng)[1], DETECT_IN, key).score for _ in range(counts["presence"])]
        out[f"tpr_{seconds}s"] = float(np.mean(np.array(scores) >= presence_threshold(1)))
        out[f"score_{seconds}s_p5"] = float(np.percentile(scores, 5))
    nulls = [detect(_cut(unmarked, 2, rng)[1], DETECT_IN, key).score for _ in range(counts["null"])]
    out["fpr_2s"] = float(np.mean(np.array(nulls) >= presence_threshold(1))) if nulls else None
    out["null_windows"] = len(nulls)
    wrong = 0
    bers = []
    for seconds, count in ((8, counts["token8"]), (16, counts["token16"])):
        right = 0
        for _ in range(count):
            i, window = _cut(marked, seconds, rng)
            tokens = {t.token for t in detect(window, DETECT_IN, key).tokens}
            right += _SESSIONS[i].token in tokens
            wrong += len(tokens - {_SESSIONS[i].token})
            if seconds == 8:
                bers.append(_raw_ber(window, key, layout, _SESSIONS[i].token))
        out[f"token_{seconds}s"] = right / max(1, count)
    found = [b for b in bers if b is not None]
    out["raw_ber_8s"] = float(np.median(found)) if found else None
    out["wrong_tokens"] = wrong
    out["token_excerpts"] = counts["token8"] + counts["token16"]
    out["seconds"] = time.perf_counter() - t0
    return out


def run_null(job: tuple[str, int, int, int]) -> dict:
    """Clean unmarked windows (speech or conversions): scores, for the false-positive rate."""
    source, seconds, count, seed = job
    key = WatermarkKey(bytes(range(32)))
    rng = np.random.default_rng(seed)
    if source == "speech":
        signals = [_SPEECH16]
    else:
        signals = [soxr.resample(s.unmarked, OUT_RATE, DETECT_IN).astype(np.float32) for s in _SESSIONS]
    scores, tokens = [], 0
    for _ in range(count):
        report = detect(_cut(signals, seconds, rng)[1], DETECT_IN, key)
        scores.append(report.score)
        tokens += len(report.tokens)
    return {"source": source, "seconds": seconds, "scores": scores, "tokens": tokens}


# ---- report ----------------------------------------------------------------------------------------------------------

def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def markdown(res: dict) -> str:
    imp, cost, null = res["imperceptibility"], res["embedding_cost"], res["null"]
    lines = [
        "# Watermark benchmark", "",
        f"Generated by `benchmarks/watermark.py` on {res['machine']} in {res['elapsed_s'] / 60:.1f} min "
        f"({res['cpu_count']} cores). {res['hours_marked']:.2f} h of marked conversions "
        f"({', '.join(VOICES)}; one session each, at 48 kHz).", "",
        "## Imperceptibility (marked vs unmarked conversion, per speech file)", "",
        "| metric | mean | 5th pct | min |", "|---|---|---|---|",
    ]
    for metric, label in (("snr_db", "SNR of mark to host, dB"), ("pesq_wb", "PESQ-WB"), ("stoi", "STOI")):
        m = imp[metric]
        lines.append(f"| {label} | {m['mean']:.2f} | {m['p5']:.2f} | {m['min']:.2f} |")
    lines += ["", f"Files: {imp['files']} ({len(VOICES)} voices × 20). Per voice (SNR dB / PESQ-WB): "
              + ", ".join(f"{v} {d['snr_db']:.1f}/{d['pesq_wb']:.2f}" for v, d in imp["per_voice"].items()) + ".", "",
              "## Embedding cost (one stream, one core, 20 ms frames)", "", "| rate | mean ms/frame | p99 ms/frame |",
              "|---|---|---|"]
    lines += [f"| {rate} Hz | {c['mean_ms']:.3f} | {c['p99_ms']:.3f} |" for rate, c in cost.items()]
    lines += ["", "## False positives (clean, unmarked)", "",
              f"Presence threshold for one window: z >= {res['threshold']:.2f} (fixed in the detector).", "",
              "| windows | source | count | false positives | rate | 99.9th pct score |", "|---|---|---|---|---|---|"]
    for row in null:
        lines.append(f"| {row['seconds']} s | {row['source']} | {row['count']} | {row['false_positives']} | "
                     f"{row['rate']:.1e} | {row['p999']:.2f} |")
    lines += ["", "## Robustness (windows at random start samples; every row also crops both ends)", "",
              "| attack | presence 1 s | presence 2 s | FPR 2 s | token 8 s | token 16 s | raw BER 8 s | wrong tokens |",
              "|---|---|---|---|---|---|---|---|"]
    legend = ["", "Attacks: " + "; ".join(f"**{name}** {text}" for name, text in DESCRIPTIONS.items()) + "."]
    for row in res["attacks"]:
        ber = "–" if row["raw_ber_8s"] is None else f"{100 * row['raw_ber_8s']:.1f} %"
        lines.append(f"| {row['attack']} | {_pct(row['tpr_1s'])} | {_pct(row['tpr_2s'])} | {row['fpr_2s']:.3f} | "
                     f"{_pct(row['token_8s'])} | {_pct(row['token_16s'])} | {ber} | {row['wrong_tokens']} |")
    c = res["counts"]
    lines += legend
    lines += ["", f"Per attack: {c['presence']} windows each of 1 s and 2 s, {c['null']} unmarked 2 s windows (FPR), "
              f"{c['token8']} excerpts of 8 s and {c['token16']} of 16 s. Raw BER: median pre-FEC coded-bit error "
              "rate on the 8 s excerpts where the pilot was found. Presence counts a window when its score reaches "
              "the one-window threshold; FPR 2 s is the same test on unmarked conversions after the same attack.",
              "", ATTRIBUTION, ""]
    return "\n".join(lines)


def main() -> None:
    global _SESSIONS, _SPEECH16
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    counts = ({"presence": 20, "null": 20, "token8": 6, "token16": 3} if args.quick else
              {"presence": 200, "null": 300, "token8": 60, "token16": 30})
    null_count = 200 if args.quick else 5000
    started = time.perf_counter()
    key = WatermarkKey(bytes(range(32)))
    _SESSIONS, _SPEECH16 = build_sessions(key, np.random.default_rng(2024))
    print(f"sessions built in {time.perf_counter() - started:.0f} s", flush=True)
    cost = embedding_cost(key, _SPEECH16)  # before the workers start: one core to itself
    print("embedding cost", json.dumps(cost), flush=True)
    imp = imperceptibility(_SESSIONS)
    print("imperceptibility", json.dumps({k: v for k, v in imp.items() if k != "per_voice"}), flush=True)
    attack_jobs = [(name, counts, 100 + i) for i, name in enumerate(ATTACKS)]
    null_jobs = [(source, seconds, null_count, 7 + 2 * seconds + (source == "speech"))
                 for seconds in (1, 2) for source in ("speech", "conversions")]
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        nulls = pool.map_async(run_null, null_jobs)
        attacks = []
        for row in pool.imap(run_attack, attack_jobs):
            print(json.dumps(row), flush=True)
            attacks.append(row)
        null_rows = []
        for row in nulls.get():
            scores = np.array(row.pop("scores"))
            positives = int(np.sum(scores >= presence_threshold(1)))
            null_rows.append({**row, "count": len(scores), "false_positives": positives,
                              "rate": positives / len(scores), "p999": float(np.percentile(scores, 99.9))})
    res = {
        "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "elapsed_s": time.perf_counter() - started, "counts": counts, "threshold": presence_threshold(1),
        "hours_marked": sum(len(s.marked) for s in _SESSIONS) / OUT_RATE / 3600,
        "sessions": [{"voice": s.voice, "token": f"{s.token:016x}"} for s in _SESSIONS],
        "imperceptibility": imp, "embedding_cost": cost, "null": null_rows, "attacks": attacks,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "watermark.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "watermark.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
