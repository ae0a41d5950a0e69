"""Load test: N concurrent real-time WebSocket sessions against a real server, N = 1, 2, 4, ... until it breaks.

Each session streams shared speech paced like a microphone (a 20 ms frame is sent when its last sample
would have been captured), through a built-in voice, and reads the converted audio back. Per N:

* added latency per output frame: arrival time minus the send time of the input frame holding the matching
  input sample (output sample k <-> input sample k - latency), i.e. everything: algorithmic latency,
  queueing, compute, both socket hops; p50 / p95 / p99 / max;
* underruns: output frames that arrive after a client playout buffer of ``--jitter-ms`` (started at the
  first output frame) has run dry;
* drops (input and output samples the server dropped), refused sessions (admission control);
* CPU: server process and client process, in cores; machine-wide CPU (other work shares the machine).

N breaks when p99 > algorithmic latency + ``--budget-ms`` (30), or any underrun, drop or refusal, in each of
``--attempts`` (2) runs: other work on a shared machine can spoil a single run.
The server runs in its own process exactly as ``rtvc serve`` builds it.

Writes benchmarks/results/load.json and load.png.
Run: .venv/bin/python benchmarks/load.py [--voice feminine] [--seconds 6] [--levels 1,2,4,...] [--block-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import platform
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
import uvloop
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtvc.audio.resample import resample  # noqa: E402
from rtvc.engine import EngineSettings  # noqa: E402
from rtvc.protocol import FrameHeader, pack_frame, parse_frame  # noqa: E402

SPEECH = ROOT.parent / "shared" / "speech"
RESULTS = ROOT / "benchmarks" / "results"


# -- server process -----------------------------------------------------------------------------------

def _serve(data_dir: str, max_load: float | None, mode: str, workers: int, ready: mp.Queue) -> None:
    from rtvc.cli.serve import build_server
    from rtvc.config import load_config
    from rtvc.engine import EngineSettings

    config = load_config(overrides={"server": {"data_dir": data_dir}})
    overrides = {"mode": mode, "workers": workers} | ({"max_load": max_load} if max_load is not None else {})
    server, sock, app = build_server(config, host="127.0.0.1", port=0, data_dir=Path(data_dir), log_level="error",
                                     engine_settings=EngineSettings.from_config(config, **overrides))
    key, _ = app.state.rtvc.keys.create("client", name="load-benchmark")
    ready.put((sock.getsockname()[1], key, os.getpid()))
    server.run(sockets=[sock])


# -- one session ----------------------------------------------------------------------------------------

async def one_session(url: str, key: str, voice: str, pcm: np.ndarray, rate: int, frame_ms: float,
                      jitter_ms: float, start_delay_s: float, block_ms: float | None = None) -> dict:
    await asyncio.sleep(start_delay_s)
    fmt = {"encoding": "pcm_s16le", "sample_rate": rate, "channels": 1}
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}, compression=None,
                                  proxy=None, max_size=None, open_timeout=30) as ws:
        start = {"type": "session.start", "voice": voice, "purpose": "research", "input": fmt, "output": fmt,
                 "params": {}} | ({"block_ms": block_ms} if block_ms else {})
        await ws.send(json.dumps(start))
        started = json.loads(await ws.recv())
        if started["type"] != "session.started":
            return {"refused": started.get("code", "unknown"), "why": started.get("message", "")}
        frame = round(rate * frame_ms / 1000)
        sent_at: list[float] = []
        arrivals: list[tuple[int, int, float, bool]] = []  # (start_sample, samples, arrival, discontinuity)
        ended: dict = {}

        async def send() -> None:
            t0 = time.perf_counter()
            for j, offset in enumerate(range(0, len(pcm), frame)):
                due = t0 + (j + 1) * frame / rate  # a microphone frame is ready when its last sample is captured
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                chunk = pcm[offset : offset + frame]
                last = offset + frame >= len(pcm)
                sent_at.append(time.perf_counter())
                await ws.send(pack_frame(FrameHeader(j, offset, last=last), chunk.tobytes()))

        async def receive() -> None:
            async for message in ws:
                now = time.perf_counter()
                if isinstance(message, bytes):
                    header, payload = parse_frame(message)
                    arrivals.append((header.start_sample, len(payload) // 2, now, header.discontinuity))
                else:
                    msg = json.loads(message)
                    if msg["type"] in ("session.ended", "error"):
                        ended.update(msg)

        await asyncio.gather(send(), receive())
    latency = started["latency_samples"]
    added, underruns, playout_start, late = [], 0, None, []
    for start, samples, arrival, _ in arrivals:
        if samples == 0:
            continue
        i = start - latency  # the input sample that the frame's first output sample comes from
        if 0 <= i < len(pcm):
            added.append(arrival - sent_at[i // frame])
        if playout_start is None:
            playout_start = (arrival - start / rate) + jitter_ms / 1000  # when output sample 0 would play
        elif arrival > playout_start + start / rate:
            underruns += 1
            late.append((round(arrival, 3), round(1000 * (arrival - playout_start - start / rate), 1)))
    return {"latency_ms": started["latency_ms"], "block_ms": started["block_ms"], "added_s": added,
            "underruns": underruns, "late": late, "discontinuities": sum(1 for a in arrivals if a[3]),
            "dropped_in": ended.get("dropped_in", -1), "dropped_out": ended.get("dropped_out", -1),
            "error": ended.get("code") if ended.get("type") == "error" else None}


async def engine_load_midway(http: str, delay_s: float) -> float | None:
    """The server's measured engine load (``rtvc_engine_load``), read once while all sessions stream."""
    await asyncio.sleep(delay_s)
    # in a thread, with a plain client: building an AsyncClient (TLS context) would stall this loop for tens of ms
    text = (await asyncio.to_thread(urllib.request.urlopen, f"{http}/metrics", timeout=10)).read().decode()
    for line in text.splitlines():
        if line.startswith("rtvc_engine_load "):
            return float(line.split()[1])
    return None


