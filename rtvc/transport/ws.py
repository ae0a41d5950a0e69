"""WebSocket transport of rtvc.v1: a thin driver over :mod:`rtvc.protocol` and :mod:`rtvc.session`.

One connection, one session. Authentication happens before the upgrade (HTTP
401/403 with a JSON error body). Then: the first message must be
``session.start``; after ``session.started`` a reader task feeds audio and
control messages to the session while this coroutine sends the output. Every
way a session ends goes through the writer: it sends what ``next_output()``
yields until None, then ``session.final_message()`` (``session.ended`` or the
error) and closes with the matching code. Errors in control messages are
answered and the session goes on; errors in audio frames and before
``session.started`` end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from rtvc.errors import RtvcError
from rtvc.protocol import (
    PROTOCOL,
    CloseCode,
    ErrorCode,
    FrameHeader,
    ProtocolError,
    check_size,
    close_code_for,
    error_message,
    handle_control,
    pack_frame,
    parse_frame,
    parse_text,
)
from rtvc.session import Limits, Session, SessionManager, StartRequest

__all__ = ["serve_websocket"]

log = logging.getLogger(__name__)

_HTTP_STATUS = {ErrorCode.UNAUTHORIZED: 401, ErrorCode.FORBIDDEN: 403}


async def serve_websocket(websocket: WebSocket, *, manager: SessionManager, authenticate: Callable[[Any], Any],
                          limits: Limits) -> None:
    """Handle one ``GET /v1/stream`` upgrade from authentication to close."""
    try:
        client = authenticate(websocket)
    except RtvcError as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="rtvc"'} if exc.code == ErrorCode.UNAUTHORIZED else {}
        response = JSONResponse(error_message(exc.code, str(exc)), status_code=_HTTP_STATUS.get(exc.code, 400),
                                headers=headers)
        await websocket.send_denial_response(response)
        return
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
    await _Connection(websocket, manager, limits, client).run()


class _Connection:
    def __init__(self, websocket: WebSocket, manager: SessionManager, limits: Limits, client: Any) -> None:
        self.ws = websocket
        self.manager = manager
        self.limits = limits
        self.client = client
        self.session: Session | None = None
        self.disconnected = False
        self._send_lock = asyncio.Lock()
        self._finished = False
        self._received_at = 0.0  # loop time of the last message (the idle watchdog reads it)

    # -- sending --------------------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any] | bytes, *, final: bool = False) -> None:
        """Send one message; nothing goes out after the final one (session.ended or the closing error)."""
        if self.disconnected:
            return
        try:
            async with self._send_lock:
                if self._finished:
                    return
                self._finished = final
                if isinstance(message, bytes):
                    await self.ws.send_bytes(message)
                else:
                    await self.ws.send_text(json.dumps(message, separators=(",", ":")))
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.disconnected = True

    async def _close(self, code: int, reason: str = "") -> None:
        if self.disconnected or self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            async with self._send_lock:
                await self.ws.close(code=int(code), reason=reason[:120])

    async def _refuse(self, exc: RtvcError) -> None:
        """An error before the session exists: say why, then close."""
        await self._send(error_message(exc.code, str(exc)), final=True)
        await self._close(close_code_for(exc.code), exc.code)

    # -- receiving ------------------------------------------------------------------------------------

    async def _receive(self, *, timed: bool = False) -> dict[str, Any] | None:
        """Next message, None on disconnect; raises ProtocolError on an oversize message, or (``timed``) when
        nothing comes within the idle timeout. A session's reader goes without a timer per message: the idle
        watchdog (:meth:`_watch_idle`) ends a silent session instead."""
        try:
            if timed:
                message = await asyncio.wait_for(self.ws.receive(), self.limits.idle_timeout_s)
            else:
                message = await self.ws.receive()
        except TimeoutError:
            raise _idle_timeout(self.limits.idle_timeout_s) from None
        except (WebSocketDisconnect, RuntimeError):
            message = {"type": "websocket.disconnect"}
        self._received_at = asyncio.get_running_loop().time()
        if message["type"] == "websocket.disconnect":
            self.disconnected = True
            return None
        data = message.get("bytes") if message.get("bytes") is not None else message.get("text")
        size = len(data) if isinstance(data, bytes) else len((data or "").encode("utf-8"))
        check_size(size, self.limits.max_message_bytes)
        return message

    # -- the connection -------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            session = await self._start()
        except RtvcError as exc:
            await self._refuse(exc)
            return
        if session is None:
            return
        self.session = session
        await self._send(session.started)
        reader = asyncio.create_task(self._read(session), name=f"rtvc-ws-read-{session.id}")
        stats = asyncio.create_task(self._push_stats(session), name=f"rtvc-ws-stats-{session.id}")
        idle = asyncio.create_task(self._watch_idle(session), name=f"rtvc-ws-idle-{session.id}")
        try:
            await self._write(session)
        finally:
            for task in (reader, stats, idle):
                task.cancel()
            await asyncio.gather(reader, stats, return_exceptions=True)
            session.close(reason="disconnect")

    async def _start(self) -> Session | None:
        message = await self._receive(timed=True)
        if message is None:
            return None
        if message.get("text") is None:
            raise ProtocolError("the first message must be a text session.start, not audio")
        request = StartRequest.from_json(parse_text(message["text"]))
        return await self.manager.open(request, client=self.client, transport="ws")

    async def _read(self, session: Session) -> None:
        try:
            while not session.closed.is_set():
                message = await self._receive()
                if message is None:
                    session.close(reason="disconnect")
                    return
                if message.get("bytes") is not None:
                    header, payload = parse_frame(message["bytes"])
                    session.submit(payload, start_sample=header.start_sample, discontinuity=header.discontinuity,
                                   last=header.last)
                    continue
                try:
                    msg = parse_text(message["text"])
                except ProtocolError as exc:  # a bad control message is answered; the stream goes on
                    await self._send(error_message(exc.code, str(exc)))
                    continue
                for reply in handle_control(session, msg):
                    await self._send(reply)
        except RtvcError as exc:
            reason = "idle_timeout" if exc.code == ErrorCode.IDLE_TIMEOUT else "error"
            session.close(reason=reason, error=exc)
        except Exception as exc:  # never leave a session without its reader
            log.exception("session %s: reader failed", session.id)
            session.close(reason="error", error=RtvcError(f"internal error: {type(exc).__name__}"))

    async def _write(self, session: Session) -> None:
        while (frame := await session.next_output()) is not None:
            header = FrameHeader(frame.seq, frame.start_sample, last=frame.last, discontinuity=frame.discontinuity)
            await self._send(pack_frame(header, frame.pcm))
            if self.disconnected:
                session.close(reason="disconnect")
        if self.disconnected:
            return
        final = session.final_message()
        await self._send(final, final=True)
        code = CloseCode.NORMAL if final["type"] == "session.ended" else close_code_for(final["code"])
        await self._close(code, final.get("code", "session ended"))

    async def _watch_idle(self, session: Session) -> None:
        """End the session once nothing was received for ``idle_timeout_s``."""
        loop = asyncio.get_running_loop()
        while not session.closed.is_set():
            left = self._received_at + self.limits.idle_timeout_s - loop.time()
            if left <= 0:
                session.close(reason="idle_timeout", error=_idle_timeout(self.limits.idle_timeout_s))
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.closed.wait(), left)

    async def _push_stats(self, session: Session) -> None:
        while not session.closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.closed.wait(), self.limits.stats_interval_s)
                return
            await self._send(session.stats_message())


def _idle_timeout(seconds: float) -> ProtocolError:
    return ProtocolError(f"nothing received for {seconds:g} s", ErrorCode.IDLE_TIMEOUT)
