"""Erasure reaches the engine processes, and voices imported while the server runs stream without a restart.

One real server with the process engine (two engine processes, the default mode), a real governance database
and tiny real-format RVC voices. Each engine process is asked over its pipe which voices it has registered
and which it holds weights for.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from rtvc.governance import LOCAL_ADMIN
from rtvc.voices.store import voice_files
from tests.e2e_governance.world import import_voice, make_world, stream_ws_until_ended, ws_start
from tests.webrtc.loopback_peer import wait_until

WORKERS = 2


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    running = make_world(tmp_path_factory.mktemp("gov-procs"), ["eve", "fay"],
                         engine={"mode": "process", "workers": WORKERS})
    yield running
    running.server.stop()


async def engines(world) -> list[dict]:
    """Each engine process's own answer: {"registered", "loaded", "streams"} voice names."""
    backend = world.server.ctx.backend
    # generous: a process answers between engine passes, and a pass may be loading a model on a busy machine
    future = asyncio.run_coroutine_threadsafe(backend.voices_loaded(timeout_s=60), world.server.ctx.governance.loop)
    answers = await asyncio.wrap_future(future)
    assert len(answers) == WORKERS and all(a is not None for a in answers), answers
    return answers


async def stream_until_a_process_holds(world, key, voice, purpose="live_streaming"):
    """Start a session and stream until an engine process reports the voice's weights loaded."""
    ws, started = await ws_start(world, key, voice, purpose)
    assert started["type"] == "session.started", started
    streaming = asyncio.create_task(stream_ws_until_ended(ws, seconds=30))
    holders = []
    for _ in range(200):
        holders = [a for a in await engines(world) if voice in a["loaded"]]
        if holders:
            break
        await asyncio.sleep(0.05)
    assert len(holders) == 1, "the session's engine process never loaded the voice"
    return ws, streaming


def unloaded_rows(world, voice):
    return world.gov.audit.query(LOCAL_ADMIN, voice=voice, event="voice.unloaded")


def assert_gone_everywhere(world, voice, answers):
    for answer in answers:
        assert voice not in answer["registered"] and voice not in answer["loaded"] and voice not in answer["streams"]
    assert voice not in world.server.ctx.registry and voice not in world.server.ctx.registry.loaded()
    assert voice_files(world.data, voice) == [] and not (world.data / "voices" / f"{voice}.json").exists()


def test_revoking_the_last_grant_unloads_the_voice_from_every_engine_process(world):
    grant = world.grant("eve")
    key, owner = world.clients["app-a"][0], world.owner[0]
    model_dir = world.data / "voices" / "files" / world.gov.voices.get("eve").model_sha256

    async def run():
        ws, streaming = await stream_until_a_process_holds(world, key, "eve")
        response = await asyncio.to_thread(httpx.delete, f"{world.server.http}/v1/grants/{grant.grant_id}",
                                           headers=world.auth(owner), timeout=20)
        assert response.status_code == 200, response.text
        final, _, audio = await streaming
        await ws.close()
        await wait_until(lambda: world.gov.audit.query(LOCAL_ADMIN, voice="eve", event="voice.erased"), timeout_s=20)
        await wait_until(lambda: unloaded_rows(world, "eve"), timeout_s=10)
        return final, audio, await engines(world)

    final, audio, answers = asyncio.run(run())
    assert final["reason"] == "grant_revoked" and len(audio) > 0
    erased = world.gov.audit.query(LOCAL_ADMIN, voice="eve", event="voice.erased")
    assert len(erased) == 1 and erased[0].data["verified"] is True  # verified covers the engine processes too
    [row] = unloaded_rows(world, "eve")  # the server's confirmation after the erasure committed
    assert row.seq > erased[0].seq and row.actor == "server"
    assert row.data == {"server": world.server.ctx.governance.server_id, "processes": WORKERS, "answered": WORKERS,
                        "still_loaded": 0, "sessions_closed": 0, "verified": True}
    assert not model_dir.exists()
    assert_gone_everywhere(world, "eve", answers)


def test_cli_erase_during_a_live_session_is_confirmed_by_the_running_server(world):
    world.grant("fay")
    key = world.clients["app-a"][0]

    async def run():
        ws, streaming = await stream_until_a_process_holds(world, key, "fay")
        erase = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "rtvc.cli", "voices", "erase", "fay", "--json", "--data-dir",
                             str(world.data)], capture_output=True, text=True, timeout=120)
        final, _, _ = await streaming
        await ws.close()
        return erase, final, await engines(world)

    erase, final, answers = asyncio.run(run())
    assert erase.returncode == 0, erase.stderr
    report = json.loads(erase.stdout)
    assert report["leftovers"] == [] and report["files_left"] == []
    [server] = report["servers"]  # the running server, found by its lease, confirmed the unload
    assert server["server_id"] == world.server.ctx.governance.server_id
    assert server["confirmed"] and server["verified"] and server["processes"] == WORKERS
    assert server["still_loaded"] == 0
    assert final["reason"] == "grant_revoked"  # the erasure revoked the grant: the session ended first
    assert_gone_everywhere(world, "fay", answers)
    assert world.gov.verify_audit(LOCAL_ADMIN).ok


def test_a_voice_imported_while_running_streams_without_restart_and_leaves_when_erased(world):
    admin, key = world.server.admin_key, world.clients["app-a"][0]

    def listed() -> list[str]:
        response = httpx.get(f"{world.server.http}/v1/voices", headers=world.auth(key), timeout=10)
        return [voice["id"] for voice in response.json()["voices"]]

    assert "gil" not in listed()
    import_voice(world.data, "gil", world.owner[1].id, seed=7)  # as `rtvc voices import` would, beside the server
    asyncio.run(wait_until(lambda: "gil" in listed(), timeout_s=10))
    world.grant("gil")

    async def run():
        ws, streaming = await stream_until_a_process_holds(world, key, "gil")
        before = await engines(world)
        response = await asyncio.to_thread(httpx.delete, f"{world.server.http}/v1/voices/gil",
                                           headers=world.auth(admin), timeout=30)
        final, _, audio = await streaming
        await ws.close()
        return before, response, final, audio, await engines(world)

    before, response, final, audio, after = asyncio.run(run())
    assert all("gil" in answer["registered"] for answer in before)  # every engine process followed the store
    assert len(audio) > 0 and final["reason"] == "grant_revoked"
    assert response.status_code == 200 and response.json()["verified"] is True, response.text
    assert "gil" not in listed()
    assert_gone_everywhere(world, "gil", after)
