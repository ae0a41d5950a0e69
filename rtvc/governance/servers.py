"""Which servers run on this data dir now: a lease row per server, renewed by a heartbeat.

A server registers when it starts, renews ``beat_at`` every ``HEARTBEAT_S`` and marks itself stopped on the way
out; a row whose heartbeat is older than ``STALE_AFTER_S`` belongs to a server that died. Another process that
erases a voice (``rtvc voices erase``) uses this to know whose confirmation to wait for: each live server
answers an erasure with a ``voice.unloaded`` audit row naming itself (see :func:`wait_for_unload`).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from rtvc.governance.audit import AuditLog, AuditRow
from rtvc.governance.db import Database
from rtvc.governance.validate import iso_time, now_iso

__all__ = ["HEARTBEAT_S", "STALE_AFTER_S", "ServerLease", "ServerLeases", "wait_for_unload"]

HEARTBEAT_S = 1.0
STALE_AFTER_S = 5.0  # several missed beats: a server this quiet is gone (or too stalled to serve)


@dataclass(frozen=True, slots=True)
class ServerLease:
    server_id: str
    pid: int
    host: str
    started_at: str
    beat_at: str
    stopped_at: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ServerLeases:
    """Lease rows of the servers using this database (one short write per heartbeat)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self) -> str:
        """A new lease for this process; returns its server id."""
        server_id = "srv_" + secrets.token_hex(6)
        now = now_iso()
        with self.db.write() as conn:
            conn.execute("INSERT INTO servers (server_id, pid, host, started_at, beat_at) VALUES (?, ?, ?, ?, ?)",
                         (server_id, os.getpid(), socket.gethostname()[:255], now, now))
        return server_id

    def beat(self, server_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE servers SET beat_at = ? WHERE server_id = ? AND stopped_at IS NULL",
                         (now_iso(), server_id))

    def stop(self, server_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE servers SET stopped_at = ? WHERE server_id = ?", (now_iso(), server_id))

    def live(self, *, stale_after_s: float = STALE_AFTER_S, now: Any = None) -> list[ServerLease]:
        """Servers not stopped whose last heartbeat is at most ``stale_after_s`` old."""
        now_dt = datetime.fromisoformat(iso_time(now, "now").replace("Z", "+00:00"))
        since = iso_time(now_dt - timedelta(seconds=stale_after_s), "since")
        with self.db.read() as conn:
            rows = conn.execute("SELECT server_id, pid, host, started_at, beat_at, stopped_at FROM servers"
                                " WHERE stopped_at IS NULL AND beat_at >= ? ORDER BY started_at", (since,))
            return [ServerLease(**dict(row)) for row in rows]


def wait_for_unload(audit: AuditLog, voice: str, after_seq: int, server_ids: list[str], *,
                    timeout_s: float, poll_s: float = 0.05) -> dict[str, AuditRow | None]:
    """Wait (at most ``timeout_s``) until every server in ``server_ids`` has written its ``voice.unloaded`` row
    for ``voice`` after audit row ``after_seq``; returns each server's row, or None where none came in time."""
    found: dict[str, AuditRow | None] = dict.fromkeys(server_ids)
    deadline = time.monotonic() + timeout_s
    seq = after_seq
    while True:
        for row in audit.rows_after(seq, events=("voice.unloaded",)):
            seq = row.seq
            server = row.data.get("server")
            if row.voice == voice and server in found and found[server] is None:
                found[server] = row
        if all(found.values()) or time.monotonic() >= deadline:
            return found
        time.sleep(poll_s)
