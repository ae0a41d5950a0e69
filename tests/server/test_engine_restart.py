"""A dead engine process: its sessions end with ``internal``, the others go on, and a new process takes its place."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import numpy as np

from tests.server.conftest import connect, receive_all, send_audio, start_session, to_s16


def _alive_pids(server) -> list[int]:
    return sorted(p.process.pid for p in server.ctx.backend._procs if p.alive)


def test_a_killed_engine_process_is_replaced_and_only_its_sessions_end(make_server, speech):
    server = make_server(engine={"mode": "process", "workers": 2})
    x, rate = speech
    pcm = to_s16(x[: 2 * rate])
    pids_before = _alive_pids(server)
    assert len(pids_before) == 2

    async def two_sessions_one_victim():
        async with connect(server) as a, connect(server) as b:  # the least-loaded rule puts them on both processes
            await start_session(a)
            await start_session(b)
            senders = [asyncio.create_task(send_audio(ws, pcm, bytes_per_sample=2, rate=rate)) for ws in (a, b)]
            readers = [asyncio.create_task(receive_all(ws, limit_s=30)) for ws in (a, b)]
            await asyncio.sleep(0.5)
            victim = server.ctx.backend._procs[0]
            os.kill(victim.process.pid, signal.SIGKILL)
            got = await asyncio.gather(*readers)
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            return got

    got = asyncio.run(two_sessions_one_victim())
    codes = sorted(r.of_type("error")[0]["code"] if r.of_type("error") else "ended" for r in got)
    assert codes == ["ended", "internal"]  # the other process's session finished normally

    deadline = time.monotonic() + 60
    while len(_alive_pids(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    pids_after = _alive_pids(server)
    assert len(pids_after) == 2 and pids_after != pids_before

    async def fresh_sessions():
        async def one():
            async with connect(server) as ws:
                await start_session(ws)
                sender = asyncio.create_task(send_audio(ws, pcm[: rate], bytes_per_sample=2, rate=rate))
                received = await receive_all(ws, limit_s=30)
                await sender
                return received
        return await asyncio.gather(*(one() for _ in range(4)))

    for received in asyncio.run(fresh_sessions()):  # spread over both processes, the new one included
        assert received.of_type("session.ended") and received.close_code == 1000
        assert np.frombuffer(received.pcm, "<i2").size > 0
