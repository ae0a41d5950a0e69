"""Consent grants: which voice may be used, for what, by whom, when, under which statement.

A grant belongs to one voice and its owner. It records the consent statement (text, and optionally the
owner's recorded statement as audio, kept beside the database with its sha256), the purposes from
:data:`PURPOSES`, the clients allowed (any, or key ids and/or key names), ``valid_from`` /
``valid_until`` and its creation and revocation. :meth:`GrantStore.check` answers "may this client use
this voice for this purpose now?" with the live grant or a specific :class:`ConsentError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rtvc.governance.audit import AuditLog
from rtvc.governance.db import Database
from rtvc.governance.errors import (
    ClientNotAllowed,
    ConsentError,
    GrantExpired,
    GrantRevoked,
    InvalidInput,
    NoConsent,
    NotFound,
    PurposeNotAllowed,
    StoreError,
)
from rtvc.governance.hooks import Hooks
from rtvc.governance.roles import KeyInfo, as_key_info, require_role
from rtvc.governance.statements import MAX_STATEMENT_AUDIO_BYTES, read_statement_audio, store_statement_audio
from rtvc.governance.validate import (
    MAX_REASON_CHARS,
    MAX_STATEMENT_CHARS,
    PURPOSES,
    check_id,
    check_key_name,
    check_name,
    check_purpose,
    check_purposes,
    check_text,
    iso_time,
    now_iso,
)
from rtvc.governance.voices import VoiceLedger

__all__ = ["PURPOSES", "Grant", "GrantStore"]

MAX_CLIENTS = 100
_COLUMNS = (
    "grant_id, voice, owner, statement, statement_sha256, audio_sha256, purposes, clients_any, client_keys,"
    " client_names, valid_from, valid_until, created_at, created_by, revoked_at, revoked_by, revoke_reason"
)


@dataclass(frozen=True, slots=True)
class Grant:
    grant_id: str
    voice: str
    owner: str
    statement: str
    statement_sha256: str
    audio_sha256: str | None
    purposes: tuple[str, ...]
    clients_any: bool
    client_keys: tuple[str, ...]
    client_names: tuple[str, ...]
    valid_from: str
    valid_until: str | None
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None

    def status(self, now: Any = None) -> str:
        """``revoked``, ``pending`` (not valid yet), ``expired`` or ``live`` at ``now``."""
        now = iso_time(now)
        if self.revoked_at is not None:
            return "revoked"
        if now < self.valid_from:
            return "pending"
        if self.valid_until is not None and now >= self.valid_until:
            return "expired"
        return "live"

    def allows_client(self, client: KeyInfo) -> bool:
        return self.clients_any or client.id in self.client_keys or client.name in self.client_names

    def to_json(self, *, statement: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not statement:
            del data["statement"]
        return data

    @classmethod
    def from_db(cls, row: sqlite3.Row) -> Grant:
        values = dict(row)
        for field in ("purposes", "client_keys", "client_names"):
            values[field] = tuple(json.loads(values[field]))
        values["clients_any"] = bool(values["clients_any"])
        return cls(**values)


class GrantStore:
    """Create, revoke, list and check grants. Thread-safe; each call is one short transaction.

    ``on_revoke(callback)`` registers ``callback(grant_id)``, run right after a revocation commits in
    this process, and by :meth:`GovernanceStore.poll` for revocations made by other processes.
    """

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        voices: VoiceLedger,
        statements_dir: str | os.PathLike[str],
        *,
        max_statement_audio_bytes: int = MAX_STATEMENT_AUDIO_BYTES,
    ) -> None:
        self.db = db
        self.audit = audit
        self.voices = voices
        self.statements_dir = Path(statements_dir)
        self.max_statement_audio_bytes = int(max_statement_audio_bytes)
        self.revoked = Hooks("grant revoked")
        self.expired = Hooks("grant expired")

    def on_revoke(self, callback: Callable[[str], object]) -> Callable[[], None]:
        return self.revoked.add(callback)

    def on_expire(self, callback: Callable[[str], object]) -> Callable[[], None]:
        return self.expired.add(callback)

    # -- writing ---------------------------------------------------------------------------------------

    def create(
        self,
        actor: KeyInfo,
        voice: str,
        *,
        statement: str,
        purposes: Iterable[str],
        clients: str | Iterable[str] = "any",
        valid_from: Any = None,
        valid_until: Any = None,
        statement_audio: bytes | str | os.PathLike[str] | None = None,
    ) -> Grant:
        """Record the owner's consent. Only the voice's owner or an admin may grant.

        ``clients``: ``"any"`` or key ids / key names (a name covers every key carrying it, so keys can
        be rotated). ``statement_audio``: the owner's spoken statement as audio bytes or a file path.
        Every argument is checked before anything is written.
        """
        record = self.voices.get(voice)
        actor = self.voices.require_owner_or_admin(actor, record, "grant consent")
        if record.erased:
            raise InvalidInput(f"voice {voice!r} was erased; import it again before granting")
        statement = check_text(statement, "statement", max_chars=MAX_STATEMENT_CHARS)
        purposes = check_purposes(purposes)
        clients_any, client_keys, client_names = self._clients(clients)
        start = iso_time(valid_from, "valid_from")
        until = iso_time(valid_until, "valid_until") if valid_until is not None else None
        if until is not None and (until <= start or until <= now_iso()):
            raise InvalidInput(f"valid_until ({until}) must be after valid_from ({start}) and in the future")
        audio = None
        if statement_audio is not None:
            audio = read_statement_audio(statement_audio, max_bytes=self.max_statement_audio_bytes)

        grant_id = "g_" + secrets.token_hex(8)
        audio_sha256 = hashlib.sha256(audio[0]).hexdigest() if audio else None
        audio_path = store_statement_audio(self.statements_dir, grant_id, *audio) if audio else None
        grant = Grant(
            grant_id, record.name, record.owner, statement, hashlib.sha256(statement.encode()).hexdigest(),
            audio_sha256, tuple(purposes), clients_any, client_keys, client_names, start, until, now_iso(),
            actor.id, None, None, None,
        )
        try:
            with self.db.write() as conn:
                if conn.execute("SELECT erased_at FROM voices WHERE name = ?", (grant.voice,)).fetchone()[0]:
                    raise InvalidInput(f"voice {voice!r} was erased; import it again before granting")
                conn.execute(
                    f"INSERT INTO grants ({_COLUMNS}, audio_path) VALUES ({', '.join('?' * 18)})",
                    (grant.grant_id, grant.voice, grant.owner, grant.statement, grant.statement_sha256,
                     grant.audio_sha256, json.dumps(purposes), int(clients_any), json.dumps(client_keys),
                     json.dumps(client_names), start, until, grant.created_at, actor.id, None, None, None,
                     str(audio_path) if audio_path else None),
                )
                self.audit.append(conn, "grant.created", actor=actor.id, voice=grant.voice, grant_id=grant_id, data={
                    "owner": grant.owner, "purposes": purposes, "clients_any": clients_any,
                    "client_keys": list(client_keys), "client_names": list(client_names), "valid_from": start,
                    "valid_until": until, "statement_sha256": grant.statement_sha256, "audio_sha256": audio_sha256,
                })
        except BaseException:
            if audio_path is not None:
                audio_path.unlink(missing_ok=True)
            raise
        return grant

    def revoke(self, actor: KeyInfo, grant_id: str, *, reason: str | None = None) -> Grant:
        """Withdraw a grant (its voice's owner or an admin); idempotent. Fires ``on_revoke`` after commit."""
        grant_id = check_id(grant_id, "grant")
        reason = check_text(reason, "reason", max_chars=MAX_REASON_CHARS, required=False)
        grant = self._get(grant_id)
        actor = self.voices.require_owner_or_admin(actor, self.voices.get(grant.voice), "revoke its grants")
        if grant.revoked_at is not None:
            return grant
        revoked_at = now_iso()
        with self.db.write() as conn:
            changed = conn.execute(
                "UPDATE grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE grant_id = ? AND revoked_at IS NULL",
                (revoked_at, actor.id, reason, grant_id),
            ).rowcount
            if changed:
                self.audit.append(conn, "grant.revoked", actor=actor.id, voice=grant.voice, grant_id=grant_id)
        if changed:
            self.revoked.fire(grant_id)
        return self._get(grant_id)

    # -- reading ---------------------------------------------------------------------------------------

    def get(self, actor: KeyInfo, grant_id: str) -> Grant:
        """One grant: admins and auditors see any, owners their own voices' grants."""
        actor = require_role(actor, "admin", "auditor", "owner", action="read grants")
        grant = self._get(check_id(grant_id, "grant"))
        if actor.role == "owner" and grant.owner != actor.id:
            raise NotFound(f"no grant {grant_id} among your voices' grants")
        return grant

    def list(self, actor: KeyInfo, *, voice: str | None = None, status: str | None = None, now: Any = None) -> list[Grant]:
        """Grants oldest first, optionally of one voice and/or in one status (live, pending, expired, revoked)."""
        actor = require_role(actor, "admin", "auditor", "owner", action="list grants")
        sql, args = f"SELECT {_COLUMNS} FROM grants WHERE 1", []
        if voice is not None:
            sql += " AND voice = ?"
            args.append(check_name(voice, "voice"))
        if actor.role == "owner":
            sql += " AND owner = ?"
            args.append(actor.id)
        if status is not None and status not in ("live", "pending", "expired", "revoked"):
            raise InvalidInput(f"status must be live, pending, expired or revoked, got {str(status)[:20]!r}")
        now = iso_time(now, "now")
        with self.db.read() as conn:
            grants = [Grant.from_db(row) for row in conn.execute(sql + " ORDER BY created_at, grant_id", args)]
        return [g for g in grants if status is None or g.status(now) == status]

    def check(self, voice: str, purpose: str, client: KeyInfo, now: Any = None) -> Grant:
        """The live grant covering ``voice`` for ``purpose`` and ``client`` at ``now``.

        Raises a :class:`ConsentError`. If some grant covers this purpose and this client, the newest such
        grant that was not revoked (else the newest) says why it does not hold now: ``grant_revoked``,
        ``grant_expired``, or ``no_consent`` if not valid yet. Otherwise the grant that came closest decides:
        ``grant_revoked`` < ``grant_expired`` < ``purpose_not_allowed`` < ``client_not_allowed``;
        ``no_consent`` when the voice has no grant (or no owner) at all.
        """
        with self.db.read() as conn:
            return self.check_in(conn, voice, purpose, client, now)

    def check_in(self, conn: sqlite3.Connection, voice: str, purpose: str, client: KeyInfo, now: Any = None) -> Grant:
        """:meth:`check` inside the caller's transaction (sessions start under the same write lock)."""
        voice = check_name(voice, "voice")
        purpose = check_purpose(purpose)
        client = as_key_info(client)
        if client is None:
            raise InvalidInput("client must be a key record (id, role, name)")
        now = iso_time(now, "now")
        owned = conn.execute("SELECT erased_at FROM voices WHERE name = ?", (voice,)).fetchone()
        if owned is None:
            raise NoConsent(f"voice {voice!r} has no owner on record and no grant", voice=voice)
        if owned["erased_at"] is not None:
            raise NoConsent(f"voice {voice!r} was erased at {owned['erased_at']}", voice=voice)
        grants = [Grant.from_db(row) for row in conn.execute(
            f"SELECT {_COLUMNS} FROM grants WHERE voice = ? ORDER BY created_at DESC", (voice,))]
        if not grants:
            raise NoConsent(f"voice {voice!r} has no consent grant", voice=voice)
        live = [g for g in grants if _depth(g, purpose, client, now) == 4]
        if live:  # the one that lasts longest, so a session outlives the fewest expiries
            return max(live, key=lambda g: g.valid_until or "~")
        covering = [g for g in grants if purpose in g.purposes and g.allows_client(client)]
        if covering:  # consent for exactly this use was given: the refusal says what became of it
            closest = max(covering, key=lambda g: g.revoked_at is None)  # ties: newest (list is newest first)
        else:
            closest = max(grants, key=lambda g: _depth(g, purpose, client, now))
        raise _refusal(closest, purpose, client, now)

    def active_count(self, voice: str, now: Any = None) -> int:
        """Grants of ``voice`` that are live or pending: when this reaches 0 the voice has lost its consent."""
        now = iso_time(now, "now")
        with self.db.read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM grants WHERE voice = ? AND revoked_at IS NULL",
                                (check_name(voice, "voice"),))
            return sum(1 for row in rows if Grant.from_db(row).status(now) in ("live", "pending"))

    def expired_between(self, after: Any, upto: Any) -> list[str]:
        """Ids of unrevoked grants whose ``valid_until`` falls in (after, upto]: expiries to act on."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT grant_id FROM grants WHERE revoked_at IS NULL AND valid_until > ? AND valid_until <= ?",
                (iso_time(after, "after"), iso_time(upto, "upto")),
            )
            return [row[0] for row in rows]

    def statement_audio(self, actor: KeyInfo, grant_id: str) -> tuple[bytes, str, str]:
        """The owner's recorded statement of a grant: (bytes, file suffix, sha256), checked against the sha256
        recorded at grant time. NotFound if the grant has none, or it went with the voice's erasure."""
        grant = self.get(actor, grant_id)  # role check: admins, auditors, the voice's owner
        with self.db.read() as conn:
            path = conn.execute("SELECT audio_path FROM grants WHERE grant_id = ?", (grant.grant_id,)).fetchone()[0]
        if grant.audio_sha256 is None or path is None:
            raise NotFound(f"grant {grant.grant_id} has no recorded statement"
                           + (" (erased with the voice; its sha256 remains)" if grant.audio_sha256 else ""))
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise StoreError(f"the recorded statement of grant {grant.grant_id} is unreadable: {exc}") from None
        if hashlib.sha256(data).hexdigest() != grant.audio_sha256:
            raise StoreError(f"the recorded statement of grant {grant.grant_id} no longer matches its sha256")
        return data, Path(path).suffix, grant.audio_sha256

    def statement_audio_paths(self, voice: str) -> list[Path]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT audio_path FROM grants WHERE voice = ? AND audio_path IS NOT NULL", (voice,))
            return [Path(row[0]) for row in rows]

    # -- helpers ---------------------------------------------------------------------------------------

    def _get(self, grant_id: str) -> Grant:
        with self.db.read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM grants WHERE grant_id = ?", (grant_id,)).fetchone()
        if row is None:
            raise NotFound(f"no grant {grant_id}")
        return Grant.from_db(row)

    def _clients(self, clients: Any) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
        if clients == "any":
            return True, (), ()
        if isinstance(clients, str) or not isinstance(clients, Iterable):
            raise InvalidInput("clients must be 'any' or a list of key ids / key names")
        clients = list(clients)
        if not 1 <= len(clients) <= MAX_CLIENTS:
            raise InvalidInput(f"clients must list 1..{MAX_CLIENTS} key ids or names (or be 'any')")
        keys, names = [], []
        with self.db.read() as conn:
            for entry in clients:
                entry = check_key_name(entry, "client")
                known = conn.execute("SELECT 1 FROM keys WHERE key_id = ?", (entry,)).fetchone()
                (keys if known else names).append(entry)
        return False, tuple(sorted(set(keys))), tuple(sorted(set(names)))


