"""Opens, tracks and closes the sessions of one server (one manager per server; no globals)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from rtvc.errors import Overloaded, RtvcError
from rtvc.protocol import ErrorCode, ProtocolError
from rtvc.session.backend import Backend
from rtvc.session.limits import Limits
from rtvc.session.request import StartRequest
from rtvc.session.session import Session
from rtvc.session.watermark import new_token

__all__ = ["SessionManager"]

log = logging.getLogger(__name__)


class SessionManager:
    """Admits sessions (limits, voice, engine load), has the backend build their streams, frees them.

    Parameters
    ----------
    config : mapping
        The loaded config (``[pipeline]``, ``[limits]``, ``[server]``).
    registry
        Has ``get(name) -> Voice`` (raises UnknownVoice); a ``lookup(name)`` is preferred where it exists (a
        :class:`rtvc.voices.registry.VoiceRegistry` reloads its voice store before calling a name unknown).
    backend : Backend
        Started engine backend (:func:`rtvc.session.backend.make_backend`).
    metrics : optional
        :class:`rtvc.server.metrics.ServerMetrics` or None.
    governance : optional
        Has ``async admit(session)`` (record the session or raise its ConsentError) and ``closed(session)``
        (record its end); :class:`rtvc.server.governance.ServerGovernance`. None: no consent checks.
    """

    def __init__(self, *, config: Mapping[str, Any], registry: Any, backend: Backend, limits: Limits | None = None,
                 metrics: Any = None, governance: Any = None) -> None:
        self.config = config
        self.registry = registry
        self.backend = backend
        self.limits = limits or Limits.from_config(config)
        self.metrics = metrics
        self.governance = governance
        self._sessions: dict[str, Session] = {}
        self._pending = 0
        self._closing = False

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    async def open(self, request: StartRequest, *, client: Any = None, transport: str = "ws") -> Session:
        """Admit and start a session.

        Raises
        ------
        UnknownVoice, ParamError, AudioFormatError
            The request names an unknown voice or bad parameters / block size.
        ConsentError
            No live grant covers this voice, purpose and client now (``no_consent``, ``purpose_not_allowed``,
            ``client_not_allowed``, ``grant_expired``, ``grant_revoked``); audited as a refusal.
        Overloaded
            Too many sessions, the engine is near capacity, or the server is shutting down.
        WatermarkFailed
            The watermark is installed but could not be created for this session.
        """
        try:
            return await self._open(request, client=client, transport=transport)
        except Exception as exc:
            if self.metrics is not None:
                self.metrics.session_refused(getattr(exc, "code", "internal"))
            raise

    async def _open(self, request: StartRequest, *, client: Any, transport: str) -> Session:
        if self._closing:
            raise Overloaded("the server is shutting down; not accepting sessions")
        if len(self._sessions) + self._pending >= self.limits.max_sessions:
            raise Overloaded(f"the server holds its maximum of {self.limits.max_sessions} sessions; retry later")
        lookup = getattr(self.registry, "lookup", None) or self.registry.get  # lookup: reloads the voice store once
        voice = lookup(request.voice)
        self.backend.admit(pending=self._pending)
        token = new_token()
        self._pending += 1
        try:
            stream = await self.backend.open(voice, request, watermark_token=token)
        finally:
            self._pending -= 1
        if self._closing:
            stream.close()
            raise Overloaded("the server is shutting down; not accepting sessions")
        session_id = "s_" + secrets.token_hex(8)
        info = stream.info
        started = {
            "type": "session.started",
            "session_id": session_id,
            "block_ms": info.block_ms,
            "latency_ms": info.latency_ms,
            "latency_samples": info.latency_samples,
            "voice": voice.describe(),
            "params": dict(info.params),
            "input": request.input.to_json(),
            "output": request.output.to_json(),
            "watermarked": info.watermarked,
            "limits": {
                "max_message_bytes": self.limits.max_message_bytes,
                "max_frame_ms": self.limits.max_frame_ms,
                "idle_timeout_s": self.limits.idle_timeout_s,
                "input_queue_ms": self.limits.input_queue_ms,
                "output_queue_ms": self.limits.output_queue_ms,
            },
        }
        session = Session(
            session_id=session_id, request=request, stream=stream, started=started, client=client,
            transport=transport, max_frame_ms=self.limits.max_frame_ms, output_queue_ms=self.limits.output_queue_ms,
            flush_timeout_s=self.limits.flush_timeout_s, on_close=self._closed, watermark_token=token,
            metrics=self.metrics,
        )
        # In the map before the consent check, so a revocation arriving meanwhile finds the session.
        self._sessions[session_id] = session
        if self.governance is not None:
            try:
                await self.governance.admit(session)
            except BaseException as exc:
                self._sessions.pop(session_id, None)
                session.close(reason="refused", error=exc if isinstance(exc, RtvcError) else None)
                raise
            if session.closed.is_set():  # revoked or shut down while the grant was being checked
                raise session.error or ProtocolError("the session ended while it was being admitted",
                                                     ErrorCode.GRANT_REVOKED)
        if self.metrics is not None:
            self.metrics.session_opened(transport)
        log.info("session %s opened: voice=%s transport=%s purpose=%r block=%.2f ms latency=%.2f ms",
                 session_id, voice.name, transport, request.purpose, info.block_ms, info.latency_ms)
        return session

    def _closed(self, session: Session) -> None:
        if self._sessions.pop(session.id, None) is not None and self.metrics is not None:
            self.metrics.session_ended(session.end_reason or "unknown")
        if self.governance is not None:
            self.governance.closed(session)
        log.info("session %s ended: %s", session.id, session.end_reason)

    async def close_all(self, reason: str = "shutdown") -> None:
        """Stop admitting and end every session now (server shutdown)."""
        self._closing = True
        error = ProtocolError("the server is shutting down", ErrorCode.SHUTTING_DOWN)
        for session in self.sessions():
            session.close(reason=reason, error=error)