async def run_level(url, key, voice, pcm, rate, sessions, frame_ms, jitter_ms, seconds,
                    block_ms=None) -> tuple[list[dict], float]:
    rng = random.Random(sessions)
    tasks = [one_session(url, key, voice, pcm[rng.randrange(0, rate * 2):], rate, frame_ms, jitter_ms,
                         start_delay_s=i * 0.05 + rng.random() * frame_ms / 1000, block_ms=block_ms)
             for i in range(sessions)]
    http = url.replace("ws://", "http://").removesuffix("/v1/stream")
    load = asyncio.create_task(engine_load_midway(http, 0.05 * sessions + seconds / 2))
    results = await asyncio.gather(*tasks)
    return results, await load


# -- driver -----------------------------------------------------------------------------------------------

def speech(seconds: float, rate: int) -> np.ndarray:
    pieces, total = [], 0
    for path in sorted(SPEECH.glob("*/*.wav")):
        x, sr = sf.read(str(path), dtype="float32")
        pieces.append(resample(x, sr, rate))
        total += len(pieces[-1])
        if total >= (seconds + 2) * rate:
            break
    audio = np.concatenate(pieces)[: int((seconds + 2) * rate)]
    return np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")


def summarize(sessions: int, results: list[dict], server: psutil.Process, cpu: dict, budget_ms: float) -> dict:
    ok = [r for r in results if "refused" not in r]
    added = np.concatenate([r["added_s"] for r in ok]) * 1000 if ok else np.zeros(1)
    latency_ms = ok[0]["latency_ms"] if ok else float("nan")
    p50, p95, p99 = (float(v) for v in np.percentile(added, [50, 95, 99]))
    row = {
        "sessions": sessions,
        "admitted": len(ok),
        "refused": len(results) - len(ok),
        "algorithmic_latency_ms": round(latency_ms, 3),
        "block_ms": ok[0]["block_ms"] if ok else None,
        "target_p99_ms": round(latency_ms + budget_ms, 3),
        "added_latency_ms": {"p50": round(p50, 2), "p95": round(p95, 2), "p99": round(p99, 2),
                             "max": round(float(added.max()), 2), "frames": int(added.size)},
        "underruns": sum(r["underruns"] for r in ok),
        "discontinuities": sum(r["discontinuities"] for r in ok),
        "dropped_in_samples": sum(r["dropped_in"] for r in ok),
        "dropped_out_samples": sum(r["dropped_out"] for r in ok),
        "errors": sorted({r["error"] for r in ok if r["error"]}),
        "first_refusal": next((r["why"] for r in results if "refused" in r), None),  # the admission's reasoning
        **cpu,
    }
    # the sessions admitted kept real time (admission control refusing the rest is what it is for)
    row["admitted_ok"] = bool(ok) and not row["errors"] and row["underruns"] == 0 and \
        row["dropped_in_samples"] == 0 and row["dropped_out_samples"] == 0 and p99 <= row["target_p99_ms"]
    row["ok"] = row["admitted_ok"] and not row["refused"]
    return row


