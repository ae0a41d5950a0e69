"""The session ledger: who streamed which voice, under which grant, for what, with which watermark token.

:meth:`SessionLedger.start` checks consent and records the session in one write transaction, so a
revocation either happens before (the start is refused) or after (the session is in the ledger and the
revocation hook ends it): no session slips between the two. Refusals are audited too.
:meth:`SessionLedger.provenance` resolves a watermark token found in a recording to its session.
"""

from __future__ import annotations

import math
import secrets
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from rtvc.governance.audit import AuditLog
from rtvc.governance.db import Database
from rtvc.governance.errors import Conflict, ConsentError, InvalidInput, NotFound
from rtvc.governance.grants import GrantStore
from rtvc.governance.roles import KeyInfo, require_role
from rtvc.governance.validate import check_choice, check_name, check_purpose, check_text, check_token, iso_time
from rtvc.governance.voices import check_sha256

__all__ = ["Provenance", "SessionLedger", "SessionRecord"]

TRANSPORTS = ("ws", "webrtc", "local")
_COLUMNS = "session_id, client, voice, grant_id, purpose, token, transport, started_at, ended_at, converted_ms, end_reason"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    client: str
    voice: str
    grant_id: str | None
    purpose: str
    token: str
    transport: str
    started_at: str
    ended_at: str | None
    converted_ms: int | None
    end_reason: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a watermark token says about a recording: the session that produced it."""

    token: str
    session_id: str
    voice: str
    grant_id: str | None
    client: str
    client_name: str | None
    purpose: str
    started_at: str
    ended_at: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SessionLedger:
    def __init__(self, db: Database, audit: AuditLog, grants: GrantStore) -> None:
        self.db = db
        self.audit = audit
        self.grants = grants

    def start(
        self,
        client: KeyInfo,
        voice: str,
        purpose: str,
        token: Any,
        *,
        transport: str = "ws",
        builtin: bool = False,
        session_id: str | None = None,
        now: Any = None,
    ) -> SessionRecord:
        """Admit and record a session, or raise the :class:`ConsentError` (also audited as ``session.refused``).

        ``builtin=True`` says the voice is a built-in DSP voice: nobody's voice, no grant needed. A name
        that is also in the voice ledger still needs a grant (fail closed). ``token`` is the session's
        64-bit watermark token (int, 8 bytes or 16 hex digits); it must be unique.
        """
        client = require_role(client, "client", "admin", action="stream")
        voice = check_name(voice, "voice")
        purpose = check_purpose(purpose)
        token = check_token(token)
        transport = check_choice(transport, "transport", TRANSPORTS)
        session_id = check_name(session_id, "session_id") if session_id is not None else "s_" + secrets.token_hex(8)
        started = iso_time(now, "now")
        refusal: ConsentError | None = None
        with self.db.write() as conn:
            owned = conn.execute("SELECT 1 FROM voices WHERE name = ?", (voice,)).fetchone() is not None
            grant_id = None
            try:
                if owned or not builtin:
                    grant_id = self.grants.check_in(conn, voice, purpose, client, started).grant_id
            except ConsentError as exc:
                refusal = exc
                self.audit.append(conn, "session.refused", actor=client.id, voice=voice, grant_id=exc.grant_id,
                                  client=client.id, data={"purpose": purpose, "code": exc.code, "at": started})
            else:
                if conn.execute("SELECT 1 FROM sessions WHERE token = ? OR session_id = ?", (token, session_id)).fetchone():
                    raise Conflict(f"watermark token {token} or session id {session_id} is already in use")
                conn.execute(
                    f"INSERT INTO sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                    (session_id, client.id, voice, grant_id, purpose, token, transport, started),
                )
                self.audit.append(conn, "session.started", actor=client.id, voice=voice, grant_id=grant_id,
                                  client=client.id, session_id=session_id, data={
                                      "purpose": purpose, "token": token, "transport": transport,
                                      "started_at": started, "builtin": grant_id is None})
        if refusal is not None:
            raise refusal
        return SessionRecord(session_id, client.id, voice, grant_id, purpose, token, transport, started, None, None, None)

    def end(self, session_id: str, *, converted_s: float, reason: str, now: Any = None) -> SessionRecord:
        """Close a session: end time, seconds of audio converted, reason. Ending twice changes nothing."""
        session_id = check_name(session_id, "session_id")
        if isinstance(converted_s, bool) or not isinstance(converted_s, (int, float)) or not math.isfinite(converted_s) \
                or not 0 <= converted_s <= 1e7:
            raise InvalidInput(f"converted_s must be a finite number of seconds in 0..1e7, got {converted_s!r}")
        reason = check_text(reason, "reason", max_chars=64)
        ended = iso_time(now, "now")
        with self.db.write() as conn:
            record = self._get(conn, session_id)
            if record.ended_at is not None:
                return record
            converted_ms = round(converted_s * 1000)
            conn.execute("UPDATE sessions SET ended_at = ?, converted_ms = ?, end_reason = ? WHERE session_id = ?",
                         (ended, converted_ms, reason, session_id))
            self.audit.append(conn, "session.ended", actor=record.client, voice=record.voice, grant_id=record.grant_id,
                              client=record.client, session_id=session_id, data={
                                  "purpose": record.purpose, "token": record.token, "started_at": record.started_at,
                                  "ended_at": ended, "converted_ms": converted_ms, "reason": reason})
            return self._get(conn, session_id)

    def get(self, session_id: str) -> SessionRecord:
        with self.db.read() as conn:
            return self._get(conn, check_name(session_id, "session_id"))

    def live(self, *, grant_id: str | None = None, voice: str | None = None) -> list[SessionRecord]:
        """Sessions not yet ended (of one grant or voice): what a revocation must stop."""
        sql, args = f"SELECT {_COLUMNS} FROM sessions WHERE ended_at IS NULL", []
        if grant_id is not None:
            sql += " AND grant_id = ?"
            args.append(grant_id)
        if voice is not None:
            sql += " AND voice = ?"
            args.append(voice)
        with self.db.read() as conn:
            return [SessionRecord(**dict(row)) for row in conn.execute(sql + " ORDER BY started_at", args)]

    def close_orphans(self, *, reason: str = "server_restart") -> int:
        """End every session still open (a server that died left them); call once at server start."""
        orphans = self.live()
        for record in orphans:
            self.end(record.session_id, converted_s=0.0, reason=reason)
        return len(orphans)

    def provenance(self, actor: KeyInfo, token: Any) -> Provenance:
        """The session a watermark token belongs to (auditors and admins only); :class:`NotFound` if none."""
        actor = require_role(actor, "auditor", "admin", action="resolve watermark tokens")
        token = check_token(token)
        with self.db.read() as conn:
            found = self._provenance(conn, token)
        if found is None:
            raise NotFound(f"watermark token {token} belongs to no recorded session")
        return found

    def record_detection(self, actor: KeyInfo, token: Any, *, input_sha256: str | None = None) -> Provenance | None:
        """Audit a detection (a token found in a recording) and return its provenance, or None if unknown."""
        actor = require_role(actor, "auditor", "admin", action="run detection")
        token = check_token(token)
        if input_sha256 is not None:
            check_sha256(input_sha256, "input_sha256")
        with self.db.write() as conn:
            found = self._provenance(conn, token)
            self.audit.append(
                conn, "detection", actor=actor.id, voice=found.voice if found else None,
                grant_id=found.grant_id if found else None, client=found.client if found else None,
                session_id=found.session_id if found else None,
                data={"token": token, "resolved": found is not None, "input_sha256": input_sha256},
            )
        return found

    @staticmethod
    def _provenance(conn: sqlite3.Connection, token: str) -> Provenance | None:
        row = conn.execute(
            "SELECT s.session_id, s.voice, s.grant_id, s.client, k.name AS client_name, s.purpose, s.started_at,"
            " s.ended_at FROM sessions s LEFT JOIN keys k ON k.key_id = s.client WHERE s.token = ?",
            (token,),
        ).fetchone()
        return Provenance(token=token, **dict(row)) if row else None

    @staticmethod
    def _get(conn: sqlite3.Connection, session_id: str) -> SessionRecord:
        row = conn.execute(f"SELECT {_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFound(f"no session {session_id}")
        return SessionRecord(**dict(row))
