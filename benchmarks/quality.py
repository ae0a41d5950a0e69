"""Quality of the built-in DSP voices on real speech, measured with Praat (praat-parselmouth).

Every file of ../shared/speech goes through the streaming pipeline (the path users get: fixed
10 ms blocks, input fed in 20 ms chunks, gate off) and the output is aligned by the reported
latency. Measured:

* pitch: median |error| in cents of output F0 against input F0 * 2**(shift/12), over frames
  voiced in both, for shifts -12, -5, +5, +12 (formant 1). Both signals are analysed with the
  same Praat window (autocorrelation, floor = speaker floor * min(1, ratio)) so the frames and
  their smoothing match; the output ceiling is scaled by the ratio.
* formants: median over frames voiced in the input of F_out / F_in for F1 and F2 (Praat Burg,
  5 formants, ceiling 5000 Hz male / 5500 Hz female, times the formant factor for the output),
  divided by the formant factor (1.0 is perfect), for formant 0.85 and 1.2 at pitch 0 and for
  pure pitch shifts of -5 and +5 semitones.
* clicks at block joins, every voice: the brief's statistic (largest jump at a join against the
  99.9th percentile of jumps inside blocks) and, because that statistic is exceeded by chance on
  unmodified speech (see `passthrough`), the decisive one: the same file rendered with 7 ms blocks,
  whose samples at the 10 ms joins lie inside blocks, must have the same jumps there.
* delay of every voice at every rate, and the voice's own compute per 10 ms block at 48 kHz.

Writes benchmarks/results/quality.json and quality.md. Run: python benchmarks/quality.py
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(ROOT))

from rtvc.audio.pcm import SUPPORTED_RATES, AudioFormat  # noqa: E402
from rtvc.voices.base import Voice  # noqa: E402
from rtvc.voices.registry import VoiceRegistry  # noqa: E402

SPEECH = ROOT / ".." / "shared" / "speech"
RESULTS = ROOT / "benchmarks" / "results"
ATTRIBUTION = ("Audio from LibriSpeech (Panayotov et al., 2015, CC BY 4.0) and the CSTR VCTK Corpus "
               "(Yamagishi et al., CC BY 4.0).")
PITCH_SHIFTS = (-12.0, -5.0, 5.0, 12.0)
FORMANT_CASES = ((0.0, 0.85), (0.0, 1.2), (-5.0, 1.0), (5.0, 1.0))
PITCH_LIMIT_CENTS = 15.0
FORMANT_TOLERANCE = 0.08
MAX_DELAY_MS = 27.0
BLOCK_MS, CHECK_BLOCK_MS, CHUNK_MS = 10.0, 7.0, 20.0
F0_RANGE_HZ = {"M": (75.0, 300.0), "F": (100.0, 500.0)}  # Praat's advice per sex
FORMANT_CEILING_HZ = {"M": 5000.0, "F": 5500.0}


# -- rendering ------------------------------------------------------------------------------------

def render(voice: Voice, x: np.ndarray, rate: int, params: dict | None = None, *,
           block_ms: float = BLOCK_MS) -> tuple[np.ndarray, int]:
    """``x`` through the streaming pipeline; returns (output aligned with the input, latency)."""
    from rtvc.pipeline import Pipeline

    fmt = AudioFormat("pcm_f32le", rate, 1)
    pipeline = Pipeline(voice, input=fmt, output=fmt, params={**(params or {}), "gate_db": None},
                        block_ms=block_ms)
    chunk = int(rate * CHUNK_MS / 1000)
    pieces = [pipeline.process(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    pieces.append(pipeline.process(np.zeros(0, np.float32), last=True))
    y = np.concatenate(pieces)[:, 0]
    return y[pipeline.latency : pipeline.latency + len(x)], pipeline.latency


def render_stream(voice: Voice, x: np.ndarray, rate: int, params: dict | None = None, *,
                  block: int = 160) -> np.ndarray:
    """``x`` through a bare voice stream (no pipeline), aligned by the stream's delay."""
    stream = voice.open(sample_rate=rate, block=block, params=voice.check_params(params or {}))
    delay = stream.layout.delay
    padded = np.concatenate([x, np.zeros(delay + block, np.float32)])
    n = (len(x) + delay) // block * block + block
    y = np.concatenate([stream.process(padded[i : i + block]) for i in range(0, n, block)])
    return y[delay : delay + len(x)]


# -- measures -------------------------------------------------------------------------------------

def _pitch(x: np.ndarray, rate: int, floor: float, ceiling: float):
    import parselmouth

    return parselmouth.Sound(x.astype(np.float64), rate).to_pitch_ac(
        time_step=0.01, pitch_floor=floor, pitch_ceiling=ceiling)


