"""The append-only, hash-chained audit log and its signed checkpoints.

Row ``n`` stores ``hash = sha256(canonical(body))`` where the body holds the row's fields and
``prev`` = the hash of row ``n - 1`` (64 zeros for row 1). The canonical encoding is sorted-key,
compact, UTF-8 JSON, with no floats (times are ISO strings, durations integer milliseconds), so
any language can recompute it. Rows hold only ids, names of voices and keys, and hashes: never
audio or consent text, so erasing a voice leaves the chain intact.

Every ``checkpoint_every_rows`` rows or ``checkpoint_every_s`` seconds a checkpoint signs
``(no, seq, hash, ts)`` with the server's Ed25519 key; it goes into the database and, as one JSON
line, into ``audit-checkpoints.jsonl`` beside it (copy that file off the machine to make a cut tail
provable even if both the rows and the checkpoint table are cut).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rtvc.governance.db import Database
from rtvc.governance.errors import InvalidInput
from rtvc.governance.roles import KeyInfo, require_role
from rtvc.governance.signing import AuditSigner
from rtvc.governance.validate import check_choice, check_id, check_key_name, check_name, iso_time, now_iso

__all__ = [
    "CHECKPOINT_FILENAME",
    "EVENTS",
    "GENESIS",
    "AuditLog",
    "AuditRow",
    "Checkpoint",
    "canonical_json",
    "row_hash",
]

GENESIS = "0" * 64
CHECKPOINT_FILENAME = "audit-checkpoints.jsonl"
EVENTS = (
    "key.created",
    "key.revoked",
    "voice.imported",
    "voice.erased",
    "voice.unloaded",
    "grant.created",
    "grant.revoked",
    "session.started",
    "session.ended",
    "session.refused",
    "detection",
)
_ROW_COLUMNS = "seq, ts, event, actor, voice, grant_id, client, session_id, data, prev_hash, hash"


def canonical_json(value: Any) -> bytes:
    """Sorted-key compact UTF-8 JSON; floats are refused so the bytes never depend on float printing."""
    _refuse_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("audit data must not hold floats (use integer milliseconds or strings)")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_floats(item)


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    ts: str
    event: str
    actor: str
    voice: str | None
    grant_id: str | None
    client: str | None
    session_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self, seq: int | None = None) -> dict[str, Any]:
        """The hashed fields; ``seq`` overrides the row number (verify uses it to spot moved rows)."""
        return {
            "seq": self.seq if seq is None else seq,
            "ts": self.ts,
            "event": self.event,
            "actor": self.actor,
            "voice": self.voice,
            "grant": self.grant_id,
            "client": self.client,
            "session": self.session_id,
            "data": self.data,
            "prev": self.prev_hash,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_db(cls, row: sqlite3.Row) -> AuditRow:
        try:
            data = json.loads(row["data"])
        except (TypeError, ValueError):
            data = {"unparsable": str(row["data"])}  # verify reports the row as edited
        return cls(
            seq=row["seq"], ts=row["ts"], event=row["event"], actor=row["actor"], voice=row["voice"],
            grant_id=row["grant_id"], client=row["client"], session_id=row["session_id"], data=data,
            prev_hash=row["prev_hash"], hash=row["hash"],
        )


def row_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    no: int
    seq: int
    hash: str
    ts: str
    public_key: str
    signature: str

    def message(self) -> bytes:
        return canonical_json({"no": self.no, "seq": self.seq, "hash": self.hash, "ts": self.ts})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class AuditLog:
    """Appends audit rows inside the caller's write transaction and seals the chain with checkpoints."""

    def __init__(
        self,
        db: Database,
        signer: AuditSigner,
        *,
        checkpoint_file: str | os.PathLike[str] | None = None,
        checkpoint_every_rows: int = 100,
        checkpoint_every_s: float = 60.0,
    ) -> None:
        if checkpoint_every_rows < 1 or checkpoint_every_s <= 0:
            raise ValueError("checkpoint intervals must be positive")
        self.db = db
        self.signer = signer
        self.checkpoint_file = Path(checkpoint_file) if checkpoint_file else None
        self.checkpoint_every_rows = int(checkpoint_every_rows)
        self.checkpoint_every_s = float(checkpoint_every_s)

    def append(
        self,
        conn: sqlite3.Connection,
        event: str,
        *,
        actor: str,
        voice: str | None = None,
        grant_id: str | None = None,
        client: str | None = None,
        session_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> AuditRow:
        """Add one row; ``conn`` must be inside :meth:`Database.write` (the write lock keeps the chain linear)."""
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        if not conn.in_transaction:
            raise RuntimeError("AuditLog.append must run inside Database.write()")
        head = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (head["seq"] + 1, head["hash"]) if head else (1, GENESIS)
        row = AuditRow(seq, now_iso(), event, actor, voice, grant_id, client, session_id, dict(data or {}), prev, "")
        digest = row_hash(row.body())
        conn.execute(
            f"INSERT INTO audit ({_ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, row.ts, event, actor, voice, grant_id, client, session_id,
             canonical_json(row.data).decode(), prev, digest),
        )
        self._checkpoint_if_due(conn, seq, digest, row.ts)
        return AuditRow(**{**row.to_json(), "hash": digest})

    def checkpoint(self, *, force: bool = True) -> Checkpoint | None:
        """Sign the current head now (or only when due with ``force=False``); None when nothing is new.

        Call it on a timer and at shutdown so an idle tail is sealed too.
        """
        with self.db.write() as conn:
            head = conn.execute("SELECT seq, hash, ts FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            if head is None:
                return None
            last = self._last_checkpoint(conn)
            if last is not None and last["seq"] >= head["seq"]:
                return None
            if not force and not self._due(last, head["seq"], now_iso()):
                return None
            return self._write_checkpoint(conn, last, head["seq"], head["hash"])

    def _checkpoint_if_due(self, conn: sqlite3.Connection, seq: int, digest: str, ts: str) -> None:
        last = self._last_checkpoint(conn)
        if self._due(last, seq, ts):
            self._write_checkpoint(conn, last, seq, digest)

    def _due(self, last: sqlite3.Row | None, seq: int, ts: str) -> bool:
        if last is None:
            return True  # the first row is sealed at once: the log's existence is then provable
        if seq - last["seq"] >= self.checkpoint_every_rows:
            return True
        return _seconds_between(last["ts"], ts) >= self.checkpoint_every_s

    @staticmethod
    def _last_checkpoint(conn: sqlite3.Connection) -> sqlite3.Row | None:
        return conn.execute("SELECT no, seq, ts FROM audit_checkpoints ORDER BY no DESC LIMIT 1").fetchone()

    def _write_checkpoint(self, conn: sqlite3.Connection, last: sqlite3.Row | None, seq: int, digest: str) -> Checkpoint:
        unsigned = Checkpoint((last["no"] + 1) if last else 1, seq, digest, now_iso(), self.signer.public_hex, "")
        signed = Checkpoint(**{**unsigned.to_json(), "signature": self.signer.sign(unsigned.message())})
        conn.execute(
            "INSERT INTO audit_checkpoints (no, seq, hash, ts, public_key, signature) VALUES (?, ?, ?, ?, ?, ?)",
            (signed.no, signed.seq, signed.hash, signed.ts, signed.public_key, signed.signature),
        )
        if self.checkpoint_file is not None:  # only a committed checkpoint may reach the copy
            self.db.after_commit(lambda: _append_line(self.checkpoint_file, signed))
        return signed

    def checkpoints(self) -> list[Checkpoint]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT no, seq, hash, ts, public_key, signature FROM audit_checkpoints ORDER BY no")
            return [Checkpoint(**dict(row)) for row in rows]

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last row; (0, GENESIS) for an empty log."""
        with self.db.read() as conn:
            row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (row["seq"], row["hash"]) if row else (0, GENESIS)

    def rows_after(self, seq: int, *, events: tuple[str, ...] = EVENTS, limit: int = 1000) -> list[AuditRow]:
        """Rows with a number above ``seq`` (oldest first): the change feed other processes poll."""
        marks = ",".join("?" * len(events))
        with self.db.read() as conn:
            rows = conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM audit WHERE seq > ? AND event IN ({marks}) ORDER BY seq LIMIT ?",
                (seq, *events, limit),
            )
            return [AuditRow.from_db(row) for row in rows]

    def query(
        self,
        actor: KeyInfo,
        *,
        voice: str | None = None,
        grant_id: str | None = None,
        client: str | None = None,
        since: Any = None,
        event: str | None = None,
        limit: int = 1000,
    ) -> list[AuditRow]:
        """Rows matching every given filter, oldest first.

        ``client`` is a key id or a key name (every key that ever had the name). Admins and auditors
        see all rows; an owner sees rows about their voices and their own actions; clients see none.
        """
        actor = require_role(actor, "admin", "auditor", "owner", action="read the audit log")
        where, args = _filters(voice, grant_id, client, since, event)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput("limit must be an integer in 1..100000")
        if actor.role == "owner":
            where.append("(voice IN (SELECT name FROM voices WHERE owner = ?) OR actor = ?)")
            args += [actor.id, actor.id]
        sql = f"SELECT {_ROW_COLUMNS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self.db.read() as conn:
            rows = conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit))
            return [AuditRow.from_db(row) for row in rows]


def _filters(voice: Any, grant_id: Any, client: Any, since: Any, event: Any) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if voice is not None:
        where.append("voice = ?")
        args.append(check_name(voice, "voice"))
    if grant_id is not None:
        where.append("grant_id = ?")
        args.append(check_id(grant_id, "grant"))
    if client is not None:
        where.append("(client = ? OR client IN (SELECT key_id FROM keys WHERE name = ?))")
        args += [check_key_name(client, "client")] * 2  # a key id or a name (every key that ever had it)
    if since is not None:
        where.append("ts >= ?")
        args.append(iso_time(since, "since"))
    if event is not None:
        where.append("event = ?")
        args.append(check_choice(event, "event", EVENTS))
    return where, args


def _append_line(path: Path, checkpoint: Checkpoint) -> None:
    line = json.dumps(checkpoint.to_json(), sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:  # one O_APPEND write per line: lines from two processes never interleave
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _seconds_between(earlier: str, later: str) -> float:
    parse = "%Y-%m-%dT%H:%M:%S.%fZ"
    a = datetime.strptime(earlier, parse).replace(tzinfo=UTC)
    b = datetime.strptime(later, parse).replace(tzinfo=UTC)
    return (b - a).total_seconds()

