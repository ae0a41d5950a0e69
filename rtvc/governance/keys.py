"""API keys: one role and a name each, stored as the sha256 of a 256-bit random secret.

A key reads ``rtvc_<12 hex id>_<43 url-safe chars>``: the id finds the row, the stored hash is compared in
constant time, the secret is shown once at creation.

:class:`KeyStore`: ``keys()``, ``count()``, ``verify()``, ``create()``, ``revoke()``; roles admin | owner |
client | auditor. ``create`` and ``revoke`` take ``actor=`` (default: the local operator, as in the CLI);
the HTTP API must pass the caller's key so the admin-only check applies.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from rtvc.governance.audit import AuditLog
from rtvc.governance.db import Database
from rtvc.governance.errors import NotFound, Unauthorized
from rtvc.governance.roles import LOCAL_ADMIN, ROLES, KeyInfo, require_role
from rtvc.governance.validate import check_choice, check_key_id, check_key_name, now_iso

__all__ = ["ROLES", "KeyInfo", "KeyStore", "hash_secret"]

_KEY = re.compile(r"rtvc_([0-9a-f]{12})_[A-Za-z0-9_-]{20,64}")
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
_COLUMNS = "key_id, name, role, created_at, revoked_at"


def hash_secret(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(row: sqlite3.Row) -> KeyInfo:
    return KeyInfo(id=row["key_id"], role=row["role"], name=row["name"], created_at=row["created_at"],
                   revoked_at=row["revoked_at"])


class KeyStore:
    """API keys in the governance database. Thread-safe; every call is one short transaction."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    @property
    def path(self) -> Path:
        return self.db.path

    # -- what the server and the CLI use ----------------------------------------------------------------

    def keys(self) -> list[KeyInfo]:
        """Every key, revoked ones included, oldest first."""
        with self.db.read() as conn:
            return [_info(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY created_at, key_id")]

    def count(self, role: str | None = None, *, active_only: bool = True) -> int:
        return sum(1 for k in self.keys() if (role is None or k.role == role) and (k.active or not active_only))

    def verify(self, key: Any) -> KeyInfo | None:
        """The record of an active key, or None for a missing, malformed, unknown or revoked one."""
        try:
            return self.authenticate(key)
        except Unauthorized:
            return None

    def create(self, role: str = "client", name: str | None = None, *, actor: KeyInfo = LOCAL_ADMIN) -> tuple[str, KeyInfo]:
        """Make a key; returns (the key, shown only now, its record). ``actor`` must be an admin."""
        actor = require_role(actor, "admin", action="create keys")
        role = check_choice(role, "role", ROLES)
        key_id = secrets.token_hex(6)
        name = check_key_name(name) if name is not None else f"{role}-{key_id}"
        key = f"rtvc_{key_id}_{secrets.token_urlsafe(32)}"
        info = KeyInfo(id=key_id, role=role, name=name, created_at=now_iso())
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO keys (key_id, name, role, secret_sha256, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, role, hash_secret(key), info.created_at, actor.id),
            )
            self.audit.append(conn, "key.created", actor=actor.id, client=key_id, data={"role": role})
        return key, info

    def revoke(self, key_id: str, *, actor: KeyInfo = LOCAL_ADMIN) -> bool:
        """Revoke by id; False if there is no such active key. ``actor`` must be an admin.

        Live sessions of the key are the server's to end (it holds them).
        """
        actor = require_role(actor, "admin", action="revoke keys")
        key_id = check_key_id(key_id)
        with self.db.write() as conn:
            row = conn.execute("SELECT role, revoked_at FROM keys WHERE key_id = ?", (key_id,)).fetchone()
            if row is None or row["revoked_at"] is not None:
                return False
            conn.execute("UPDATE keys SET revoked_at = ?, revoked_by = ? WHERE key_id = ?", (now_iso(), actor.id, key_id))
            self.audit.append(conn, "key.revoked", actor=actor.id, client=key_id, data={"role": row["role"]})
        return True

    # -- additions ----------------------------------------------------------------------------------------

    def authenticate(self, key: Any) -> KeyInfo:
        """Like :meth:`verify` but raises :class:`Unauthorized` saying why."""
        if not isinstance(key, str) or not key:
            raise Unauthorized("missing API key")
        key = key.strip()
        match = _KEY.fullmatch(key) if len(key) <= 128 else None
        row = None
        if match:
            with self.db.read() as conn:
                row = conn.execute(
                    f"SELECT {_COLUMNS}, secret_sha256 FROM keys WHERE key_id = ?", (match.group(1),)
                ).fetchone()
        same = hmac.compare_digest(row["secret_sha256"] if row else _DUMMY_HASH, hash_secret(key))
        if row is None or not same:
            raise Unauthorized("unknown or malformed API key")
        if row["revoked_at"] is not None:
            raise Unauthorized(f"API key {row['key_id']} was revoked at {row['revoked_at']}")
        return _info(row)

    def get(self, key_id: str) -> KeyInfo:
        key_id = check_key_id(key_id)
        with self.db.read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"no key {key_id}")
        return _info(row)

    def list(self, actor: KeyInfo, *, include_revoked: bool = False) -> list[KeyInfo]:
        """Keys as an admin sees them (live only unless ``include_revoked``)."""
        actor = require_role(actor, "admin", action="list keys")
        return [k for k in self.keys() if include_revoked or k.active]
