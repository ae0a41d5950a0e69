"""The ASGI application: one port for HTTP and the WebSocket stream.

Routes::

    GET  /healthz            liveness (the process answers)
    GET  /readyz             readiness (engine running, below its load limit, not shutting down)
    GET  /metrics            Prometheus text
    GET  /v1/voices          voices and their parameters            (key)
    GET  /v1/sessions        live sessions and their stats          (admin key)
    POST /v1/detect          watermark detection and provenance     (auditor/admin key; when rtvc.watermark is there)
    /v1/keys, /v1/voices/owned, /v1/grants, /v1/sessions/{id}, /v1/audit   governance (rtvc.server.admin_api)
    GET  /v1/stream          WebSocket rtvc.v1                      (key)
    POST /v1/webrtc/offer, DELETE /v1/webrtc/sessions/{id}           (key; rtvc.transport.webrtc)
    GET  /openapi.json       the HTTP API description
    GET  /                   the browser page (clients/web)
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.staticfiles import StaticFiles

from rtvc import __version__
from rtvc.engine import EngineSettings
from rtvc.errors import RtvcError
from rtvc.governance import GovernanceStore
from rtvc.protocol import error_message
from rtvc.server.admin_api import add_admin_routes
from rtvc.server.auth import Authenticator
from rtvc.server.governance import ServerGovernance
from rtvc.server.metrics import ServerMetrics
from rtvc.server.routes import add_http_routes
from rtvc.session import Limits, SessionManager
from rtvc.session.backend import Backend, make_backend
from rtvc.session.build import default_registry
from rtvc.transport.ws import serve_websocket

__all__ = ["WEB_DIR", "ServerContext", "create_app"]

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[2] / "clients" / "web"
_HTTP_STATUS = {"unauthorized": 401, "forbidden": 403, "unknown_voice": 404, "not_found": 404, "conflict": 409,
                "no_consent": 403, "purpose_not_allowed": 403, "client_not_allowed": 403, "grant_expired": 403,
                "grant_revoked": 403, "erasure_incomplete": 500, "store_error": 500, "message_too_big": 413, "overloaded": 503,
                "shutting_down": 503, "internal": 500, "watermark_failed": 500}


@dataclass(eq=False)
class ServerContext:
    """Everything one server owns (no globals); on ``app.state.rtvc``."""

    config: Mapping[str, Any]
    data_dir: Path
    limits: Limits
    keys: Any  # GovernanceStore.keys
    authenticate: Authenticator
    registry: Any
    backend: Backend
    manager: SessionManager
    metrics: ServerMetrics
    governance: ServerGovernance | None = None
    webrtc: Any = None
    ready: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


def create_app(config: Mapping[str, Any], *, data_dir: Path | None = None, registry: Any = None,
               limits: Limits | None = None, engine_settings: EngineSettings | None = None,
               web_dir: Path | None = WEB_DIR) -> FastAPI:
    """Build the app for ``config``; the engine starts and stops with the app's lifespan.

    ``registry`` defaults to ``VoiceRegistry.from_config(config)``; ``limits`` and
    ``engine_settings`` default to the ``[limits]`` / ``[engine]`` config tables.
    """
    data_dir = Path(data_dir or Path(config["server"]["data_dir"]).expanduser())
    data_dir.mkdir(parents=True, exist_ok=True)
    if registry is None:
        registry = default_registry(config, data_dir)
    limits = limits or Limits.from_config(config)
    metrics = ServerMetrics()
    backend = make_backend(engine_settings or EngineSettings.from_config(config), config=config, limits=limits,
                           data_dir=data_dir, metrics=metrics)
    gov_config = config.get("governance", {})
    store = GovernanceStore.open(data_dir, busy_timeout_ms=int(gov_config.get("busy_timeout_ms", 5000)),
                                 checkpoint_every_rows=int(gov_config.get("checkpoint_every_rows", 100)),
                                 checkpoint_every_s=float(gov_config.get("checkpoint_every_s", 60.0)))
    governance = ServerGovernance(store, registry=registry, data_dir=data_dir,
                                  poll_interval_s=float(gov_config.get("poll_interval_s", 0.2)),
                                  checkpoint_interval_s=float(gov_config.get("checkpoint_every_s", 60.0)))
    manager = SessionManager(config=config, registry=registry, backend=backend, limits=limits, metrics=metrics,
                             governance=governance)
    governance.bind(manager)
    metrics.bind(active_sessions=lambda: len(manager), engine_load=backend.load,
                 engine_queue_depth=backend.queue_depth)
    keys = store.keys
    ctx = ServerContext(config=config, data_dir=data_dir, limits=limits, keys=keys, authenticate=Authenticator(keys),
                        registry=registry, backend=backend, manager=manager, metrics=metrics, governance=governance)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await backend.start()
        await governance.start()
        # Everything imported and built so far lives as long as the server: keep it out of the cyclic GC, whose
        # full collections of ~10^5 such objects stall the event loop for tens of ms (heard as an underrun).
        gc.freeze()
        ctx.ready = True
        try:
            yield
        finally:
            ctx.ready = False
            await manager.close_all(reason="shutdown")
            if ctx.webrtc is not None:
                await ctx.webrtc.close()
            await governance.stop()
            await backend.stop()
            store.close()

    app = FastAPI(title="rtvc", version=__version__, lifespan=lifespan,
                  description="Real-time streaming voice conversion. The WebSocket protocol rtvc.v1 is described "
                              "in docs/protocol.md.")
    app.state.rtvc = ctx

    @app.exception_handler(RtvcError)
    async def rtvc_error(request: Request, exc: RtvcError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="rtvc"'} if exc.code == "unauthorized" else None
        return JSONResponse(error_message(exc.code, str(exc)), status_code=_HTTP_STATUS.get(exc.code, 400),
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                             for e in exc.errors()[:5])
        return JSONResponse(error_message("bad_request", f"invalid request ({problems})"), status_code=422)

    add_http_routes(app, ctx)
    add_admin_routes(app, ctx)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await serve_websocket(websocket, manager=manager, authenticate=ctx.authenticate, limits=limits)

    _add_webrtc(app, ctx)
    if web_dir is not None and (web_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=web_dir, html=True), name="page")
    else:
        log.warning("browser page not found in %s; / is not served", web_dir)
    return app


def _add_webrtc(app: FastAPI, ctx: ServerContext) -> None:
    try:
        from rtvc.transport.webrtc import WebRtcTransport, webrtc_settings
    except ImportError as exc:  # aiortc missing: the WebSocket still works
        log.warning("WebRTC disabled: %s", exc)
        return
    ctx.webrtc = WebRtcTransport(ctx.manager, ctx.authenticate, **webrtc_settings(ctx.config))
    app.router.routes.extend(ctx.webrtc.routes())
