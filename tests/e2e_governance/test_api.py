"""The governance HTTP API on the real server: role boundaries, revocation over HTTP, and bad bodies that get a
4xx with a clear message and change nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io

import httpx
import numpy as np
import pytest
import soundfile as sf

from rtvc.governance import LOCAL_ADMIN
from rtvc.server.admin_api import MAX_STATEMENT_AUDIO_B64
from tests.e2e_governance.world import revoked_at_s, stream_ws_until_ended, ws_start
from tests.webrtc.loopback_peer import wait_until

_OK = {"voice": "alice", "statement": "ok", "purposes": ["research"]}


def spoken_statement(seconds: float = 0.5) -> bytes:
    """A small real WAV file (a tone standing in for the owner reading the statement)."""
    t = np.arange(int(16000 * seconds)) / 16000
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def statements(world) -> set[str]:
    folder = world.data / "consent-statements"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def api(world, method, path, key, **kwargs) -> httpx.Response:
    return httpx.request(method, world.server.http + path, headers=world.auth(key), timeout=20, **kwargs)


def test_role_boundaries(world):
    admin, owner, other = world.server.admin_key, world.owner[0], world.other_owner[0]
    client, auditor = world.clients["app-a"][0], world.auditor[0]
    grant_body = {"voice": "alice", "statement": "I allow research use.", "purposes": ["research"]}
    # a client cannot grant, list grants, read the audit log or make keys
    for method, path, body in [("POST", "/v1/grants", grant_body), ("GET", "/v1/grants", None),
                               ("GET", "/v1/audit", None), ("POST", "/v1/keys", {"role": "admin"})]:
        response = api(world, method, path, client, json=body)
        assert response.status_code == 403 and response.json()["code"] == "forbidden", (path, response.text)
    # another owner can neither grant for nor revoke alice, nor read alice's audit rows
    assert api(world, "POST", "/v1/grants", other, json=grant_body).status_code == 403
    mine = api(world, "POST", "/v1/grants", owner, json=grant_body)
    assert mine.status_code == 201, mine.text
    grant_id = mine.json()["grant_id"]
    assert api(world, "DELETE", f"/v1/grants/{grant_id}", other).status_code == 403
    theirs = api(world, "GET", "/v1/audit", other, params={"voice": "alice"}).json()["rows"]
    assert theirs == []
    own_rows = api(world, "GET", "/v1/audit", owner, params={"voice": "alice"}).json()["rows"]
    assert any(row["event"] == "grant.created" and row["grant_id"] == grant_id for row in own_rows)
    assert api(world, "GET", "/v1/grants", other).json()["grants"] == []
    # the auditor reads everything but changes nothing; only the admin makes keys
    assert api(world, "GET", "/v1/audit", auditor, params={"grant": grant_id}).json()["rows"]
    assert api(world, "DELETE", f"/v1/grants/{grant_id}", auditor).status_code == 403
    assert api(world, "POST", "/v1/keys", owner, json={"role": "client"}).status_code == 403
    assert api(world, "GET", "/v1/audit/verify", owner).status_code == 403
    assert api(world, "GET", "/v1/audit/verify", auditor).json()["ok"] is True
    made = api(world, "POST", "/v1/keys", admin, json={"role": "client", "name": "app-c"})
    assert made.status_code == 201 and made.json()["key"].startswith("rtvc_")
    assert world.gov.grants.get(LOCAL_ADMIN, grant_id).revoked_at is None


def test_revocation_over_http_ends_the_live_session(world):
    owner, key = world.owner[0], world.clients["app-a"][0]
    keep = world.grant("alice", purposes=["live_streaming"])  # a second grant: alice is not erased
    made = api(world, "POST", "/v1/grants", owner, json={"voice": "alice", "statement": "Live, app-a only.",
                                                         "purposes": ["live_streaming"], "clients": ["app-a"]})
    grant_id = made.json()["grant_id"]

    async def run():
        ws, started = await ws_start(world, key, "alice", "live_streaming")
        assert started["type"] == "session.started", started
        assert world.server.ctx.manager.get(started["session_id"]).grant_id == grant_id  # the newest grant
        streaming = asyncio.create_task(stream_ws_until_ended(ws, seconds=20))
        await asyncio.sleep(1.0)
        response = await asyncio.to_thread(api, world, "DELETE", f"/v1/grants/{grant_id}", owner)
        assert response.status_code == 200 and response.json()["status"] == "revoked", response.text
        final, arrived, _ = await streaming
        await ws.close()
        return final, arrived

    final, arrived = asyncio.run(run())
    assert final["reason"] == "grant_revoked" and arrived - revoked_at_s(world, grant_id) < 1.0
    assert not world.gov.voices.get("alice").erased and world.gov.grants.get(LOCAL_ADMIN, keep.grant_id).status() == "live"


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/v1/grants", {"voice": "alice", "statement": "ok", "purposes": ["fun"]}, "purposes.0"),
        ("/v1/grants", {"voice": "alice", "statement": "ok", "purposes": "research"}, "purposes"),
        ("/v1/grants", {"voice": "alice", "statement": "x" * 10_001, "purposes": ["research"]}, "statement"),
        ("/v1/grants", {"voice": "a" * 65, "statement": "ok", "purposes": ["research"]}, "voice"),
        ("/v1/grants", {"voice": "alice", "statement": "ok", "purposes": ["research"], "clients": 5}, "clients"),
        ("/v1/grants", {"voice": "alice", "statement": "ok", "purposes": ["research"], "extra": 1}, "extra"),
        ("/v1/grants", {"voice": "alice", "statement": "ok", "purposes": ["research"], "valid_until": "soon"},
         "valid_until"),
        ("/v1/grants", {"voice": "alice", "statement": "ok", "purposes": ["research"],
                        "valid_until": "2001-01-01T00:00:00Z"}, "valid_until"),
        ("/v1/grants", {**_OK, "statement_audio": "not base64!"}, "base64"),
        ("/v1/grants", {**_OK, "statement_audio": base64.b64encode(b"RIFF but not audio" * 10).decode()}, "audio"),
        ("/v1/grants", {**_OK, "statement_audio": 5}, "statement_audio"),
        ("/v1/grants", {**_OK, "statement_audio": "A" * (MAX_STATEMENT_AUDIO_B64 + 4)}, "statement_audio"),
        ("/v1/keys", {"role": "root"}, "role"),
        ("/v1/keys", {"role": "client", "name": 7}, "name"),
        ("/v1/keys", {"role": "client", "name": "n" * 65}, "name"),
    ],
)
def test_bad_bodies_get_a_4xx_with_a_clear_message_and_change_nothing(world, path, body, fragment):
    admin = world.server.admin_key
    asyncio.run(wait_until(lambda: not world.gov.sessions.live()))  # earlier sessions' ends are recorded
    before, files = world.gov.audit.head(), statements(world)
    response = api(world, "POST", path, admin, json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()
    assert error["type"] == "error" and error["code"] == "bad_request" and fragment in error["message"], error
    assert world.gov.audit.head() == before and statements(world) == files  # nothing written


def test_a_grant_over_http_keeps_the_recorded_statement_with_its_sha256(world):
    owner, other, client = world.owner[0], world.other_owner[0], world.clients["app-a"][0]
    audio = spoken_statement()
    made = api(world, "POST", "/v1/grants", owner, json={
        "voice": "dave", "statement": "I, Dave, allow research use of my voice.", "purposes": ["research"],
        "statement_audio": base64.b64encode(audio).decode()})
    assert made.status_code == 201, made.text
    grant = made.json()
    assert grant["audio_sha256"] == hashlib.sha256(audio).hexdigest()
    stored = world.data / "consent-statements" / f"{grant['grant_id']}.wav"
    assert stored.read_bytes() == audio and stored.stat().st_mode & 0o777 == 0o600
    created = world.gov.audit.query(LOCAL_ADMIN, grant_id=grant["grant_id"], event="grant.created")
    assert created[0].data["audio_sha256"] == grant["audio_sha256"]  # the audit row keeps the hash, never the audio

    path = f"/v1/grants/{grant['grant_id']}/statement-audio"
    fetched = api(world, "GET", path, owner)
    assert fetched.status_code == 200 and fetched.content == audio
    assert fetched.headers["content-type"] == "audio/wav" and fetched.headers["x-rtvc-sha256"] == grant["audio_sha256"]
    assert api(world, "GET", path, world.auditor[0]).content == audio
    assert api(world, "GET", path, other).status_code == 404  # another owner's grant is not theirs to see
    assert api(world, "GET", path, client).status_code == 403


def test_erasing_the_voice_deletes_its_recorded_statements_and_keeps_their_hashes(world):
    owner = world.owner[0]
    audio = spoken_statement(0.3)
    made = api(world, "POST", "/v1/grants", owner, json={
        "voice": "carol", "statement": "Carol allows dubbing.", "purposes": ["dubbing"],
        "statement_audio": base64.b64encode(audio).decode()}).json()
    stored = world.data / "consent-statements" / f"{made['grant_id']}.wav"
    assert stored.is_file()
    erased = api(world, "DELETE", "/v1/voices/carol", owner)
    assert erased.status_code == 200 and erased.json()["verified"] is True, erased.text
    assert not stored.exists()
    fetched = api(world, "GET", f"/v1/grants/{made['grant_id']}/statement-audio", owner)
    assert fetched.status_code == 404 and "sha256 remains" in fetched.json()["message"]
    kept = api(world, "GET", f"/v1/grants/{made['grant_id']}", owner).json()
    assert kept["audio_sha256"] == hashlib.sha256(audio).hexdigest() and kept["statement"] == "Carol allows dubbing."
    assert kept["status"] == "revoked" and kept["revoke_reason"] == "voice erased"


def test_the_openapi_spec_describes_the_governance_api(world):
    spec = httpx.get(world.server.http + "/openapi.json").json()
    for path in ("/v1/keys", "/v1/keys/{key_id}", "/v1/voices/owned", "/v1/grants", "/v1/grants/{grant_id}",
                 "/v1/grants/{grant_id}/statement-audio", "/v1/sessions/{session_id}", "/v1/audit",
                 "/v1/audit/verify", "/v1/detect"):
        assert path in spec["paths"], path
    grant = spec["components"]["schemas"]["GrantCreate"]
    assert grant["properties"]["statement"]["maxLength"] == 10_000
    audio = grant["properties"]["statement_audio"]["anyOf"][0]
    assert audio["maxLength"] == MAX_STATEMENT_AUDIO_B64 and "base64" in audio["description"]
