"""Who owns which voice: the ledger of imported voices (the files themselves live in the voice store).

A voice in this ledger is somebody's voice: it streams only under a live grant. Built-in DSP voices are
not in it. An erased voice keeps its row (name, owner, model hash, times) so old audit rows stay readable;
importing the same name again starts afresh.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from rtvc.governance.audit import AuditLog
from rtvc.governance.db import Database
from rtvc.governance.errors import Conflict, Forbidden, InvalidInput, NotFound
from rtvc.governance.roles import KeyInfo, require_role
from rtvc.governance.validate import check_key_id, check_name, now_iso

__all__ = ["VoiceLedger", "VoiceRecord", "check_sha256"]

_COLUMNS = "name, owner, model_sha256, imported_at, erased_at"


def check_sha256(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidInput(f"{field} must be 64 lowercase hex digits (a sha256)")
    return value


@dataclass(frozen=True, slots=True)
class VoiceRecord:
    name: str
    owner: str
    model_sha256: str | None
    imported_at: str
    erased_at: str | None

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _record(row: sqlite3.Row) -> VoiceRecord:
    return VoiceRecord(row["name"], row["owner"], row["model_sha256"], row["imported_at"], row["erased_at"])


class VoiceLedger:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def register(self, actor: KeyInfo, name: str, owner: str, *, model_sha256: str | None = None) -> VoiceRecord:
        """Record that ``owner`` (a key with role owner) owns the imported voice ``name``.

        Admins register for any owner; an owner only for themself. Audited as ``voice.imported``.
        """
        actor = require_role(actor, "admin", "owner", action="import voices")
        name = check_name(name, "voice")
        owner = check_key_id(owner, "owner")
        if model_sha256 is not None:
            check_sha256(model_sha256, "model_sha256")
        if actor.role == "owner" and owner != actor.id:
            raise Forbidden("an owner may import voices only for themself")
        with self.db.write() as conn:
            key = conn.execute("SELECT role, revoked_at FROM keys WHERE key_id = ?", (owner,)).fetchone()
            if key is None or key["role"] != "owner" or key["revoked_at"] is not None:
                raise InvalidInput(f"owner {owner} must be a live key with role 'owner'")
            existing = conn.execute("SELECT erased_at FROM voices WHERE name = ?", (name,)).fetchone()
            if existing is not None and existing["erased_at"] is None:
                raise Conflict(f"voice {name!r} is already imported; erase it before importing it again")
            record = VoiceRecord(name, owner, model_sha256, now_iso(), None)
            if existing is None:
                conn.execute(
                    "INSERT INTO voices (name, owner, model_sha256, imported_at, imported_by) VALUES (?, ?, ?, ?, ?)",
                    (name, owner, model_sha256, record.imported_at, actor.id),
                )
            else:  # re-import of an erased name; its old grants stay revoked
                conn.execute(
                    "UPDATE voices SET owner = ?, model_sha256 = ?, imported_at = ?, imported_by = ?, erased_at = NULL"
                    " WHERE name = ?",
                    (owner, model_sha256, record.imported_at, actor.id, name),
                )
            self.audit.append(conn, "voice.imported", actor=actor.id, voice=name,
                              data={"owner": owner, "model_sha256": model_sha256})
        return record

    def get(self, name: str) -> VoiceRecord:
        name = check_name(name, "voice")
        with self.db.read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM voices WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"voice {name!r} has no owner on record (import it first)")
        return _record(row)

    def find(self, name: str) -> VoiceRecord | None:
        try:
            return self.get(name)
        except NotFound:
            return None

    def list(self, actor: KeyInfo, *, include_erased: bool = False) -> list[VoiceRecord]:
        """Admins and auditors see every voice, owners their own."""
        actor = require_role(actor, "admin", "auditor", "owner", action="list owned voices")
        sql = f"SELECT {_COLUMNS} FROM voices WHERE 1"
        args: list[Any] = []
        if actor.role == "owner":
            sql += " AND owner = ?"
            args.append(actor.id)
        if not include_erased:
            sql += " AND erased_at IS NULL"
        with self.db.read() as conn:
            return [_record(row) for row in conn.execute(sql + " ORDER BY name", args)]

    @staticmethod
    def require_owner_or_admin(actor: KeyInfo, voice: VoiceRecord, action: str) -> KeyInfo:
        actor = require_role(actor, "admin", "owner", action=action)
        if actor.role == "owner" and voice.owner != actor.id:
            raise Forbidden(f"only the owner of voice {voice.name!r} (or an admin) may {action}")
        return actor
