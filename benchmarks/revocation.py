"""Revocation latency: how long a live session runs on after its consent grant is revoked.

A real server (``--engine process``, the default mode, or ``thread``) over a real governance database streams a
tiny real-format RVC voice over the WebSocket in real time; each run starts a session under a fresh grant, revokes it after ``--lead-s`` and
measures from the revocation's commit time (``revoked_at``) to the arrival of ``session.ended`` at the client.
Two paths, ``--runs`` each:

* ``other_process``: a second :class:`GovernanceStore` on the same database (what ``rtvc consent revoke``
  does); the server notices it by polling (``[governance] poll_interval_s``).
* ``http``: ``DELETE /v1/grants/{id}`` on the server; its hook ends the session at once.

    .venv/bin/python benchmarks/revocation.py              # ~40 s on 2 cores
    .venv/bin/python benchmarks/revocation.py --runs 5

Writes benchmarks/results/revocation.json (process engine) or revocation-thread.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rtvc.governance import GovernanceStore  # noqa: E402
from tests.e2e_governance.world import make_world, revoked_at_s, stream_ws_until_ended, ws_start  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "revocation.json"


async def one_run(world, path: str, other: GovernanceStore, lead_s: float) -> float:
    """One session under a fresh grant, revoked after ``lead_s``; returns the latency in seconds."""
    grant = world.grant("bench", purposes=["research"])  # the newest grant: the session runs under it
    key = world.clients["app-a"][0]
    ws, started = await ws_start(world, key, "bench", "research")
    if started["type"] != "session.started":
        raise RuntimeError(f"session refused: {started}")
    streaming = asyncio.create_task(stream_ws_until_ended(ws, seconds=lead_s + 10))
    await asyncio.sleep(lead_s)
    if path == "other_process":
        await asyncio.to_thread(other.grants.revoke, world.owner[1], grant.grant_id)
    else:
        response = await asyncio.to_thread(
            httpx.delete, f"{world.server.http}/v1/grants/{grant.grant_id}", headers=world.auth(world.owner[0]))
        response.raise_for_status()
    final, arrived, _ = await streaming
    await ws.close()
    if final is None or final.get("reason") != "grant_revoked":
        raise RuntimeError(f"session did not end by revocation: {final}")
    return arrived - revoked_at_s(world, grant.grant_id)


def summary(latencies: list[float]) -> dict[str, float]:
    ms = np.array(latencies) * 1000
    return {"runs": len(ms), "p50_ms": round(float(np.median(ms)), 1), "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "max_ms": round(float(ms.max()), 1), "min_ms": round(float(ms.min()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per revocation path")
    parser.add_argument("--lead-s", type=float, default=0.6, help="seconds of streaming before the revocation")
    parser.add_argument("--engine", choices=("process", "thread"), default="process",
                        help="engine mode of the server (process: one engine process)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtvc-revocation-") as tmp:
        world = make_world(Path(tmp) / "data", ["bench"], engine={"mode": args.engine, "workers": 1})
        world.grant("bench", purposes=["research"])  # a standing grant, so revocations never erase the voice
        other = GovernanceStore.open(world.data)
        poll_s = world.server.ctx.governance.poll_interval_s
        rng = np.random.default_rng(7)
        try:
            results = {}
            for path in ("other_process", "http"):
                # a random phase against the server's poll ticks (a run starts right after the previous one ended,
                # which was at a tick: a fixed lead would always land at the same phase)
                leads = args.lead_s + rng.uniform(0, poll_s, args.runs)
                latencies = [asyncio.run(one_run(world, path, other, float(lead))) for lead in leads]
                results[path] = {**summary(latencies), "latencies_ms": [round(x * 1000, 1) for x in latencies]}
                print(f"{path:<14} p50 {results[path]['p50_ms']:.1f} ms  max {results[path]['max_ms']:.1f} ms "
                      f"over {args.runs} runs")
        finally:
            other.close()
            world.server.stop()
    report = {
        "what": "revoked_at (commit) -> session.ended received by a WebSocket client, live RVC session",
        "engine": args.engine,
        "poll_interval_s": poll_s,
        "lead_s": f"{args.lead_s} + uniform(0, poll_interval_s)",
        "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **results,
    }
    out = RESULTS if args.engine == "process" else RESULTS.with_name(f"revocation-{args.engine}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
