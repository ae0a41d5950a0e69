"""Every session is watermarked, fail closed: no watermark, no converted audio."""

import asyncio
import io

import httpx
import numpy as np
import pytest
import soundfile as sf

from rtvc.session.watermark import GuardedWatermark, WatermarkFailed, make_watermark, watermark_available
from tests.server.conftest import connect, receive_all, send_audio, start_message, start_session, to_s16


def test_the_watermark_is_installed():
    assert watermark_available(), "rtvc.watermark is part of rtvc: every session must be watermarked"


def test_sessions_are_watermarked_with_their_own_token(server, speech):
    x, rate = speech

    async def one():
        async with connect(server) as ws:
            started = await start_session(ws, voice="feminine", params={})
            session = server.ctx.manager.get(started["session_id"])
            token = session.watermark_token
            sender = asyncio.create_task(send_audio(ws, to_s16(x[: rate // 2]), bytes_per_sample=2, rate=rate))
            got = await receive_all(ws)
            await sender
            return started, token, got

    async def run():
        return await asyncio.gather(one(), one())

    (started_a, token_a, got_a), (started_b, token_b, got_b) = asyncio.run(run())
    assert started_a["watermarked"] and started_b["watermarked"]
    assert isinstance(token_a, int) and 0 <= token_a < 2**64 and token_a != token_b
    assert got_a.close_code == got_b.close_code == 1000
    assert got_a.pcm != got_b.pcm  # same input and voice; only the per-session mark differs


def test_unusable_watermark_key_refuses_the_session(make_server):
    server = make_server()
    key_file = server.ctx.data_dir / "watermark.key"
    key_file.write_text("not a key\n")
    key_file.chmod(0o600)

    async def run():
        async with connect(server) as ws:
            await ws.send(start_message(voice="feminine", params={}))
            return await receive_all(ws)

    got = asyncio.run(run())
    [error] = got.of_type("error")
    assert error["code"] == "watermark_failed" and got.close_code == 1011
    assert not got.frames and not got.of_type("session.started")
    assert len(server.ctx.manager) == 0


def test_a_failing_mark_raises_watermark_failed(tmp_path):
    stage = make_watermark(tmp_path, 16000, token=12345)
    y = stage.process(np.zeros(160, dtype=np.float32))
    assert y.shape == (160,)
    with pytest.raises(WatermarkFailed):
        stage.process(np.zeros((160, 2), dtype=np.float32))  # the embedder refuses; the guard reports it
    with pytest.raises(WatermarkFailed):
        stage.process(np.zeros(160, dtype=np.float32))  # and stays failed: nothing unmarked gets through
    assert isinstance(stage, GuardedWatermark)


def test_detect_finds_the_session_token_in_converted_audio(server, speech):
    """Stream 4 s through a voice, save what came back as WAV, ask POST /v1/detect which session it was."""
    x, rate = speech
    x = np.tile(x, 2)[: 4 * rate]

    async def run():
        async with connect(server) as ws:
            started = await start_session(ws, voice="feminine", params={})
            token = server.ctx.manager.get(started["session_id"]).watermark_token
            sender = asyncio.create_task(send_audio(ws, to_s16(x), bytes_per_sample=2, rate=rate, lead_s=0.4))
            got = await receive_all(ws)
            await sender
            return token, got

    token, got = asyncio.run(run())
    wav = io.BytesIO()
    sf.write(wav, np.frombuffer(got.pcm, "<i2"), rate, format="WAV", subtype="PCM_16")
    client = {"Authorization": f"Bearer {server.key}"}
    assert httpx.post(f"{server.http}/v1/detect", content=wav.getvalue(), headers=client).status_code == 403
    auth = {"Authorization": f"Bearer {server.admin_key}"}  # detection is for auditors and admins
    report = httpx.post(f"{server.http}/v1/detect", content=wav.getvalue(), headers=auth, timeout=60).json()
    assert report["present"] is True
    found = {t["token"]: t["provenance"] for t in report["tokens"]}
    assert found[f"{token:016x}"]["voice"] == "feminine" and found[f"{token:016x}"]["purpose"] == "research"
    unmarked = io.BytesIO()
    sf.write(unmarked, x, rate, format="WAV", subtype="PCM_16")
    clean = httpx.post(f"{server.http}/v1/detect", content=unmarked.getvalue(), headers=auth, timeout=60).json()
    assert clean["present"] is False and clean["tokens"] == []
    assert httpx.post(f"{server.http}/v1/detect", content=b"not audio", headers=auth).status_code == 400
    assert httpx.post(f"{server.http}/v1/detect", content=wav.getvalue()).status_code == 401