def _cpu_seconds(process: psutil.Process, *, children: bool = True) -> float:
    procs = [process] + (process.children(recursive=True) if children else [])
    total = 0.0
    for p in procs:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure_level(url, key, voice, pcm, rate, sessions, args, server: psutil.Process) -> dict:
    client = psutil.Process()
    psutil.cpu_percent(None)
    f0, s0, c0 = _cpu_seconds(server, children=False), _cpu_seconds(server), _cpu_seconds(client, children=False)
    t0 = time.perf_counter()
    # uvloop, as the server uses: the load client shares this machine's cores with the server it measures
    results, engine_load = uvloop.run(run_level(url, key, voice, pcm, rate, sessions, args.frame_ms, args.jitter_ms,
                                                 args.seconds, block_ms=args.block_ms or None))
    wall = time.perf_counter() - t0
    f1, s1, c1 = _cpu_seconds(server, children=False), _cpu_seconds(server), _cpu_seconds(client, children=False)
    cpu = {"wall_s": round(wall, 2),
           "server_cpu_cores": round((s1 - s0) / wall, 3),  # server process + its engine processes
           "server_front_cpu_cores": round((f1 - f0) / wall, 3),  # event loop, sockets, sessions
           "client_cpu_cores": round((c1 - c0) / wall, 3),
           "machine_cpu_percent": psutil.cpu_percent(None), "loadavg_1m": round(os.getloadavg()[0], 2),
           "engine_load": engine_load}
    return summarize(sessions, results, server, cpu, args.budget_ms)


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["sessions"] for r in rows]
    fig, (ax, ax_cpu) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, height_ratios=[2, 1])
    for q, style in (("p50", "o-"), ("p95", "s-"), ("p99", "^-")):
        ax.plot(n, [r["added_latency_ms"][q] for r in rows], style, label=f"added latency {q}")
    ax.plot(n, [r["target_p99_ms"] for r in rows], "k--", label="target: algorithmic + 30 ms")
    ax.plot(n, [r["algorithmic_latency_ms"] for r in rows], "k:", label="algorithmic latency")
    for r in rows:
        if not r.get("admitted_ok", r["ok"]):  # admitted sessions lost real time
            ax.axvline(r["sessions"], color="red", alpha=0.2)
        if r["refused"]:  # admission control at work: how many of the offered sessions it took
            ax.annotate(f"{r['admitted']} admitted", (r["sessions"], r["added_latency_ms"]["p99"]),
                        textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
    ax.set_ylabel("ms")
    ax.set_xlabel("sessions offered")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax_cpu.plot(n, [r["server_cpu_cores"] for r in rows], "o-", label="server (front + engine processes)")
    ax_cpu.plot(n, [r["client_cpu_cores"] for r in rows], "s-", label="load client")
    ax_cpu.set_ylabel("CPU cores")
    ax_cpu.set_xlabel("concurrent sessions")
    ax_cpu.set_xscale("log", base=2)
    ax_cpu.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voice", default="feminine")
    parser.add_argument("--seconds", type=float, default=6.0, help="audio per session per level")
    parser.add_argument("--rate", type=int, default=48000, help="wire sample rate in and out, Hz")
    parser.add_argument("--frame-ms", type=float, default=20.0)
    parser.add_argument("--block-ms", type=float, default=None,
                        help="block size each session asks for (default: the frame size, since blocks smaller than "
                             "the frames cannot lower the latency and cost CPU per block; 0: the server's default)")
    parser.add_argument("--jitter-ms", type=float, default=30.0, help="client playout buffer for the underrun count")
    parser.add_argument("--budget-ms", type=float, default=30.0, help="allowed p99 over the algorithmic latency")
    parser.add_argument("--levels", default="1,2,4,8,12,16,20,24,28,32,40,48,64")
    parser.add_argument("--keep-going", type=int, default=1, help="levels to run after the first broken one")
    parser.add_argument("--attempts", type=int, default=2, help="runs of a level before it counts as broken")
    parser.add_argument("--max-load", type=float, help="engine admission limit (default: the config's)")
    parser.add_argument("--mode", choices=["process", "thread"], default="process", help="engine processes or threads")
    parser.add_argument("--workers", type=int, default=2, help="engine processes (or threads)")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args()
    if args.block_ms is None:
        args.block_ms = args.frame_ms

    pcm = speech(args.seconds, args.rate)[: int((args.seconds + 2) * args.rate)]
    gc.freeze()  # the load client's own GC pauses would show up as server latency
    ctx = mp.get_context("spawn")
    ready: mp.Queue = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="rtvc-load-") as data_dir:
        proc = ctx.Process(target=_serve, args=(data_dir, args.max_load, args.mode, args.workers, ready))
        proc.start()
        port, key, pid = ready.get(timeout=60)
        server = psutil.Process(pid)
        url = f"ws://127.0.0.1:{port}/v1/stream"
        rows, broken_left = [], None
        try:
            for sessions in (int(v) for v in args.levels.split(",")):
                attempts = []
                for _ in range(args.attempts):  # a neighbour's burst on a shared machine can break one run
                    attempts.append(measure_level(url, key, args.voice, pcm, args.rate, sessions, args, server))
                    if attempts[-1]["ok"]:
                        break
                    time.sleep(1.0)
                row = attempts[-1]
                row["attempts"] = len(attempts)
                row["failed_attempts"] = [
                    {k: a[k] for k in ("added_latency_ms", "underruns", "dropped_in_samples", "dropped_out_samples",
                                       "refused", "server_cpu_cores", "machine_cpu_percent", "loadavg_1m")}
                    for a in attempts[:-1]
                ]
                rows.append(row)
                lat = row["added_latency_ms"]
                print(f"N={sessions:3d} admitted={row['admitted']:3d} p50={lat['p50']:7.2f} p95={lat['p95']:7.2f} "
                      f"p99={lat['p99']:7.2f} ms (target {row['target_p99_ms']:.1f}) underruns={row['underruns']} "
                      f"drops={row['dropped_in_samples']}/{row['dropped_out_samples']} refused={row['refused']} "
                      f"cpu server={row['server_cpu_cores']:.2f} (front {row['server_front_cpu_cores']:.2f}) client={row['client_cpu_cores']:.2f} "
                      f"machine={row['machine_cpu_percent']:.0f}% engine_load={row['engine_load']} "
                      f"{'ok' if row['ok'] else 'admitted ok' if row['admitted_ok'] else 'BROKEN'}", flush=True)
                if not row["ok"]:
                    broken_left = args.keep_going if broken_left is None else broken_left - 1
                    if broken_left <= 0:
                        break
                time.sleep(1.0)  # let the load window empty between levels
        finally:
            proc.terminate()
            proc.join(timeout=10)
    held = max((r["sessions"] for r in rows if r["ok"]), default=0)
    report = {
        "benchmark": "load",
        "voice": args.voice,
        "rate_hz": args.rate,
        "frame_ms": args.frame_ms,
        "requested_block_ms": args.block_ms or None,
        "seconds_per_session": args.seconds,
        "jitter_buffer_ms": args.jitter_ms,
        "budget_ms": args.budget_ms,
        "attempts_per_level": args.attempts,
        "engine_mode": args.mode,
        "engine_workers": args.workers,
        "max_load": args.max_load if args.max_load is not None else EngineSettings().max_load,
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "note": "load client and server share this machine's cores with each other and with other work",
        "nice": os.nice(0),
        "max_realtime_sessions": held,
        "levels": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    plot(rows, args.out.with_suffix(".png"),
         f"rtvc load: voice {args.voice}, {args.rate} Hz, {args.frame_ms:g} ms frames, "
         f"{args.block_ms or 'default'} ms blocks, "
         f"{psutil.cpu_count()} CPUs (shared) - held {held} sessions")
    print(f"held {held} real-time sessions; wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
