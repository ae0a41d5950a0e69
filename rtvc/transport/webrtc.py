"""WebRTC signaling: ``POST /v1/webrtc/offer`` (JSON or WHIP) and ``DELETE /v1/webrtc/sessions/{id}``.

Two forms of the offer, same session options (``voice``, ``purpose``, ``params``, optional ``block_ms``):

* JSON: ``{"sdp", "type": "offer", "voice", "purpose", "params"}`` -> 201 JSON
  ``{"sdp", "type": "answer", "session_id", "location", "session": <session.started>}``.
* WHIP (RFC 9725): ``Content-Type: application/sdp`` body; options in the query string
  (``?voice=...&purpose=...&params={"pitch":3}``) or headers (``X-Rtvc-Voice``, ``X-Rtvc-Purpose``,
  ``X-Rtvc-Params``, ``X-Rtvc-Block-Ms``) -> 201 ``application/sdp`` answer.

Both answer with ``Location: /v1/webrtc/sessions/{id}``; DELETE on it ends the session and returns its totals.
Auth is the API key in ``Authorization: Bearer KEY``. Non-trickle: the answer carries all candidates.

Mounting (Starlette or FastAPI)::

    webrtc = WebRtcTransport(manager, authenticate, **webrtc_settings(config))
    app = Starlette(routes=[..., *webrtc.routes()])      # FastAPI: app.router.routes.extend(webrtc.routes())
    ... on shutdown: await webrtc.close()
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCSessionDescription
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rtvc.errors import RtvcError
from rtvc.protocol import ProtocolError, error_message
from rtvc.session import StartRequest
from rtvc.transport.peer import PeerSession
from rtvc.transport.tracks import WEBRTC_RATE

__all__ = ["SESSION_PATH", "WebRtcTransport", "routes", "use_host_addresses", "webrtc_settings"]

log = logging.getLogger(__name__)

OFFER_PATH = "/v1/webrtc/offer"
SESSION_PATH = "/v1/webrtc/sessions/{session_id}"
MEDIA_FORMAT = {"encoding": "pcm_s16le", "sample_rate": WEBRTC_RATE, "channels": 1}
_STATUS = {"unauthorized": 401, "forbidden": 403, "unknown_voice": 404, "message_too_big": 413,
           "overloaded": 503, "shutting_down": 503, "internal": 500, "watermark_failed": 500,
           # consent refusals: the key is fine, the voice's owner has not agreed to this use
           "no_consent": 403, "purpose_not_allowed": 403, "client_not_allowed": 403, "grant_expired": 403,
           "grant_revoked": 403}
_OPTION_FIELDS = ("voice", "purpose", "params", "block_ms")

_aioice_default_host_addresses = aioice.ice.get_host_addresses


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Gather ICE host candidates on exactly ``addresses`` (e.g. ``["127.0.0.1"]``); empty restores the default.

    aioice offers no per-connection setting and leaves 127.0.0.1 out, so this swaps its module-level lookup
    for the whole process. For tests and single-machine use, chosen by the ``host_addresses`` setting.
    """
    if not addresses:
        aioice.ice.get_host_addresses = _aioice_default_host_addresses
        return
    fixed = [str(a) for a in addresses]

    def configured_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured_host_addresses


