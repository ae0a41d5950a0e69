"""The governance store of one data dir: keys, voices, grants, sessions, audit, erasure, behind one object.

    store = GovernanceStore.open(data_dir)
    store.on_revoke(lambda grant_id: ...)        # end live sessions under that grant
    grant = store.grants.check(voice, purpose, client_key_info)
    session = store.sessions.start(client, voice, purpose, token, builtin=False)
    store.poll()                                  # every ~0.2 s: revocations/expiries/erasures by other processes

Thread-safety and async use: every method is a short synchronous transaction on the calling thread's own
connection, safe from any thread. Reads (``grants.check``, ``poll``, queries, ``provenance``) never wait
for writers (WAL), so they may run on the event loop; writes (``sessions.start``/``end``, ``revoke``,
``create``...) may wait up to ``busy_timeout_ms`` for another process's write, so a server should call
them through ``asyncio.to_thread``. Hooks run in the thread that fired them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rtvc.governance.audit import CHECKPOINT_FILENAME, AuditLog
from rtvc.governance.db import DB_FILENAME, Database
from rtvc.governance.erasure import Eraser
from rtvc.governance.grants import GrantStore
from rtvc.governance.keys import KeyStore
from rtvc.governance.roles import KeyInfo, require_role
from rtvc.governance.servers import ServerLeases
from rtvc.governance.sessions import SessionLedger
from rtvc.governance.signing import KEY_FILENAME, AuditSigner
from rtvc.governance.validate import iso_time, now_iso
from rtvc.governance.verify import VerifyReport, verify_log
from rtvc.governance.voices import VoiceLedger

__all__ = ["GovernanceStore"]

_FEED = ("grant.revoked", "voice.erased")


class GovernanceStore:
    """Everything governance in ``data_dir``: ``keys``, ``voices``, ``grants``, ``sessions``, ``audit``, ``eraser``,
    ``servers`` (the leases of running servers).

    Parameters
    ----------
    busy_timeout_ms
        How long a write waits for another process's write before failing.
    checkpoint_every_rows, checkpoint_every_s
        Sign a checkpoint after this many audit rows or this long since the last one (checked at each append;
        call ``audit.checkpoint(force=False)`` on a timer to seal an idle tail).
    erase_roots
        Directories besides the data dir where erasure may delete derived files.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 5000,
        checkpoint_every_rows: int = 100,
        checkpoint_every_s: float = 60.0,
        erase_roots: list[str | os.PathLike[str]] = (),
    ) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(self.data_dir / DB_FILENAME, busy_timeout_ms=busy_timeout_ms)
        self.signer = AuditSigner.load_or_create(self.data_dir)
        self.audit = AuditLog(self.db, self.signer, checkpoint_file=self.data_dir / CHECKPOINT_FILENAME,
                              checkpoint_every_rows=checkpoint_every_rows, checkpoint_every_s=checkpoint_every_s)
        self.keys = KeyStore(self.db, self.audit)
        self.voices = VoiceLedger(self.db, self.audit)
        self.grants = GrantStore(self.db, self.audit, self.voices, self.data_dir / "consent-statements")
        self.sessions = SessionLedger(self.db, self.audit, self.grants)
        self.servers = ServerLeases(self.db)
        protected = [self.db.path, self.db.path.with_name(self.db.path.name + "-wal"),
                     self.db.path.with_name(self.db.path.name + "-shm"), self.data_dir / KEY_FILENAME,
                     self.data_dir / CHECKPOINT_FILENAME, self.grants.statements_dir]
        self.eraser = Eraser(self.db, self.audit, self.voices, self.grants,
                             allowed_roots=[self.data_dir, *erase_roots], protected=protected)
        self._feed_seq = self.audit.head()[0]  # events before opening were handled by whoever was running then
        self._expiry_mark = now_iso()
        self._data_version: tuple[int, int] | None = None  # (thread, version): versions are per connection

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], **settings: Any) -> GovernanceStore:
        return cls(data_dir, **settings)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> GovernanceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hooks -----------------------------------------------------------------------------------------

    def on_revoke(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """``callback(grant_id)`` when a grant is revoked (here at once, by another process at the next poll)."""
        return self.grants.on_revoke(callback)

    def on_expire(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """``callback(grant_id)`` when a grant's ``valid_until`` passes (noticed by :meth:`poll`)."""
        return self.grants.on_expire(callback)

    def on_erase(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """``callback(voice)`` after a voice is erased (here at once, by another process at the next poll):
        drop anything still loaded."""
        return self.eraser.erased.add(callback)

    def poll(self, now: Any = None) -> list[tuple[str, str]]:
        """Fire hooks for what changed since the last poll; returns the (event, subject) pairs it fired.

        Cheap when nothing changed (one PRAGMA). Run it every ~0.2 s so a revocation made by the CLI ends
        sessions well within 1 s.
        """
        fired: list[tuple[str, str]] = []
        version = (threading.get_ident(), self.db.data_version())
        if version != self._data_version:
            self._data_version = version
            while rows := self.audit.rows_after(self._feed_seq, events=_FEED):
                for row in rows:
                    self._feed_seq = row.seq
                    if row.event == "grant.revoked" and self.grants.revoked.fire(row.grant_id):
                        fired.append(("grant.revoked", row.grant_id))
                    elif (row.event == "voice.erased" and row.data.get("verified")
                          and self.eraser.erased.fire(row.voice, key=f"{row.voice}@{row.seq}")):
                        fired.append(("voice.erased", row.voice))
        now = iso_time(now, "now")
        if now > self._expiry_mark:
            for grant_id in self.grants.expired_between(self._expiry_mark, now):
                if self.grants.expired.fire(grant_id):
                    fired.append(("grant.expired", grant_id))
            self._expiry_mark = now
        return fired

    async def watch(self, *, interval_s: float = 0.2) -> None:
        """Poll forever on the running loop (cancel the task to stop)."""
        while True:
            self.poll()
            await asyncio.sleep(interval_s)

    # -- composite operations ----------------------------------------------------------------------------

    def revoke_grant(self, actor: KeyInfo, grant_id: str, *, reason: str | None = None,
                     erase_when_last: bool = True, paths: list[str | os.PathLike[str]] = ()) -> dict[str, Any]:
        """Revoke a grant; if the voice then has no live or pending grant, erase it (unless told not to).

        Returns ``{"grant": Grant, "erasure": ErasureReport | None}``.
        """
        grant = self.grants.revoke(actor, grant_id, reason=reason)
        erasure = None
        if erase_when_last and not self.voices.get(grant.voice).erased and self.grants.active_count(grant.voice) == 0:
            erasure = self.eraser.erase(actor, grant.voice, paths, reason="last grant revoked")
        return {"grant": grant, "erasure": erasure}

    def verify_audit(self, actor: KeyInfo, *, checkpoint_files: list[str | os.PathLike[str]] = (),
                     trusted_keys: set[str] | None = None) -> VerifyReport:
        """Check the whole audit log (auditors and admins). The checkpoint file in the data dir is always read."""
        actor = require_role(actor, "auditor", "admin", action="verify the audit log")
        files = [self.data_dir / CHECKPOINT_FILENAME, *map(Path, checkpoint_files)]
        return verify_log(self.db, trusted_keys=trusted_keys or {self.signer.public_hex}, checkpoint_files=files)
