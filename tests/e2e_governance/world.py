"""A real server over a real governance database, with tiny real-format RVC voices, owners, clients, an auditor.

Shared by the end-to-end tests and ``benchmarks/revocation.py``. :func:`make_world` imports its voices before
the server starts; :func:`import_voice` adds one while it runs (the server follows its voice store).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import torch
import uvicorn
from aiortc import RTCSessionDescription

from rtvc.config import load_config
from rtvc.engine import EngineSettings
from rtvc.governance import LOCAL_ADMIN, GovernanceStore, KeyInfo
from rtvc.protocol import FrameHeader, pack_frame
from rtvc.protocol.frames import HEADER_BYTES
from rtvc.server import create_app
from rtvc.session import Limits
from rtvc.voices.rvc.library import import_rvc
from rtvc.voices.rvc.synthetic import (
    random_hubert_weights,
    tiny_hubert_config,
    write_fairseq_checkpoint,
    write_random_pth,
)
from rtvc.voices.store import VoiceStore
from tests.server.conftest import RunningServer, connect, start_server, to_s16
from tests.webrtc.loopback_peer import LoopbackPeer

__all__ = ["World", "import_voice", "make_world", "on_server_loop", "revoked_at_s", "stream_ws_until_ended",
           "webrtc_offer", "ws_start"]

torch.set_num_threads(1)  # tiny models; the CPU is shared with the engine thread

S16_16K = {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1}


@dataclass
class World:
    server: RunningServer
    data: Path
    owner: tuple[str, KeyInfo]
    other_owner: tuple[str, KeyInfo]
    auditor: tuple[str, KeyInfo]
    clients: dict[str, tuple[str, KeyInfo]] = field(default_factory=dict)

    @property
    def gov(self) -> GovernanceStore:
        return self.server.ctx.governance.store

    def grant(self, voice: str, purposes=("live_streaming",), clients="any", **kwargs):
        return self.gov.grants.create(self.owner[1], voice, statement=f"I, the owner, allow {voice} for this use.",
                                      purposes=list(purposes), clients=clients, **kwargs)

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def make_world(data: Path, voices: list[str], *, client_names=("app-a", "app-b"), engine: dict | None = None) -> World:
    """Import ``voices`` (each its own tiny RVC v2 model, one shared content encoder) owned by one owner key,
    then start the server (``engine``: its ``[engine]`` settings, thread mode by default); keys: owner, another
    owner, an auditor and one client per name."""
    data.mkdir(parents=True, exist_ok=True)
    src = data / "incoming"
    src.mkdir(exist_ok=True)
    content = src / "hubert_base.pt"
    cfg = tiny_hubert_config("v2")
    write_fairseq_checkpoint(content, cfg, random_hubert_weights(cfg, seed=3))
    gov = GovernanceStore.open(data)
    owner = gov.keys.create("owner", "voice-owner")
    other_owner = gov.keys.create("owner", "someone-else")
    auditor = gov.keys.create("auditor", "auditor")
    clients = {name: gov.keys.create("client", name) for name in client_names}
    for seed, name in enumerate(voices):
        import_voice(data, name, owner[1].id, gov=gov, seed=100 + seed)
    gov.close()
    if engine is None or engine.get("mode") == "thread":
        server = start_server(data, engine=engine or {"mode": "thread", "workers": 1})
    else:
        server = start_slow_server(data, engine)
    return World(server, data, owner, other_owner, auditor, clients)


def start_slow_server(data: Path, engine: dict, *, startup_timeout_s: float = 120.0) -> RunningServer:
    """:func:`tests.server.conftest.start_server` for the process engine, whose processes import numpy, scipy and
    torch before the server is up: on a busy machine that takes longer than that helper waits."""
    config = load_config(overrides={"server": {"data_dir": str(data)}})
    app = create_app(config, data_dir=data, limits=Limits.from_config(config),
                     engine_settings=EngineSettings.from_config(config, **engine))
    key, _ = app.state.rtvc.keys.create("client", name="test")
    admin_key, _ = app.state.rtvc.keys.create("admin", name="test-admin")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, loop="uvloop", ws="websockets-sansio", ws_per_message_deflate=False,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    return RunningServer(app, sock.getsockname()[1], key, admin_key, server, thread)


def import_voice(data: Path, name: str, owner_id: str, *, gov: GovernanceStore | None = None, seed: int = 0) -> str:
    """Import a tiny RVC v2 voice owned by ``owner_id`` into the data dir (sharing the store's content encoder);
    returns its model sha256."""
    model = data / "incoming" / f"{name}.pth"
    write_random_pth(model, version="v2", sr="40k", seed=seed)
    content = data / "incoming" / "hubert_base.pt"
    record = import_rvc(VoiceStore(data), name, model=model, content=content)
    own = gov or GovernanceStore.open(data)
    try:
        own.voices.register(LOCAL_ADMIN, name, owner_id, model_sha256=record.files["model"].sha256)
    finally:
        if gov is None:
            own.close()
    return record.files["model"].sha256


def on_server_loop(world: World, coro, timeout_s: float = 30.0):
    """Run ``coro`` on the server's event loop (where its backend lives) and return its result."""
    return asyncio.run_coroutine_threadsafe(coro, world.server.ctx.governance.loop).result(timeout_s)


def revoked_at_s(world: World, grant_id: str) -> float:
    """When the grant's revocation was committed, as a Unix time."""
    grant = world.gov.grants.get(LOCAL_ADMIN, grant_id)
    return datetime.fromisoformat(grant.revoked_at.replace("Z", "+00:00")).timestamp()


def start_message(voice: str, purpose: str) -> str:
    return json.dumps({"type": "session.start", "voice": voice, "purpose": purpose, "input": S16_16K, "params": {}})


async def ws_start(world: World, key: str, voice: str, purpose: str):
    """Open a WebSocket and send session.start; returns (ws, first reply)."""
    ws = await connect(world.server, key)
    await ws.send(start_message(voice, purpose))
    return ws, json.loads(await ws.recv())


async def stream_ws_until_ended(ws, *, seconds: float = 20.0, rate: int = 16000) -> tuple[dict | None, float, bytes]:
    """Send a real-time voiced tone (the last frame flagged) until the server ends the session; returns (final
    message, its arrival as a Unix time, the converted audio received)."""
    rng = np.random.default_rng(0)
    frame = round(rate * 0.02)

    async def send() -> None:
        t0 = time.perf_counter()
        count = round(seconds / 0.02)
        for i in range(count):
            t = (i * frame + np.arange(frame)) / rate
            x = 0.2 * np.sin(2 * np.pi * 180 * t) + 0.02 * rng.standard_normal(frame)
            try:
                await ws.send(pack_frame(FrameHeader(i, i * frame, last=i == count - 1), to_s16(x)))
            except Exception:
                return
            await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.perf_counter() - 0.1))

    sender = asyncio.create_task(send())
    audio, final, arrived = bytearray(), None, 0.0
    try:
        async for message in ws:
            if isinstance(message, bytes):
                audio += message[HEADER_BYTES:]
                continue
            msg = json.loads(message)
            if msg["type"] in ("session.ended", "error"):
                final, arrived = msg, time.time()
                break
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return final, arrived, bytes(audio)


async def webrtc_offer(peer: LoopbackPeer, voice: str, purpose: str) -> httpx.Response:
    """POST a JSON offer naming ``purpose``; on 201 apply the answer."""
    await peer.pc.setLocalDescription(await peer.pc.createOffer())
    body = {"sdp": peer.pc.localDescription.sdp, "type": "offer", "voice": voice, "purpose": purpose}
    async with httpx.AsyncClient(base_url=peer.base_url, timeout=20) as http:
        response = await http.post("/v1/webrtc/offer", json=body, headers=peer.headers)
    if response.status_code == 201:
        peer.location = response.headers["location"]
        peer.answer = response.json()
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=peer.answer["sdp"], type="answer"))
    return response