def webrtc_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword settings for :class:`WebRtcTransport` from the ``[webrtc]`` config section (all optional)."""
    section = dict(config.get("webrtc", {}))
    known = {"ice_servers", "host_addresses", "connect_timeout_s", "max_sdp_bytes", "max_input_queue_frames",
             "jitter_prefetch_frames"}
    return {k: v for k, v in section.items() if k in known}


class WebRtcTransport:
    """The WebRTC side of the server: signaling routes plus the live peers, one per session.

    Parameters
    ----------
    manager : rtvc.session.SessionManager
    authenticate : callable
        ``authenticate(request) -> key info`` (sync or async); raises an RtvcError with code ``unauthorized``
        (or returns None) for a missing or bad key.
    ice_servers : sequence of str
        STUN/TURN URLs; empty (the default) means host candidates only and no outside contact.
    host_addresses : sequence of str
        If non-empty, the only addresses ICE gathers on (see :func:`use_host_addresses`).
    connect_timeout_s, max_sdp_bytes, max_input_queue_frames
        Limits: time for ICE+DTLS to connect, offer body size, input frames queued before dropping.
    jitter_prefetch_frames
        Frames aiortc's receive jitter buffer holds before releasing audio (aiortc's own default is 4).
    """

    def __init__(self, manager, authenticate: Callable[[Request], Any], *, ice_servers: Sequence[str] = (),
                 host_addresses: Sequence[str] = (), connect_timeout_s: float = 15.0, max_sdp_bytes: int = 65536,
                 max_input_queue_frames: int = 5, jitter_prefetch_frames: int = 1) -> None:
        self.manager = manager
        self.authenticate = authenticate
        self.ice_servers = [str(url) for url in ice_servers]
        self.connect_timeout_s = connect_timeout_s
        self.max_sdp_bytes = max_sdp_bytes
        self.max_input_queue_frames = max_input_queue_frames
        self.jitter_prefetch_frames = jitter_prefetch_frames
        self.peers: dict[str, PeerSession] = {}
        self._owners: dict[str, object] = {}
        if host_addresses:
            use_host_addresses(host_addresses)

    def routes(self) -> list[Route]:
        return [
            Route(OFFER_PATH, self.offer, methods=["POST"], name="webrtc_offer"),
            Route(SESSION_PATH, self.delete, methods=["DELETE"], name="webrtc_session"),
        ]

    async def close(self) -> None:
        """Hang up every peer (server shutdown)."""
        for peer in list(self.peers.values()):
            await peer.close("shutdown")

    # --- handlers --------------------------------------------------------------------------------------

    async def offer(self, request: Request) -> Response:
        try:
            key_info = await self._auth(request)
            offer, options, whip = await self._read_offer(request)
        except RtvcError as exc:
            return _error(exc)
        start = {"type": "session.start", "input": MEDIA_FORMAT, "output": MEDIA_FORMAT, **options}
        try:
            session = await self.manager.open(StartRequest.from_json(start), client=key_info, transport="webrtc")
        except RtvcError as exc:
            return _error(exc)
        limits = getattr(self.manager, "limits", None)
        peer = PeerSession(session, configuration=RTCConfiguration(iceServers=self._ice_servers()),
                           connect_timeout_s=self.connect_timeout_s, max_input_queue_frames=self.max_input_queue_frames,
                           jitter_prefetch_frames=self.jitter_prefetch_frames,
                           stats_interval_s=getattr(limits, "stats_interval_s", 1.0),
                           max_message_bytes=getattr(limits, "max_message_bytes", 262144), on_closed=self._forget)
        try:
            answer = await peer.answer(offer)
        except RtvcError as exc:
            await peer.close("bad_offer")
            return _error(exc)
        self.peers[peer.id] = peer
        self._owners[peer.id] = _owner(key_info)
        location = SESSION_PATH.format(session_id=peer.id)
        headers = {"Location": location}
        if whip:
            return Response(answer.sdp, status_code=201, media_type="application/sdp", headers=headers)
        body = {"sdp": answer.sdp, "type": answer.type, "session_id": peer.id, "location": location,
                "session": session.started}
        return JSONResponse(body, status_code=201, headers=headers)

    async def delete(self, request: Request) -> Response:
        try:
            key_info = await self._auth(request)
        except RtvcError as exc:
            return _error(exc)
        session_id = request.path_params["session_id"]
        peer = self.peers.get(session_id)
        if peer is None or (self._owners.get(session_id) != _owner(key_info)
                            and getattr(key_info, "role", None) != "admin"):
            return JSONResponse(error_message("not_found", f"no WebRTC session {session_id!r} for this key"),
                                status_code=404)
        totals = await peer.close("client")
        return JSONResponse({"type": "session.ended", **totals, "session_id": session_id})

    # --- helpers ---------------------------------------------------------------------------------------

    async def _auth(self, request: Request) -> object:
        result = self.authenticate(request)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            raise ProtocolError("a valid API key is required (Authorization: Bearer KEY)", "unauthorized")
        return result

    async def _read_offer(self, request: Request) -> tuple[RTCSessionDescription, dict, bool]:
        """(offer, session options, is WHIP); ProtocolError for anything malformed."""
        body = await request.body()
        if len(body) > self.max_sdp_bytes:
            raise ProtocolError(f"offer of {len(body)} bytes exceeds {self.max_sdp_bytes}", "message_too_big")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/sdp":
            return RTCSessionDescription(sdp=_text(body), type="offer"), _whip_options(request), True
        if content_type not in ("application/json", ""):
            raise ProtocolError(f"content type {content_type!r}: send application/json or application/sdp")
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise ProtocolError(f"offer body is not valid JSON: {exc}") from None
        if not isinstance(message, dict) or message.get("type") != "offer" or not isinstance(message.get("sdp"), str):
            raise ProtocolError('offer must be a JSON object with "sdp" (string) and "type": "offer"')
        unknown = sorted(set(message) - {"sdp", "type", *_OPTION_FIELDS})
        if unknown:
            raise ProtocolError(f"offer has unknown field(s): {', '.join(unknown)}")
        options = {k: message[k] for k in _OPTION_FIELDS if k in message}
        return RTCSessionDescription(sdp=message["sdp"], type="offer"), options, False

    def _ice_servers(self) -> list[RTCIceServer]:
        return [RTCIceServer(urls=url) for url in self.ice_servers]

    def _forget(self, peer: PeerSession) -> None:
        self.peers.pop(peer.id, None)
        self._owners.pop(peer.id, None)


def routes(manager, authenticate: Callable[[Request], Any], **settings: Any) -> list[Route]:
    """Convenience: the routes of a new :class:`WebRtcTransport` (prefer the class to close peers on shutdown)."""
    return WebRtcTransport(manager, authenticate, **settings).routes()


def _whip_options(request: Request) -> dict:
    options: dict[str, Any] = {}
    for field in _OPTION_FIELDS:
        header = "x-rtvc-" + field.replace("_", "-")
        value = request.query_params.get(field, request.headers.get(header))
        if value is None:
            continue
        if field in ("params", "block_ms"):
            try:
                value = json.loads(value)
            except ValueError:
                raise ProtocolError(f"{field} must be JSON (e.g. params={{\"pitch\": 3}}), got {value!r}") from None
        options[field] = value
    return options


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("SDP body is not UTF-8 text") from None


def _owner(key_info: object) -> object:
    """What identifies the caller's key across requests (its id if it has one)."""
    for attribute in ("key_id", "id", "name"):
        value = getattr(key_info, attribute, None)
        if value is not None:
            return value
    return key_info


def _error(exc: RtvcError) -> JSONResponse:
    code = str(getattr(exc, "code", "internal"))
    status = _STATUS.get(code, 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else ({"Retry-After": "5"} if status == 503 else None)
    return JSONResponse(error_message(code, str(exc)), status_code=status, headers=headers)