def pitch_errors(x: np.ndarray, y: np.ndarray, rate: int, shift_st: float, sex: str,
                 coverage: dict | None = None) -> np.ndarray:
    """Cents of output F0 against input F0 * ratio, over frames voiced in both (time-aligned).

    ``coverage`` (optional dict) receives ``input_voiced`` and ``both_voiced`` frame counts.
    """
    ratio = 2.0 ** (shift_st / 12.0)
    floor, ceiling = F0_RANGE_HZ[sex]
    floor *= min(1.0, ratio)  # same window for both signals: long enough for the lower of the two
    p_in = _pitch(x, rate, floor, ceiling)
    p_out = _pitch(y, rate, floor, ceiling * max(1.0, ratio))
    f_in = p_in.selected_array["frequency"]
    f_out_all = p_out.selected_array["frequency"]
    t_out = p_out.xs()
    k = np.clip(np.rint((p_in.xs() - t_out[0]) / 0.01).astype(int), 0, len(t_out) - 1)
    f_out = f_out_all[k]
    both = (f_in > 0) & (f_out > 0)
    if coverage is not None:
        coverage.update(input_voiced=int(np.sum(f_in > 0)), both_voiced=int(np.sum(both)))
    return 1200.0 * np.log2(f_out[both] / (f_in[both] * ratio))


def _formants(x: np.ndarray, rate: int, ceiling: float) -> tuple[np.ndarray, np.ndarray]:
    import parselmouth

    track = parselmouth.Sound(x.astype(np.float64), rate).to_formant_burg(
        time_step=0.01, max_number_of_formants=5, maximum_formant=ceiling, window_length=0.025,
        pre_emphasis_from=50.0)
    times = np.asarray(track.xs())
    values = np.array([[track.get_value_at_time(i, t) for t in times] for i in (1, 2)])
    return times, values


def formant_ratios(x: np.ndarray, y: np.ndarray, rate: int, factor: float, sex: str) -> tuple[float, float]:
    """Median over input-voiced frames of F_out / F_in / factor, for F1 and F2 (1.0 = exact)."""
    ceiling = FORMANT_CEILING_HZ[sex]
    times, f_in = _formants(x, rate, ceiling)
    _, f_out = _formants(y, rate, ceiling * factor)
    pitch = _pitch(x, rate, *F0_RANGE_HZ[sex])
    voiced = np.array([pitch.get_value_at_time(t) for t in times])
    voiced = np.isfinite(voiced) & (voiced > 0)
    n = min(f_in.shape[1], f_out.shape[1])
    result = []
    for i in range(2):
        ok = voiced[:n] & np.isfinite(f_in[i, :n]) & np.isfinite(f_out[i, :n])
        result.append(float(np.median(f_out[i, :n][ok] / f_in[i, :n][ok]) / factor))
    return result[0], result[1]


