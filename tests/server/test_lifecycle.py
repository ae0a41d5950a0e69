"""Slow readers, vanished clients and shutdown: bounded memory, freed sessions."""

import asyncio
import math
import socket
import threading
import time

import numpy as np

from tests.server.conftest import connect, receive_all, send_audio, start_session, to_s16

F32_48K_STEREO = {"encoding": "pcm_f32le", "sample_rate": 48000, "channels": 2}


def wait_until(predicate, limit_s=5.0):
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_slow_reader_cannot_grow_server_memory(make_server, speech):
    """The client reads nothing for 3 s of 384 kB/s output: the server's output queue stays bounded, the
    oldest output is dropped and counted, and the gaps show in start_sample and the discontinuity flag."""
    x, rate = speech
    x = np.tile(x, 2)[: 3 * rate]
    server = make_server(output_queue_ms=100.0, send_buffer_bytes=8192)
    peak_queue_ms = []
    watching = threading.Event()

    def watch():
        while not watching.is_set():
            for session in server.ctx.manager.sessions():
                peak_queue_ms.append(session.stats()["queue_out_ms"])
            time.sleep(0.01)

    async def run():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
        async with connect(server, sock=sock, max_queue=1) as ws:
            started = await start_session(ws, output_format=F32_48K_STEREO)
            await send_audio(ws, to_s16(x), bytes_per_sample=2, rate=rate, lead_s=0.1)  # not reading meanwhile
            return started, await receive_all(ws)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        started, got = asyncio.run(run())
    finally:
        watching.set()
        watcher.join()
    [ended] = got.of_type("session.ended")
    block_ms = started["block_ms"]
    assert max(peak_queue_ms) <= 100.0 + block_ms
    assert ended["dropped_out"] > 48000  # over a second of output could not be delivered
    gaps, position, flagged_after_gap = 0, 0, True
    for header, payload in got.frames:
        if header.start_sample != position:
            gaps += header.start_sample - position
            flagged_after_gap &= header.discontinuity
        position = header.start_sample + len(payload) // 8
    assert gaps == ended["dropped_out"] and flagged_after_gap
    assert position == 3 * len(x) + math.ceil(started["latency_ms"] * 48 - 1e-9)
    assert ended["dropped_in"] == 0


def test_vanished_client_frees_its_session(server, speech):
    x, rate = speech
    ended_before = server.ctx.metrics.sessions_ended.value(reason="disconnect")

    async def run():
        ws = await connect(server)
        await start_session(ws)
        reader = asyncio.create_task(receive_all(ws))
        await send_audio(ws, to_s16(x[: rate // 2]), bytes_per_sample=2, rate=rate, last=False)
        assert len(server.ctx.manager) == 1
        ws.transport.abort()  # no close frame: the TCP connection just goes away mid-stream
        await reader

    asyncio.run(run())
    assert wait_until(lambda: len(server.ctx.manager) == 0 and server.ctx.backend.session_count() == 0)
    assert server.ctx.metrics.sessions_ended.value(reason="disconnect") == ended_before + 1


def test_shutdown_ends_live_sessions_with_going_away(make_server, speech):
    x, rate = speech
    server = make_server()

    async def run():
        async with connect(server) as ws:
            await start_session(ws)
            reader = asyncio.create_task(receive_all(ws))
            await send_audio(ws, to_s16(x[: rate // 4]), bytes_per_sample=2, rate=rate, last=False)
            await asyncio.to_thread(server.stop)
            return await reader

    got = asyncio.run(run())
    assert got.close_code in (1001, 1012)  # ours (going away) or uvicorn's (service restart) if it closed first
    assert not server.thread.is_alive()


def test_engine_process_crash_fails_its_sessions_and_the_server_goes_on(make_server, speech):
    """Kill the engine process under a live session: that session ends with `internal` (1011), no more audio;
    new sessions run on the engine process that is left."""
    x, rate = speech
    server = make_server(engine={"mode": "process", "workers": 2})
    backend = server.ctx.backend

    async def run():
        async with connect(server) as ws:
            await start_session(ws)
            reader = asyncio.create_task(receive_all(ws))
            await send_audio(ws, to_s16(x[: rate // 4]), bytes_per_sample=2, rate=rate, last=False)
            [victim] = [p for p in backend._procs if p.streams]
            victim.process.kill()
            return await reader

    got = asyncio.run(run())
    [error] = got.of_type("error")
    assert error["code"] == "internal" and got.close_code == 1011
    assert not got.of_type("session.ended")
    assert wait_until(lambda: len(server.ctx.manager) == 0)

    async def again():
        async with connect(server) as ws:
            await start_session(ws)
            reader = asyncio.create_task(receive_all(ws))
            await send_audio(ws, to_s16(x[: rate // 4]), bytes_per_sample=2, rate=rate)
            return await reader

    assert asyncio.run(again()).close_code == 1000
