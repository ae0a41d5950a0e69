"""Revocation from another process (``rtvc consent revoke``) ends live WebSocket and WebRTC sessions within
1 s, and the voice, having lost its last grant, is erased: files gone, unloaded, audited."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np

from rtvc.governance import LOCAL_ADMIN
from rtvc.voices.store import voice_files
from tests.e2e_governance.world import revoked_at_s, stream_ws_until_ended, webrtc_offer, ws_start
from tests.webrtc.loopback_peer import LoopbackPeer, wait_until


def test_cli_revocation_ends_ws_and_webrtc_sessions_within_a_second_and_erases_the_voice(world):
    grant = world.grant("bob", purposes=["live_streaming", "accessibility"])
    key = world.clients["app-a"][0]
    model_dir = world.data / "voices" / "files" / world.gov.voices.get("bob").model_sha256
    assert model_dir.is_dir() and "bob" in world.server.ctx.registry

    async def run():
        ws, started = await ws_start(world, key, "bob", "live_streaming")
        assert started["type"] == "session.started", started
        ws_task = asyncio.create_task(stream_ws_until_ended(ws, seconds=30))
        t = np.arange(48000 * 30) / 48000
        peer = LoopbackPeer(world.server.http, key, (0.2 * np.sin(2 * np.pi * 160 * t)).astype(np.float32))
        try:
            response = await webrtc_offer(peer, "bob", "accessibility")
            assert response.status_code == 201, response.text
            await peer.wait_open()
            await wait_until(lambda: len(peer.audio()) > 4800)  # converted audio flows
            assert {s.grant_id for s in world.server.ctx.manager.sessions()} == {grant.grant_id}
            revoke = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "rtvc.cli", "consent", "revoke", grant.grant_id,
                                 "--data-dir", str(world.data)], capture_output=True, text=True, timeout=120)
            assert revoke.returncode == 0, revoke.stderr
            final, ws_arrived, _ = await ws_task
            ended = await peer.wait_message("session.ended", timeout_s=5)
            rtc_arrived = time.time()  # upper bound: noticed after the WebSocket's
            await ws.close()
            return final, ws_arrived, ended, rtc_arrived
        finally:
            await peer.close()

    final, ws_arrived, rtc_ended, rtc_arrived = asyncio.run(run())
    revoked = revoked_at_s(world, grant.grant_id)
    assert final["type"] == "session.ended" and final["reason"] == "grant_revoked", final
    assert rtc_ended["reason"] == "grant_revoked", rtc_ended
    assert ws_arrived - revoked < 1.0 and rtc_arrived - revoked < 1.0, (ws_arrived - revoked, rtc_arrived - revoked)

    # the last grant went: everything derived from the voice is gone, and the server no longer holds it
    asyncio.run(wait_until(lambda: world.gov.voices.get("bob").erased, timeout_s=10))  # erasure runs after
    assert not model_dir.exists() and voice_files(world.data, "bob") == []
    assert not (world.data / "voices" / "bob.json").exists()
    assert (world.data / "voices" / "files").is_dir()  # the shared content encoder stays
    assert "bob" not in world.server.ctx.registry
    erased = world.gov.audit.query(LOCAL_ADMIN, voice="bob", event="voice.erased")
    assert len(erased) == 1 and erased[0].data["verified"] is True and erased[0].data["files_removed"] >= 2
    # the thread engine's weights lived in the server's own registry: gone too, and the server says so
    asyncio.run(wait_until(lambda: world.gov.audit.query(LOCAL_ADMIN, voice="bob", event="voice.unloaded")))
    [unloaded] = world.gov.audit.query(LOCAL_ADMIN, voice="bob", event="voice.unloaded")
    assert unloaded.data["verified"] is True and unloaded.data["processes"] == 1  # the engine threads
    assert "bob" not in world.server.ctx.registry.loaded()
    ends = world.gov.audit.query(LOCAL_ADMIN, voice="bob", event="session.ended")
    assert sorted(row.data["reason"] for row in ends) == ["grant_revoked", "grant_revoked"]
    assert all(row.data["converted_ms"] > 0 for row in ends)
    reply_ws, reply = asyncio.run(ws_start(world, key, "bob", "live_streaming"))
    assert reply["type"] == "error" and reply["code"] in ("unknown_voice", "no_consent"), reply
