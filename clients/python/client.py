"""An asyncio client for the rtvc.v1 WebSocket protocol (one session per connection)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from clients.python.protocol import SUBPROTOCOL, AudioChunk, pack_frame, parse_control, unpack_frame

__all__ = ["DEFAULT_URL", "RtvcClient", "ServerError", "stream_url"]

DEFAULT_URL = "ws://127.0.0.1:8080/v1/stream"
STREAM_PATH = "/v1/stream"


class ServerError(Exception):
    """The server refused or ended the session: ``code`` is the stable rtvc.v1 error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def stream_url(url: str) -> str:
    """Accept ``ws://host:port`` or ``http://host:port`` as shorthand for the stream endpoint."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"stream URL must be ws:// or wss:// (or http[s]://), got {url!r}")
    path = parts.path if parts.path not in ("", "/") else STREAM_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class RtvcClient:
    """One streaming session. Create with :meth:`connect`; ``started`` holds the server's session.started.

    Audio is sent as wire bytes in the session's input format; ``seq`` and ``start_sample`` are kept here.
    """

    def __init__(self, ws: ClientConnection, started: dict, input_frame_bytes: int) -> None:
        self.ws = ws
        self.started = started
        self.session_id: str = started.get("session_id", "")
        self.latency_ms: float = float(started.get("latency_ms", 0.0))
        self._frame_bytes = input_frame_bytes
        self._seq = 0
        self._next_sample = 0

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        key: str,
        voice: str,
        input: Mapping[str, object],
        output: Mapping[str, object],
        purpose: str = "live_streaming",
        params: Mapping[str, float] | None = None,
        browser_auth: bool = False,
        open_timeout_s: float = 10.0,
        max_message_bytes: int = 1 << 20,
    ) -> RtvcClient:
        """Open the WebSocket, send session.start and wait for session.started.

        ``browser_auth`` sends the key as the ``bearer.KEY`` subprotocol instead of an Authorization header.
        Raises ServerError when the server refuses (``unauthorized`` for an HTTP 401 before the upgrade).
        """
        subprotocols = [SUBPROTOCOL, f"bearer.{key}"] if browser_auth else [SUBPROTOCOL]
        headers = None if browser_auth else {"Authorization": f"Bearer {key}"}
        try:
            ws = await connect(
                stream_url(url),
                additional_headers=headers,
                subprotocols=subprotocols,
                compression=None,
                open_timeout=open_timeout_s,
                max_size=max_message_bytes,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            code = {401: "unauthorized", 403: "forbidden", 503: "overloaded"}.get(status, "http_error")
            raise ServerError(code, f"server answered HTTP {status} to the upgrade") from None
        start = {
            "type": "session.start",
            "voice": voice,
            "purpose": purpose,
            "input": dict(input),
            "output": dict(output),
            "params": dict(params or {}),
        }
        try:
            await ws.send(json.dumps(start))
            while True:
                message = await ws.recv()
                if isinstance(message, str):
                    break
            reply = parse_control(message)
        except ConnectionClosed as exc:
            raise ServerError("closed", f"server closed the connection before session.started ({exc})") from None
        if reply["type"] == "error":
            await ws.close()
            raise ServerError(str(reply.get("code", "unknown")), str(reply.get("message", "")))
        if reply["type"] != "session.started":
            await ws.close()
            raise ServerError("bad_message", f"expected session.started, got {reply['type']!r}")
        channels = int(input.get("channels", 1))
        sample_bytes = 2 if input.get("encoding", "pcm_s16le") == "pcm_s16le" else 4
        return cls(ws, reply, channels * sample_bytes)

    @property
    def samples_sent(self) -> int:
        """Input sample frames sent so far (at the input rate)."""
        return self._next_sample

    async def send_audio(self, pcm: bytes, *, last: bool = False, discontinuity: bool = False) -> None:
        """Send one frame of interleaved PCM in the session's input format."""
        if len(pcm) % self._frame_bytes:
            raise ValueError(f"{len(pcm)} bytes is not a whole number of {self._frame_bytes}-byte sample frames")
        frame = pack_frame(pcm, seq=self._seq, start_sample=self._next_sample, last=last, discontinuity=discontinuity)
        await self.ws.send(frame)
        self._seq += 1
        self._next_sample += len(pcm) // self._frame_bytes

    async def send_control(self, message: Mapping[str, object]) -> None:
        await self.ws.send(json.dumps(dict(message)))

    async def update(self, params: Mapping[str, float]) -> None:
        """Change voice parameters; an invalid one comes back as an ``error`` message."""
        await self.send_control({"type": "session.update", "params": dict(params)})

    async def ping(self) -> None:
        """Ask for a pong; it echoes ``t`` (this client's monotonic ms) so the reader can compute the RTT."""
        await self.send_control({"type": "ping", "t": time.monotonic() * 1000.0})

    async def end(self) -> None:
        """Ask the server to flush the tail; it answers ``session.ended`` and closes."""
        await self.send_control({"type": "session.end"})

    async def receive(self) -> AudioChunk | dict | None:
        """The next audio chunk or control message; None once the connection is closed."""
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            return None
        if isinstance(message, str):
            return parse_control(message)
        return unpack_frame(message, arrival=time.monotonic())

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