def _depth(grant: Grant, purpose: str, client: KeyInfo, now: str) -> int:
    """How many checks the grant passes in order: not revoked, in time, purpose, client (4 = live)."""
    checks = (
        grant.revoked_at is None,
        grant.status(now) == "live",
        purpose in grant.purposes,
        grant.allows_client(client),
    )
    depth = 0
    for passed in checks:
        if not passed:
            break
        depth += 1
    return depth


def _refusal(grant: Grant, purpose: str, client: KeyInfo, now: str) -> ConsentError:
    depth = _depth(grant, purpose, client, now)
    where = {"voice": grant.voice, "grant_id": grant.grant_id}
    if depth == 0:
        return GrantRevoked(f"grant {grant.grant_id} for voice {grant.voice!r} was revoked at {grant.revoked_at}", **where)
    if depth == 1:
        if grant.status(now) == "pending":
            return NoConsent(f"grant {grant.grant_id} for voice {grant.voice!r} is valid only from {grant.valid_from}",
                             **where)
        return GrantExpired(f"grant {grant.grant_id} for voice {grant.voice!r} expired at {grant.valid_until}", **where)
    if depth == 2:
        return PurposeNotAllowed(
            f"voice {grant.voice!r} may not be used for {purpose!r}; grant {grant.grant_id} allows "
            f"{', '.join(grant.purposes)}", **where)
    return ClientNotAllowed(f"client {client.name!r} ({client.id}) is not allowed by grant {grant.grant_id} "
                            f"for voice {grant.voice!r}", **where)
