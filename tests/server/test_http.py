"""HTTP endpoints and `rtvc serve` as a real process."""

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from rtvc.governance.db import DB_FILENAME
from tests.server.conftest import connect, receive_all, send_audio, start_session, to_s16

REPO = Path(__file__).resolve().parents[2]


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_health_readiness_and_openapi(server):
    assert httpx.get(f"{server.http}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.http}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    spec = httpx.get(f"{server.http}/openapi.json").json()
    assert {"/healthz", "/readyz", "/metrics", "/v1/voices", "/v1/sessions"} <= set(spec["paths"])


def test_voices_need_a_key(server):
    assert httpx.get(f"{server.http}/v1/voices").status_code == 401
    denied = httpx.get(f"{server.http}/v1/voices", headers=auth("rtvc_x_y"))
    assert denied.status_code == 401 and denied.json()["code"] == "unauthorized"
    assert denied.headers["www-authenticate"].startswith("Bearer")
    voices = httpx.get(f"{server.http}/v1/voices", headers=auth(server.key)).json()["voices"]
    names = {v["id"] for v in voices}
    assert {"passthrough", "feminine"} <= names
    assert all({"id", "kind", "params"} <= set(v) for v in voices)


def test_sessions_need_an_admin_key(server):
    assert httpx.get(f"{server.http}/v1/sessions", headers=auth(server.key)).status_code == 403
    listing = httpx.get(f"{server.http}/v1/sessions", headers=auth(server.admin_key))
    assert listing.status_code == 200 and listing.json() == {"sessions": []}


def metric(text, name):
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_a_session(server, speech):
    x, rate = speech
    before = httpx.get(f"{server.http}/metrics")
    assert before.headers["content-type"].startswith("text/plain; version=0.0.4")

    async def run():
        async with connect(server) as ws:
            await start_session(ws)
            await send_audio(ws, to_s16(x[: rate // 2]), bytes_per_sample=2, rate=rate)
            return await receive_all(ws)

    got = asyncio.run(run())
    after = httpx.get(f"{server.http}/metrics").text
    for name in ("rtvc_sessions_active", "rtvc_block_compute_seconds_bucket", "rtvc_block_delay_seconds_count",
                 "rtvc_latency_seconds_sum", "rtvc_rtf", "rtvc_engine_load", "rtvc_engine_queue_depth"):
        assert name in after
    assert metric(after, "rtvc_frames_out_total") - metric(before.text, "rtvc_frames_out_total") == len(got.frames)
    assert metric(after, 'rtvc_sessions_opened_total{transport="ws"}') >= 1
    assert metric(after, "rtvc_block_compute_seconds_count") > metric(before.text, "rtvc_block_compute_seconds_count")
    assert metric(after, "rtvc_sessions_active") == 0


def test_page_is_served_at_root(server):
    page = httpx.get(f"{server.http}/")
    if not (REPO / "clients" / "web" / "index.html").is_file():
        assert page.status_code == 404
        return
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_rtvc_serve_prints_url_and_a_working_key(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtvc.cli.serve", "--port", "0", "--data-dir", str(tmp_path), "--log-level", "warning"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        while len(lines) < 3:
            line = proc.stdout.readline()
            assert line, "rtvc serve exited early:\n" + "".join(lines)
            lines.append(line)
        url = re.search(r"serving on (http://127\.0\.0\.1:\d+/)", lines[0]).group(1)
        key = re.search(r"(rtvc_[0-9a-f]+_\S+)", lines[1]).group(1)
        # the socket listens at once; requests wait in the backlog while the engine processes start
        assert httpx.get(url + "healthz", timeout=60).json() == {"status": "ok"}
        assert httpx.get(url + "v1/voices", headers=auth(key), timeout=10).status_code == 200
        database = tmp_path / DB_FILENAME  # keys live in the governance database, hashed
        assert database.is_file() and key.encode() not in database.read_bytes()
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn shuts down, then re-raises the signal it caught
        assert proc.wait(timeout=10) in (0, -signal.SIGINT)
