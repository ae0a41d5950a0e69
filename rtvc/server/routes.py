"""HTTP routes: health, readiness, metrics, voices, sessions, watermark detection."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import tempfile
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from rtvc.errors import AudioValueError, RtvcError
from rtvc.governance import KeyInfo
from rtvc.protocol import ErrorCode
from rtvc.session.watermark import watermark_available

if TYPE_CHECKING:
    from rtvc.server.app import ServerContext

__all__ = ["add_http_routes"]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
DETECT_MAX_BYTES = 50 * 2**20  # a few minutes of WAV


class MessageTooBig(RtvcError):
    code = ErrorCode.MESSAGE_TOO_BIG.value


def any_key(request: Request) -> KeyInfo:
    return request.app.state.rtvc.authenticate(request)


def admin_key(request: Request) -> KeyInfo:
    return request.app.state.rtvc.authenticate.with_roles("admin")(request)


def auditor_key(request: Request) -> KeyInfo:
    return request.app.state.rtvc.authenticate.with_roles("auditor", "admin")(request)


AnyKey = Annotated[KeyInfo, Depends(any_key)]
AdminKey = Annotated[KeyInfo, Depends(admin_key)]
AuditorKey = Annotated[KeyInfo, Depends(auditor_key)]


def add_http_routes(app: FastAPI, ctx: ServerContext) -> None:
    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness: engine running, below its load limit")
    async def readyz() -> JSONResponse:
        load = ctx.backend.load()
        body: dict[str, Any] = {"sessions": len(ctx.manager), "engine_load": round(load, 4),
                                "max_load": ctx.backend.settings.max_load}
        if not ctx.ready:
            return JSONResponse({"status": "not_ready", "reason": "starting or shutting down", **body}, 503)
        if load > ctx.backend.settings.max_load or len(ctx.manager) >= ctx.limits.max_sessions:
            return JSONResponse({"status": "not_ready", "reason": "at capacity", **body}, 503)
        return JSONResponse({"status": "ready", **body})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(ctx.metrics.render(), media_type=PROMETHEUS_TEXT)

    @app.get("/v1/voices", tags=["voices"], summary="Voices and their parameters")
    async def voices(key: AnyKey) -> dict[str, list[dict[str, Any]]]:
        return {"voices": [voice.describe() for voice in ctx.registry]}

    @app.get("/v1/sessions", tags=["sessions"], summary="Live sessions and their stats (admin)")
    async def sessions(key: AdminKey) -> dict[str, list[dict[str, Any]]]:
        return {"sessions": [
            {"session_id": s.id, "transport": s.transport, "voice": s.request.voice, "purpose": s.request.purpose,
             "client": getattr(s.client, "id", None), "stats": s.stats()}
            for s in ctx.manager.sessions()
        ]}

    if watermark_available() and hasattr(importlib.import_module("rtvc.watermark"), "detect"):
        _add_detect(app, ctx)


def _add_detect(app: FastAPI, ctx: ServerContext) -> None:
    """POST /v1/detect: the body is an audio file; answers whether it carries this server's watermark."""
    watermark = importlib.import_module("rtvc.watermark")

    def analyse(body: bytes, actor: KeyInfo) -> dict[str, Any]:
        with tempfile.NamedTemporaryFile(prefix="rtvc-detect-", suffix=".audio") as f:
            f.write(body)
            f.flush()
            report = watermark.detect_file(f.name, watermark.WatermarkKey.load_or_create(ctx.data_dir))
        answer = report.to_json()
        digest = hashlib.sha256(body).hexdigest()
        for found in answer["tokens"]:  # each token found is audited and resolved to the session it marks
            provenance = ctx.governance.store.sessions.record_detection(actor, found["token"], input_sha256=digest)
            found["provenance"] = provenance.to_json() if provenance is not None else None
        return answer

    @app.post("/v1/detect", tags=["provenance"], summary="Detect the rtvc watermark in an uploaded audio file",
              description="Auditor or admin key. Body: an audio file (wav, flac, ogg/opus, mp3, m4a, ...), at most "
                          f"{DETECT_MAX_BYTES // 2**20} MiB. Answer: presence score, marked spans, session tokens, "
                          "each with its provenance (session, voice, grant, client, purpose, start) or null when "
                          "no recorded session carries it. Every token found is audited as a detection.")
    async def detect(request: Request, key: AuditorKey) -> dict[str, Any]:
        chunks, size = [], 0
        async for chunk in request.stream():  # stop reading at the limit instead of buffering any size
            size += len(chunk)
            if size > DETECT_MAX_BYTES:
                raise MessageTooBig(f"upload exceeds {DETECT_MAX_BYTES} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        if not body:
            raise AudioValueError("empty body: send an audio file")
        return await asyncio.to_thread(analyse, body, key)  # decoding and detection are CPU work: off the loop
