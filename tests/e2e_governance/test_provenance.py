"""A converted recording leads back to its session: POST /v1/detect (auditor or admin) resolves the watermark
token to voice, grant, client, purpose and start time, and audits the detection."""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import soundfile as sf

from rtvc.governance import LOCAL_ADMIN
from tests.e2e_governance.world import stream_ws_until_ended, ws_start


def test_a_converted_files_token_resolves_to_its_session(world):
    grant = world.grant("dave", purposes=["dubbing"], clients=["app-b"])
    key, client = world.clients["app-b"]

    async def run():
        ws, started = await ws_start(world, key, "dave", "dubbing")
        assert started["type"] == "session.started", started
        token = world.server.ctx.manager.get(started["session_id"]).watermark_token
        final, _, audio = await stream_ws_until_ended(ws, seconds=5)
        await ws.close()
        return started["session_id"], token, final, audio

    session_id, token, final, audio = asyncio.run(run())
    assert final["type"] == "session.ended" and final["reason"] == "client", final
    wav = io.BytesIO()  # a 4 s excerpt of the converted recording
    sf.write(wav, np.frombuffer(audio, "<i2")[: 4 * 16000], 16000, format="WAV", subtype="PCM_16")
    url = f"{world.server.http}/v1/detect"
    for who in (key, world.owner[0]):  # clients and owners may not run detection
        assert httpx.post(url, content=wav.getvalue(), headers=world.auth(who), timeout=60).status_code == 403
    report = httpx.post(url, content=wav.getvalue(), headers=world.auth(world.auditor[0]), timeout=60)
    assert report.status_code == 200, report.text
    found = {t["token"]: t["provenance"] for t in report.json()["tokens"]}
    provenance = found[f"{token:016x}"]
    assert provenance["session_id"] == session_id and provenance["voice"] == "dave"
    assert provenance["grant_id"] == grant.grant_id and provenance["purpose"] == "dubbing"
    assert provenance["client"] == client.id and provenance["client_name"] == "app-b"
    assert provenance["started_at"] and provenance["ended_at"]
    detections = world.gov.audit.query(LOCAL_ADMIN, event="detection", voice="dave")
    assert detections and detections[-1].actor == world.auditor[1].id and detections[-1].data["resolved"] is True