def join_jumps(y: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """|y[n+1] - y[n]| at block joins (n = k*block - 1) and everywhere else."""
    jumps = np.abs(np.diff(y.astype(np.float64)))
    at_join = np.zeros(len(jumps), bool)
    at_join[block - 1 :: block] = True
    return jumps[at_join], jumps[~at_join]


def click_report(y: np.ndarray, y_check: np.ndarray, block: int) -> dict:
    """The brief's statistic plus the join-invariance check against a render with other blocks."""
    at_join, inside = join_jumps(y, block)
    p999 = float(np.percentile(inside, 99.9))
    check_at_join, _ = join_jumps(y_check, block)  # same positions, inside blocks in this render
    excess = float(np.max(at_join - check_at_join)) if len(at_join) else 0.0
    return {"join_max": float(at_join.max()), "inside_p99_9": p999, "join_max_over_p99_9": float(at_join.max()) / p999,
            "brief_statistic_ok": bool(at_join.max() <= p999), "join_excess_vs_other_blocks": excess,
            "no_join_effect": bool(excess <= 1e-6)}


# -- benchmark ------------------------------------------------------------------------------------

def speech_files() -> list[tuple[Path, str]]:
    with open(SPEECH / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    files = [(SPEECH / row["file"], row["gender"]) for row in rows]
    if not files:
        raise FileNotFoundError(f"no speech in {SPEECH}")
    return files


def delays(registry: VoiceRegistry) -> dict:
    from rtvc.pipeline import Pipeline

    out = {}
    for voice in registry:
        out[voice.name] = {}
        for rate in SUPPORTED_RATES:
            stream = voice.open(sample_rate=rate, block=rate // 100, params=voice.check_params({}))
            fmt = AudioFormat("pcm_f32le", rate, 1)
            pipe = Pipeline(voice, input=fmt, output=fmt)
            out[voice.name][str(rate)] = {"voice_delay_ms": 1000.0 * stream.layout.delay / rate,
                                          "pipeline_latency_ms": pipe.latency_ms}
    return out


def timings(registry: VoiceRegistry, x16: np.ndarray) -> dict:
    """Mean CPU time per 10 ms block of each voice stream alone at 48 kHz (best of 3 runs).

    Process CPU time rather than wall time: other jobs on a shared machine then do not count.
    """
    from rtvc.audio.resample import resample

    x = resample(x16, 16000, 48000).astype(np.float32)
    block = 480
    out = {}
    for voice in registry:
        best = float("inf")
        for _ in range(3):
            stream = voice.open(sample_rate=48000, block=block, params=voice.check_params({}))
            n = len(x) // block
            start = time.process_time()
            for i in range(n):
                stream.process(x[i * block : (i + 1) * block])
            best = min(best, (time.process_time() - start) / n)
        out[voice.name] = {"us_per_block": best * 1e6, "rtf": best / 0.010}
    return out


def run(files: list[tuple[Path, str]]) -> dict:
    registry = VoiceRegistry()
    shifter = registry.get("higher")
    report: dict = {"files": {}, "attribution": ATTRIBUTION}
    for path, sex in files:
        x, rate = sf.read(str(path), dtype="float32")
        name = f"{path.parent.name}/{path.name}"
        entry: dict = {"sex": sex, "seconds": len(x) / rate, "pitch_cents": {}, "formant_ratio": {}, "clicks": {}}
        for shift in PITCH_SHIFTS:
            y, _ = render(shifter, x, rate, {"pitch": shift, "formant": 1.0})
            coverage: dict = {}
            errors = pitch_errors(x, y, rate, shift, sex, coverage)
            entry["pitch_cents"][f"{shift:+g}"] = {"median_abs": float(np.median(np.abs(errors))),
                                                  "median": float(np.median(errors)), **coverage}
        for shift, factor in FORMANT_CASES:
            y, _ = render(shifter, x, rate, {"pitch": shift, "formant": factor})
            f1, f2 = formant_ratios(x, y, rate, factor, sex)
            entry["formant_ratio"][f"{shift:+g}st/x{factor:g}"] = {"F1": f1, "F2": f2}
        for voice in registry:
            y, _ = render(voice, x, rate)
            y_check, _ = render(voice, x, rate, block_ms=CHECK_BLOCK_MS)
            entry["clicks"][voice.name] = click_report(y, y_check, int(rate * BLOCK_MS / 1000))
        report["files"][name] = entry
        print(f"{name}: pitch " + " ".join(f"{k}:{v['median_abs']:.1f}c" for k, v in entry["pitch_cents"].items())
              + " | formant " + " ".join(f"{k}:{v['F1']:.3f}/{v['F2']:.3f}" for k, v in entry["formant_ratio"].items()),
              flush=True)
    first, _ = sf.read(str(files[0][0]), dtype="float32")
    report["delay"] = delays(registry)
    report["timing_48k_10ms"] = timings(registry, first)
    report["summary"] = summarize(report)
    return report


def summarize(report: dict) -> dict:
    files = report["files"].values()
    pitch = {}
    for shift in PITCH_SHIFTS:
        key = f"{shift:+g}"
        per_file = [f["pitch_cents"][key]["median_abs"] for f in files]
        pitch[key] = {"median_of_files": float(np.median(per_file)), "worst_file": float(np.max(per_file)),
                      "ok": bool(max(per_file) <= PITCH_LIMIT_CENTS)}
    formant = {}
    for shift, factor in FORMANT_CASES:
        key = f"{shift:+g}st/x{factor:g}"
        ratios = np.array([[f["formant_ratio"][key]["F1"], f["formant_ratio"][key]["F2"]] for f in files])
        formant[key] = {"F1_range": [float(ratios[:, 0].min()), float(ratios[:, 0].max())],
                        "F2_range": [float(ratios[:, 1].min()), float(ratios[:, 1].max())],
                        "ok": bool(np.all(np.abs(ratios - 1.0) <= FORMANT_TOLERANCE))}
    clicks = {}
    for name in next(iter(files))["clicks"]:
        rows = [f["clicks"][name] for f in files]
        clicks[name] = {"files_brief_statistic_ok": sum(r["brief_statistic_ok"] for r in rows),
                        "worst_join_max_over_p99_9": max(r["join_max_over_p99_9"] for r in rows),
                        "worst_join_excess": max(r["join_excess_vs_other_blocks"] for r in rows),
                        "no_join_effect": all(r["no_join_effect"] for r in rows)}
    worst_delay = {name: max(v["voice_delay_ms"] for v in rates.values()) for name, rates in report["delay"].items()}
    return {"pitch": pitch, "formant": formant, "clicks": clicks, "files": len(report["files"]),
            "worst_voice_delay_ms": worst_delay,
            "delay_ok": all(d <= MAX_DELAY_MS for d in worst_delay.values())}


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(report: dict) -> str:
    s, files = report["summary"], report["files"]
    pitch_keys, formant_keys = list(s["pitch"]), list(s["formant"])
    lines = ["# Built-in DSP voices: quality on real speech", "",
             f"{s['files']} files of ../shared/speech, through the streaming pipeline ({BLOCK_MS:g} ms blocks, "
             f"{CHUNK_MS:g} ms chunks, gate off), output aligned by the reported latency. Praat via parselmouth.", "",
             f"## Pitch: median |error| in cents (limit {PITCH_LIMIT_CENTS:g} on every file)", "",
             "Frames voiced in both signals, as a share of the frames voiced in the input, in brackets.", "",
             _row("file", *(f"{k} st" for k in pitch_keys)), "|---|" + "---:|" * len(pitch_keys)]
    for name, f in files.items():
        cells = [f"{v['median_abs']:.1f} ({v['both_voiced'] / max(1, v['input_voiced']):.0%})"
                 for v in f["pitch_cents"].values()]
        lines.append(_row(name, *cells))
    lines.append(_row("**median of files**", *(f"**{v['median_of_files']:.1f}**" for v in s["pitch"].values())))
    lines.append(_row("**worst file**", *(f"**{v['worst_file']:.1f}**" for v in s["pitch"].values())))
    lines += ["", "## Formants: F_out / F_in / factor, F1 / F2 (1.000 is exact; limit "
              f"+-{FORMANT_TOLERANCE:.0%})", "", _row("file", *formant_keys), "|---|" + "---:|" * len(formant_keys)]
    for name, f in files.items():
        lines.append(_row(name, *(f"{v['F1']:.3f} / {v['F2']:.3f}" for v in f["formant_ratio"].values())))
    for formant in ("F1", "F2"):
        ranges = (v[f"{formant}_range"] for v in s["formant"].values())
        lines.append(_row(f"**range {formant}**", *(f"{lo:.3f}-{hi:.3f}" for lo, hi in ranges)))
    lines += ["", "## Clicks at block joins", "",
              "Brief's statistic: largest jump at a join <= 99.9th percentile of jumps inside blocks. With ~100 "
              "joins per second the largest of them exceeds that percentile by chance on unmodified speech (see "
              "`passthrough`), so the decisive check is that joins change nothing: the same file in 7 ms blocks "
              "has the same jumps at those positions (excess 0).", "",
              _row("voice", "files meeting brief's statistic", "worst join max / p99.9", "worst join excess",
                   "no join effect"), "|---|---:|---:|---:|:---:|"]
    for name, c in s["clicks"].items():
        lines.append(_row(name, f"{c['files_brief_statistic_ok']}/{s['files']}",
                          f"{c['worst_join_max_over_p99_9']:.2f}", f"{c['worst_join_excess']:.1e}",
                          "yes" if c["no_join_effect"] else "NO"))
    lines += ["", "## Delay and compute", "",
              _row("voice", "voice delay, worst rate (ms)", "pipeline latency 48 kHz (ms)",
                   "CPU us per 10 ms block at 48 kHz", "RTF"), "|---|---:|---:|---:|---:|"]
    for name, d in report["delay"].items():
        t = report["timing_48k_10ms"][name]
        lines.append(_row(name, f"{s['worst_voice_delay_ms'][name]:.2f}", f"{d['48000']['pipeline_latency_ms']:.2f}",
                          f"{t['us_per_block']:.0f}", f"{t['rtf']:.4f}"))
    lines += ["", ATTRIBUTION, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=0, help="only the first N files (0: all)")
    args = parser.parse_args(argv)
    files = speech_files()
    if args.files:
        files = files[: args.files]
    report = run(files)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "quality.md").write_text(markdown(report))
    s = report["summary"]
    ok = (all(v["ok"] for v in s["pitch"].values()) and all(v["ok"] for v in s["formant"].values())
          and all(v["no_join_effect"] for v in s["clicks"].values()) and s["delay_ok"])
    print(markdown(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
