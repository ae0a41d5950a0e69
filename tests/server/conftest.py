"""A real server (uvicorn + uvloop + websockets, the real app and voices) on a loopback port, and a client kit."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import uvicorn
import websockets

from rtvc.config import load_config
from rtvc.engine import EngineSettings
from rtvc.protocol import FrameHeader, pack_frame, parse_frame
from rtvc.server import create_app
from rtvc.session import Limits


@dataclass
class RunningServer:
    app: object
    port: int
    key: str
    admin_key: str
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def ctx(self):
        return self.app.state.rtvc

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(data_dir: Path, *, send_buffer_bytes: int | None = None, engine: dict | None = None,
                 **limits) -> RunningServer:
    config = load_config(overrides={"server": {"data_dir": str(data_dir)}})
    app = create_app(config, data_dir=data_dir, limits=Limits.from_config(config, **limits),
                     engine_settings=EngineSettings.from_config(config, **(engine or {})))
    key, _ = app.state.rtvc.keys.create("client", name="test")
    admin_key, _ = app.state.rtvc.keys.create("admin", name="test-admin")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if send_buffer_bytes:  # accepted connections inherit it: lets a test fill the pipe quickly
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, loop="uvloop", ws="websockets-sansio", ws_per_message_deflate=False,
                                           ws_max_size=4 * app.state.rtvc.limits.max_message_bytes,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return RunningServer(app, sock.getsockname()[1], key, admin_key, server, thread)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("rtvc-data"))
    yield running
    running.stop()


@pytest.fixture
def make_server(tmp_path):
    started: list[RunningServer] = []

    def make(**kwargs) -> RunningServer:
        started.append(start_server(tmp_path / f"data{len(started)}", **kwargs))
        return started[-1]

    yield make
    for running in started:
        running.stop()


# -- client kit ---------------------------------------------------------------------------------------

S16_16K = {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1}


def start_message(voice="passthrough", input_format=S16_16K, output_format=None, params=None, **extra) -> str:
    msg = {"type": "session.start", "voice": voice, "purpose": "research", "input": input_format,
           "params": {"gate_db": None} if params is None else params, **extra}
    if output_format is not None:
        msg["output"] = output_format
    return json.dumps(msg)


def connect(server: RunningServer, key: str | None = "default", **kwargs):
    key = server.key if key == "default" else key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return websockets.connect(server.ws_url, additional_headers=headers, compression=None, proxy=None,
                              open_timeout=5, **kwargs)


async def start_session(ws, **kwargs) -> dict:
    await ws.send(start_message(**kwargs))
    reply = json.loads(await ws.recv())
    assert reply["type"] == "session.started", reply
    return reply


def to_s16(x: np.ndarray) -> bytes:
    return np.round(np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


async def send_audio(ws, pcm: bytes, *, bytes_per_sample: int, rate: int, frame_ms: float = 20.0,
                     lead_s: float | None = 0.2, last: bool = True) -> int:
    """Send ``pcm`` in frames; with ``lead_s`` never more than that ahead of real time, else as fast as possible."""
    frame_bytes = round(rate * frame_ms / 1000) * bytes_per_sample
    t0, seq = time.perf_counter(), 0
    for offset in range(0, len(pcm), frame_bytes):
        chunk = pcm[offset : offset + frame_bytes]
        start = offset // bytes_per_sample
        is_last = last and offset + frame_bytes >= len(pcm)
        await ws.send(pack_frame(FrameHeader(seq, start, last=is_last), chunk))
        seq += 1
        if lead_s is not None:
            ahead = (start + len(chunk) // bytes_per_sample) / rate - (time.perf_counter() - t0) - lead_s
            if ahead > 0:
                await asyncio.sleep(ahead)
    return seq


@dataclass
class Received:
    frames: list = field(default_factory=list)  # (FrameHeader, bytes)
    messages: list = field(default_factory=list)  # decoded JSON
    close_code: int | None = None

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    @property
    def pcm(self) -> bytes:
        return b"".join(p for _, p in self.frames)


async def receive_all(ws, limit_s: float = 20.0) -> Received:
    got = Received()
    try:
        async with asyncio.timeout(limit_s):
            async for message in ws:
                if isinstance(message, bytes):
                    header, payload = parse_frame(message)
                    got.frames.append((header, bytes(payload)))
                else:
                    got.messages.append(json.loads(message))
    except websockets.ConnectionClosed:
        pass
    got.close_code = ws.close_code
    return got
