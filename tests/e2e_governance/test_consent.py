"""Consent enforced on the real server: each refusal code over the WebSocket and WebRTC, audited.

Refusal codes covered end to end here: ``no_consent``, ``purpose_not_allowed``, ``client_not_allowed``,
``grant_expired`` and ``grant_revoked``, each on the WebSocket (``session.start``) and on a WebRTC offer.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np

from rtvc.governance import LOCAL_ADMIN
from rtvc.protocol import CloseCode
from rtvc.voices.store import voice_files
from tests.e2e_governance.world import stream_ws_until_ended, webrtc_offer, ws_start
from tests.webrtc.loopback_peer import LoopbackPeer


def refused(world, key, voice, purpose) -> tuple[dict, int]:
    """session.start over the WebSocket; returns (the error, the close code)."""

    async def run():
        ws, reply = await ws_start(world, key, voice, purpose)
        await ws.wait_closed()
        return reply, ws.close_code

    return asyncio.run(run())


def offered(world, key, voice, purpose):
    """A WebRTC offer for ``voice``; returns the HTTP response."""

    async def run():
        peer = LoopbackPeer(world.server.http, key, audio=np.zeros(4800, "float32"))
        try:
            return await webrtc_offer(peer, voice, purpose)
        finally:
            await peer.close()

    return asyncio.run(run())


def refusals(world, voice) -> list[str]:
    return [row.data["code"] for row in world.gov.audit.query(LOCAL_ADMIN, voice=voice, event="session.refused")]


def test_a_voice_without_a_grant_is_refused_and_the_refusal_audited(world):
    key = world.clients["app-a"][0]
    reply, close_code = refused(world, key, "nogrant", "live_streaming")
    assert reply["type"] == "error" and reply["code"] == "no_consent", reply
    assert close_code == CloseCode.CONSENT_REFUSED
    assert refusals(world, "nogrant") == ["no_consent"]
    assert world.gov.sessions.live(voice="nogrant") == []


def test_purpose_and_client_outside_the_grant_are_refused_on_both_transports(world):
    world.grant("alice", purposes=["game_character"], clients=["app-a"])
    app_a, app_b = world.clients["app-a"][0], world.clients["app-b"][0]
    reply, _ = refused(world, app_a, "alice", "dubbing")
    assert reply["code"] == "purpose_not_allowed", reply
    reply, _ = refused(world, app_b, "alice", "game_character")
    assert reply["code"] == "client_not_allowed", reply

    async def offer(key, purpose):
        peer = LoopbackPeer(world.server.http, key, audio=__import__("numpy").zeros(4800, "float32"))
        try:
            return await webrtc_offer(peer, "alice", purpose)
        finally:
            await peer.close()

    response = asyncio.run(offer(app_b, "game_character"))
    assert response.status_code == 403 and response.json()["code"] == "client_not_allowed"
    assert refusals(world, "alice") == ["purpose_not_allowed", "client_not_allowed", "client_not_allowed"]
    assert len(world.server.ctx.manager) == 0


def test_a_purpose_outside_the_fixed_list_is_a_bad_message(world):
    reply, close_code = refused(world, world.clients["app-a"][0], "alice", "fun")
    assert reply["code"] == "bad_message" and "live_streaming" in reply["message"]
    assert close_code == CloseCode.BAD_REQUEST


def test_expiry_ends_the_live_session_and_then_refuses_with_grant_expired(world):
    now = datetime.now(UTC)
    # a pending grant keeps the voice (no erasure when the short one lapses); created first so the expired
    # grant is the newest and decides the refusal
    world.grant("carol", valid_from=now + timedelta(days=1))
    short = world.grant("carol", valid_until=now + timedelta(seconds=2.5))
    key = world.clients["app-a"][0]

    async def live():
        ws, started = await ws_start(world, key, "carol", "live_streaming")
        assert started["type"] == "session.started", started
        final, arrived, audio = await stream_ws_until_ended(ws, seconds=10)
        await ws.close()
        return final, arrived, audio

    final, arrived, audio = asyncio.run(live())
    until = datetime.fromisoformat(short.valid_until.replace("Z", "+00:00")).timestamp()
    assert final["type"] == "session.ended" and final["reason"] == "grant_expired", final
    assert arrived - until < 1.0  # ended within a second of the expiry
    assert len(audio) > 0  # it did convert before
    reply, _ = refused(world, key, "carol", "live_streaming")
    assert reply["code"] == "grant_expired", reply
    ended = world.gov.audit.query(LOCAL_ADMIN, voice="carol", event="session.ended")
    assert ended[-1].data["reason"] == "grant_expired" and ended[-1].data["converted_ms"] > 0
    assert time.time() - until < 30


def test_a_revoked_grant_is_refused_at_start_on_both_transports_while_another_clients_grant_keeps_the_voice(world):
    app_a, app_b = world.clients["app-a"][0], world.clients["app-b"][0]
    mine = world.grant("dave", purposes=["research"], clients=["app-a"])
    world.grant("dave", purposes=["research"], clients=["app-b"])
    response = httpx.delete(f"{world.server.http}/v1/grants/{mine.grant_id}", headers=world.auth(world.owner[0]),
                            timeout=20)
    assert response.status_code == 200, response.text

    reply, close_code = refused(world, app_a, "dave", "research")
    assert reply["type"] == "error" and reply["code"] == "grant_revoked", reply
    assert mine.grant_id in reply["message"] and close_code == CloseCode.CONSENT_REFUSED
    response = offered(world, app_a, "dave", "research")
    assert response.status_code == 403 and response.json()["code"] == "grant_revoked", response.text
    assert refusals(world, "dave") == ["grant_revoked", "grant_revoked"]
    # the other client's grant kept the voice: nothing was erased and it still streams
    assert not world.gov.voices.get("dave").erased and voice_files(world.data, "dave")

    async def other_client():
        ws, started = await ws_start(world, app_b, "dave", "research")
        await ws.close()
        return started

    assert asyncio.run(other_client())["type"] == "session.started"


def test_no_consent_purpose_and_expiry_refusals_reach_a_webrtc_offer_too(world):
    key = world.clients["app-a"][0]
    world.grant("bob", purposes=["research"])  # live: keeps bob when the short grant lapses
    short = world.grant("bob", purposes=["dubbing"], valid_until=datetime.now(UTC) + timedelta(seconds=1))
    expected = {("nogrant", "research"): "no_consent", ("bob", "accessibility"): "purpose_not_allowed"}
    for (voice, purpose), code in expected.items():
        response = offered(world, key, voice, purpose)
        assert response.status_code == 403 and response.json()["code"] == code, (voice, purpose, response.text)
    time.sleep(max(0.0, datetime.fromisoformat(short.valid_until.replace("Z", "+00:00")).timestamp() - time.time()))
    response = offered(world, key, "bob", "dubbing")
    assert response.status_code == 403 and response.json()["code"] == "grant_expired", response.text
    assert short.grant_id in response.json()["message"]
    assert refusals(world, "bob") == ["purpose_not_allowed", "grant_expired"]
    assert not world.gov.voices.get("bob").erased and len(world.server.ctx.manager) == 0
