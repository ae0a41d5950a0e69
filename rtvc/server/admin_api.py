"""The governance HTTP API under ``/v1/``: keys, owned voices, consent grants, the session ledger, the audit log.

Every route authenticates the key and passes it as ``actor`` to :mod:`rtvc.governance`, which checks the role
(403 ``forbidden``) and validates values (400 ``bad_request``); bodies are typed models that refuse unknown
fields, wrong types and oversize values (422 ``bad_request``) before anything is written.

    POST   /v1/keys                    admin           create a key (the secret is in this answer only)
    GET    /v1/keys                    admin
    DELETE /v1/keys/{key_id}           admin           revoke; the key's live sessions end (unauthorized)
    GET    /v1/voices/owned            admin auditor owner (owners: their own)
    POST   /v1/voices/{name}/owner     admin owner     record the owner of an imported voice
    DELETE /v1/voices/{name}           admin owner     erase everything derived from the voice
    POST   /v1/grants                  admin owner     record consent (optionally the recorded statement, base64)
    GET    /v1/grants[/{grant_id}]     admin auditor owner
    GET    /v1/grants/{id}/statement-audio  admin auditor owner   the recorded statement, checked against its sha256
    DELETE /v1/grants/{grant_id}       admin owner     revoke: live sessions end, last grant -> erasure
    GET    /v1/sessions/{session_id}   admin auditor   the ledger record of a session
    GET    /v1/audit                   admin auditor owner (owners: rows about their voices)
    GET    /v1/audit/verify            admin auditor
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from rtvc.governance import PURPOSES, ROLES, Forbidden, InvalidInput, KeyInfo, NotFound, Unauthorized
from rtvc.governance.statements import MAX_STATEMENT_AUDIO_BYTES, STATEMENT_MEDIA_TYPES
from rtvc.governance.validate import MAX_NAME_CHARS, MAX_REASON_CHARS, MAX_STATEMENT_CHARS

if TYPE_CHECKING:
    from rtvc.server.app import ServerContext

__all__ = ["add_admin_routes"]

MAX_CLIENTS = 100
MAX_STATEMENT_AUDIO_B64 = 4 * -(-MAX_STATEMENT_AUDIO_BYTES // 3)  # base64 of the largest statement accepted
Role = Literal[ROLES]  # type: ignore[valid-type]
Purpose = Literal[PURPOSES]  # type: ignore[valid-type]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
Time = Annotated[str, Field(min_length=1, max_length=40, description="ISO-8601 time, UTC")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KeyCreate(_Body):
    role: Role = "client"
    name: Name | None = None


class OwnerSet(_Body):
    owner: Annotated[str, Field(min_length=1, max_length=32, description="key id of a key with role owner")]
    model_sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] | None = None


class GrantCreate(_Body):
    voice: Name
    statement: Annotated[str, Field(min_length=1, max_length=MAX_STATEMENT_CHARS)]
    purposes: Annotated[list[Purpose], Field(min_length=1, max_length=len(PURPOSES))]
    clients: Literal["any"] | Annotated[list[Name], Field(min_length=1, max_length=MAX_CLIENTS)] = "any"
    valid_from: Time | None = None
    valid_until: Time | None = None
    statement_audio: Annotated[str, Field(
        min_length=4, max_length=MAX_STATEMENT_AUDIO_B64,
        description=f"the owner's recorded statement: a WAV, FLAC or Ogg file, standard base64, at most "
                    f"{MAX_STATEMENT_AUDIO_BYTES} bytes decoded; stored privately with its sha256")] | None = None


def _statement_audio(encoded: str | None) -> bytes | None:
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("statement_audio must be standard base64 (A-Z a-z 0-9 + /, padded with =)") from None


def _caller(request: Request) -> KeyInfo:
    return request.app.state.rtvc.authenticate(request)


Caller = Annotated[KeyInfo, Depends(_caller)]


def add_admin_routes(app: FastAPI, ctx: ServerContext) -> None:
    store = ctx.governance.store
    run = asyncio.to_thread  # every governance write is a short transaction that may wait for another process

    # -- keys ------------------------------------------------------------------------------------------

    @app.post("/v1/keys", tags=["keys"], status_code=201, summary="Create an API key (admin)")
    async def create_key(body: KeyCreate, key: Caller) -> dict[str, Any]:
        secret, info = await run(store.keys.create, body.role, body.name, actor=key)
        return {"key": secret, **info.to_json()}

    @app.get("/v1/keys", tags=["keys"], summary="List API keys, never their secrets (admin)")
    async def list_keys(key: Caller, include_revoked: bool = False) -> dict[str, Any]:
        return {"keys": [k.to_json() for k in store.keys.list(key, include_revoked=include_revoked)]}

    @app.delete("/v1/keys/{key_id}", tags=["keys"], summary="Revoke a key; its live sessions end (admin)")
    async def revoke_key(key_id: Annotated[str, Field(max_length=32)], key: Caller) -> dict[str, Any]:
        if not await run(store.keys.revoke, key_id, actor=key):
            raise NotFound(f"no active key {key_id}")
        ended = 0
        for session in ctx.manager.sessions():
            if getattr(session.client, "id", None) == key_id:
                session.close(reason="key_revoked", error=Unauthorized(f"API key {key_id} was revoked"))
                ended += 1
        return {"revoked": key_id, "sessions_ended": ended}

    # -- owned voices ----------------------------------------------------------------------------------

    @app.get("/v1/voices/owned", tags=["voices"], summary="Imported voices, their owners and erasure state")
    async def owned_voices(key: Caller, include_erased: bool = False) -> dict[str, Any]:
        return {"voices": [v.to_json() for v in store.voices.list(key, include_erased=include_erased)]}

    @app.post("/v1/voices/{name}/owner", tags=["voices"], status_code=201,
              summary="Record the owner of an imported voice (admin, or the owner for themself)")
    async def set_owner(name: Name, body: OwnerSet, key: Caller) -> dict[str, Any]:
        if name not in ctx.registry or name in ctx.governance.builtin:
            raise NotFound(f"no imported voice {name!r} on this server (built-in voices have no owner)")
        record = await run(store.voices.register, key, name, body.owner, model_sha256=body.model_sha256)
        return record.to_json()

    @app.delete("/v1/voices/{name}", tags=["voices"],
                summary="Erase a voice: grants revoked, live sessions ended, files and loaded copies deleted")
    async def erase_voice(name: Name, key: Caller,
                          reason: Annotated[str, Query(min_length=1, max_length=64)] = "requested") -> dict[str, Any]:
        report = await run(store.eraser.erase, key, name, reason=reason)
        return report.to_json()

    # -- grants ----------------------------------------------------------------------------------------

    @app.post("/v1/grants", tags=["grants"], status_code=201, summary="Record an owner's consent (owner, admin)")
    async def create_grant(body: GrantCreate, key: Caller) -> dict[str, Any]:
        audio = _statement_audio(body.statement_audio)  # checked (base64, size, real audio) before anything is written
        grant = await run(lambda: store.grants.create(
            key, body.voice, statement=body.statement, purposes=body.purposes, clients=body.clients,
            valid_from=body.valid_from, valid_until=body.valid_until, statement_audio=audio))
        return {**grant.to_json(), "status": grant.status()}

    @app.get("/v1/grants/{grant_id}/statement-audio", tags=["grants"], response_class=Response,
             summary="The owner's recorded consent statement, checked against its sha256 (admin, auditor, owner)",
             responses={200: {"content": {t: {} for t in STATEMENT_MEDIA_TYPES.values()}}})
    async def statement_audio(grant_id: Annotated[str, Field(max_length=40)], key: Caller) -> Response:
        data, suffix, sha256 = await run(store.grants.statement_audio, key, grant_id)
        return Response(data, media_type=STATEMENT_MEDIA_TYPES.get(suffix, "application/octet-stream"),
                        headers={"X-Rtvc-Sha256": sha256})

    @app.get("/v1/grants", tags=["grants"], summary="Grants (owners see their voices' grants)")
    async def list_grants(key: Caller, voice: Annotated[str | None, Query(max_length=MAX_NAME_CHARS)] = None,
                          status: Literal["live", "pending", "expired", "revoked"] | None = None) -> dict[str, Any]:
        return {"grants": [{**g.to_json(), "status": g.status()} for g in store.grants.list(key, voice=voice,
                                                                                           status=status)]}

    @app.get("/v1/grants/{grant_id}", tags=["grants"], summary="One grant")
    async def get_grant(grant_id: Annotated[str, Field(max_length=40)], key: Caller) -> dict[str, Any]:
        grant = store.grants.get(key, grant_id)
        return {**grant.to_json(), "status": grant.status()}

    @app.delete("/v1/grants/{grant_id}", tags=["grants"],
                summary="Revoke a grant: its live sessions end within 1 s; the voice is erased with its last grant")
    async def revoke_grant(grant_id: Annotated[str, Field(max_length=40)], key: Caller,
                           reason: Annotated[str | None, Query(max_length=MAX_REASON_CHARS)] = None) -> dict[str, Any]:
        grant = await run(store.grants.revoke, key, grant_id, reason=reason)  # the hook ends sessions, erases
        return {**grant.to_json(statement=False), "status": grant.status()}

    # -- session ledger and audit ------------------------------------------------------------------------

    @app.get("/v1/sessions/{session_id}", tags=["sessions"], summary="A session's ledger record (admin, auditor)")
    async def session_record(session_id: Annotated[str, Field(max_length=MAX_NAME_CHARS)],
                             key: Caller) -> dict[str, Any]:
        if key.role not in ("admin", "auditor"):
            raise Forbidden(f"role {key.role!r} may not read the session ledger (needs admin or auditor)")
        return store.sessions.get(session_id).to_json()

    @app.get("/v1/audit", tags=["audit"], summary="Audit rows, oldest first (owners: rows about their voices)")
    async def audit(key: Caller, voice: Annotated[str | None, Query(max_length=MAX_NAME_CHARS)] = None,
                    grant: Annotated[str | None, Query(max_length=40)] = None,
                    client: Annotated[str | None, Query(max_length=MAX_NAME_CHARS)] = None,
                    since: Annotated[str | None, Query(max_length=40)] = None,
                    event: Annotated[str | None, Query(max_length=40)] = None,
                    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> dict[str, Any]:
        rows = store.audit.query(key, voice=voice, grant_id=grant, client=client, since=since, event=event,
                                 limit=limit)
        return {"rows": [row.to_json() for row in rows]}

    @app.get("/v1/audit/verify", tags=["audit"], summary="Verify the hash chain and signed checkpoints")
    async def verify(key: Caller) -> JSONResponse:
        report = await run(store.verify_audit, key)
        return JSONResponse(report.to_json(), status_code=200)
