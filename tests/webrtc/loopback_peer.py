"""A real aiortc client peer for the tests: sends audio, records what comes back, talks on the `rtvc` channel.

Loopback only: no ICE servers, host candidates on 127.0.0.1 (see :func:`rtvc.transport.webrtc.use_host_addresses`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from rtvc.transport.tracks import PacedOutputTrack

__all__ = ["LoopbackPeer"]

RATE = 48000


class LoopbackPeer:
    """One client peer. ``audio`` (float32 mono 48 kHz) is sent paced in real time, then silence."""

    def __init__(self, base_url: str, key: str, audio: np.ndarray) -> None:
        self.base_url = base_url
        self.key = key
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sender = PacedOutputTrack(max_buffer_ms=1000.0 * (len(audio) / RATE + 1.0), max_slack_ms=None)
        self.sender.push(np.round(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
        self.sender.finish()
        self.pc.addTransceiver(self.sender, direction="sendrecv")
        self.channel = self.pc.createDataChannel("rtvc")
        self.messages: list[dict] = []
        self._message_arrived = asyncio.Event()
        self.channel.on("message", self._on_message)
        self.received: list[np.ndarray] = []
        self._readers: list[asyncio.Task] = []
        self.pc.on("track", lambda track: self._readers.append(asyncio.create_task(self._record(track))))
        self.answer: dict = {}
        self.location: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def _on_message(self, message: str) -> None:
        self.messages.append(json.loads(message))
        self._message_arrived.set()

    async def _record(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.received.append(frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1) / 32768.0)

    async def offer(self, *, voice: str, params: dict | None = None, whip: bool = False) -> httpx.Response:
        """POST the offer (JSON or WHIP); on 201 apply the answer. Returns the HTTP response."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        async with httpx.AsyncClient(base_url=self.base_url, timeout=20) as http:
            if whip:
                query = {"voice": voice, "purpose": "research", "params": json.dumps(params or {})}
                response = await http.post("/v1/webrtc/offer", params=query, content=sdp,
                                           headers={**self.headers, "Content-Type": "application/sdp"})
            else:
                body = {"sdp": sdp, "type": "offer", "voice": voice, "purpose": "research",
                        "params": params or {}}
                response = await http.post("/v1/webrtc/offer", json=body, headers=self.headers)
        if response.status_code == 201:
            self.location = response.headers["location"]
            answer_sdp = response.text if whip else response.json()["sdp"]
            self.answer = {} if whip else response.json()
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        return response

    async def wait_open(self, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.channel.readyState != "open":
                opened = asyncio.Event()
                self.channel.once("open", opened.set)
                await opened.wait()

    def send(self, message: dict) -> None:
        self.channel.send(json.dumps(message))

    async def wait_message(self, kind: str, timeout_s: float = 10.0, after: int = 0) -> dict:
        """The first message of type ``kind`` at index >= ``after``."""
        async with asyncio.timeout(timeout_s):
            while True:
                for message in self.messages[after:]:
                    if message["type"] == kind:
                        return message
                self._message_arrived.clear()
                await self._message_arrived.wait()

    async def wait_sent(self, timeout_s: float = 30.0) -> None:
        """Until all the audio has gone out (it is paced in real time)."""
        await asyncio.wait_for(self.sender.drained(), timeout_s)

    async def delete(self) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=20) as http:
            return await http.delete(self.location, headers=self.headers)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.received).astype(np.float32) if self.received else np.zeros(0, np.float32)

    async def close(self) -> None:
        await self.pc.close()
        for task in self._readers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._readers, return_exceptions=True)


async def wait_until(predicate, timeout_s: float = 10.0, interval_s: float = 0.05) -> float:
    """Seconds until ``predicate()`` held; TimeoutError otherwise."""
    began = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the state lives on the server's thread: no event to await
            await asyncio.sleep(interval_s)
    return time.monotonic() - began
