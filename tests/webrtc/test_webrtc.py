"""WebRTC against the real server on loopback: a real aiortc client peer, Opus both ways, the `rtvc` channel."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from rtvc.transport.webrtc import use_host_addresses
from tests.clients.support import PITCH_VOICE, active_seconds, median_f0, speech_at, start_server
from tests.webrtc.loopback_peer import LoopbackPeer, wait_until

RATE = 48000
PITCH_ST = 4.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    use_host_addresses(["127.0.0.1"])  # server and client peers gather loopback candidates only
    running = start_server(tmp_path_factory.mktemp("webrtc-data"))
    yield running
    running.stop()
    use_host_addresses([])


def no_sessions_left(server) -> bool:
    return len(server.ctx.manager) == 0 and not server.ctx.webrtc.peers


def test_round_trip_converts_speech_and_the_control_channel_works(server):
    speech = speech_at(RATE, 3.0)

    async def run():
        peer = LoopbackPeer(server.http, server.key, speech)
        response = await peer.offer(voice=PITCH_VOICE, params={"pitch": PITCH_ST})
        assert response.status_code == 201, response.text
        assert response.headers["location"] == f"/v1/webrtc/sessions/{peer.answer['session_id']}"
        await peer.wait_open()
        peer.send({"type": "ping", "t": "t-1"})
        peer.send({"type": "session.update", "params": {"pitch": 99.0}})
        peer.send({"type": "no.such.type"})
        replies = {kind: await peer.wait_message(kind) for kind in ("pong", "error")}
        await peer.wait_sent()
        errors = [m for m in peer.messages if m["type"] == "error"]
        stats = await peer.wait_message("stats")
        await asyncio.sleep(0.3)  # the last converted frames are on their way back
        seen = len(peer.messages)
        peer.send({"type": "session.end"})
        ended = await peer.wait_message("session.ended", after=seen)
        await peer.close()
        return peer.answer, replies, errors, stats, ended, peer.audio()

    answer, replies, errors, stats, ended, out = asyncio.run(run())
    assert answer["type"] == "answer" and answer["session"]["input"]["sample_rate"] == RATE
    assert replies["pong"]["t"] == "t-1"
    assert {e["code"] for e in errors} == {"bad_params", "bad_message"}  # answered; the session went on
    assert stats["frames_in"] > 0 and "queue_ms" in stats
    assert ended["samples_in"] >= 0.9 * len(speech)
    assert ended["session_id"] == answer["session_id"]

    # Converted speech came back: about as much of it as was sent, a pitch shift of 4 semitones up.
    assert active_seconds(out, RATE) == pytest.approx(active_seconds(speech, RATE), rel=0.35)
    ratio = median_f0(out, RATE) / median_f0(speech, RATE)
    assert ratio == pytest.approx(2 ** (PITCH_ST / 12), rel=0.1)
    asyncio.run(wait_until(lambda: no_sessions_left(server)))


def test_delete_ends_the_session_and_frees_it(server):
    async def run():
        peer = LoopbackPeer(server.http, server.key, speech_at(RATE, 8.0))
        response = await peer.offer(voice=PITCH_VOICE)
        assert response.status_code == 201, response.text
        await peer.wait_open()
        await wait_until(lambda: active_seconds(peer.audio(), RATE) > 0.3, timeout_s=10)
        assert len(server.ctx.manager) == 1
        deleted = await peer.delete()
        freed = no_sessions_left(server)
        again = await peer.delete()
        await wait_until(lambda: peer.pc.connectionState == "closed", timeout_s=10)  # the server hung up
        await peer.close()
        return deleted, freed, again

    deleted, freed, again = asyncio.run(run())
    assert deleted.status_code == 200
    assert deleted.json()["type"] == "session.ended" and deleted.json()["frames_in"] > 0
    assert freed
    assert again.status_code == 404


def test_whip_offer_answers_sdp_with_a_location(server):
    async def run():
        peer = LoopbackPeer(server.http, server.key, speech_at(RATE, 1.5))
        response = await peer.offer(voice=PITCH_VOICE, params={"pitch": 2.0}, whip=True)
        assert response.status_code == 201, response.text
        await wait_until(lambda: active_seconds(peer.audio(), RATE) > 0.3, timeout_s=10)
        deleted = await peer.delete()
        await peer.close()
        return response, deleted

    response, deleted = asyncio.run(run())
    assert response.headers["content-type"].startswith("application/sdp")
    assert response.text.startswith("v=0") and "opus/48000" in response.text
    assert response.headers["location"].startswith("/v1/webrtc/sessions/s_")
    assert deleted.status_code == 200
    assert no_sessions_left(server)


def test_offers_that_cannot_start_a_session_are_refused_and_leave_nothing(server):
    async def offer_sdp(audio: bool) -> str:
        from aiortc import RTCConfiguration, RTCPeerConnection

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # never aiortc's default STUN server
        pc.createDataChannel("rtvc")
        if audio:
            pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    async def run():
        good, no_audio = await offer_sdp(True), await offer_sdp(False)
        body = {"sdp": good, "type": "offer", "voice": PITCH_VOICE, "purpose": "research"}
        auth = {"Authorization": f"Bearer {server.key}"}
        async with httpx.AsyncClient(base_url=server.http, timeout=20) as http:
            post = http.post
            return {
                "no key": await post("/v1/webrtc/offer", json=body),
                "bad key": await post("/v1/webrtc/offer", json=body, headers={"Authorization": "Bearer rtvc_x_y"}),
                "unknown voice": await post("/v1/webrtc/offer", json={**body, "voice": "nobody"}, headers=auth),
                "bad params": await post("/v1/webrtc/offer", json={**body, "params": {"pitch": 99}}, headers=auth),
                "unknown field": await post("/v1/webrtc/offer", json={**body, "extra": 1}, headers=auth),
                "not json": await post("/v1/webrtc/offer", content=b"{", headers={**auth, "Content-Type":
                                                                                  "application/json"}),
                "bad sdp": await post("/v1/webrtc/offer", json={**body, "sdp": "v=0\r\nnonsense\r\n"}, headers=auth),
                "no audio": await post("/v1/webrtc/offer", json={**body, "sdp": no_audio}, headers=auth),
                "wrong type": await post("/v1/webrtc/offer", content=good, headers={**auth, "Content-Type":
                                                                                    "text/plain"}),
                "whip no voice": await post("/v1/webrtc/offer", content=good, headers={
                    **auth, "Content-Type": "application/sdp"}),
                "delete unknown": await http.delete("/v1/webrtc/sessions/s_0000", headers=auth),
            }

    answers = asyncio.run(run())
    expected = {
        "no key": (401, "unauthorized"), "bad key": (401, "unauthorized"),
        "unknown voice": (404, "unknown_voice"), "bad params": (400, "bad_params"),
        "unknown field": (400, "bad_message"), "not json": (400, "bad_message"), "bad sdp": (400, "bad_message"),
        "no audio": (400, "bad_message"), "wrong type": (400, "bad_message"), "whip no voice": (400, "bad_message"),
        "delete unknown": (404, "not_found"),
    }
    got = {name: (r.status_code, r.json()["code"]) for name, r in answers.items()}
    assert got == expected
    assert answers["no key"].headers["www-authenticate"].lower().startswith("bearer")
    assert no_sessions_left(server)


def test_a_client_that_vanishes_or_never_connects_frees_its_session(server):
    transport = server.ctx.webrtc

    async def run():
        vanishing = LoopbackPeer(server.http, server.key, speech_at(RATE, 5.0))
        assert (await vanishing.offer(voice=PITCH_VOICE)).status_code == 201
        await wait_until(lambda: active_seconds(vanishing.audio(), RATE) > 0.2, timeout_s=10)
        await vanishing.close()  # no DELETE, no session.end
        vanished_after = await wait_until(lambda: no_sessions_left(server), timeout_s=15)

        transport.connect_timeout_s = 1.0
        try:
            silent = LoopbackPeer(server.http, server.key, np.zeros(RATE, np.float32))
            await silent.pc.setLocalDescription(await silent.pc.createOffer())
            async with httpx.AsyncClient(base_url=server.http, timeout=20) as http:
                response = await http.post("/v1/webrtc/offer", headers=silent.headers, json={
                    "sdp": silent.pc.localDescription.sdp, "type": "offer", "voice": PITCH_VOICE,
                    "purpose": "research"})
            assert response.status_code == 201
            assert len(server.ctx.manager) == 1  # the answer is never applied: ICE cannot complete
            await wait_until(lambda: no_sessions_left(server), timeout_s=10)
            await silent.close()
        finally:
            transport.connect_timeout_s = 15.0
        return vanished_after

    asyncio.run(run())
