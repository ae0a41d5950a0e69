"""The governance schema as versioned migrations, applied in order and recorded in ``PRAGMA user_version``.

Never edit a released migration: append a new one. Each migration is a list of single statements
(``executescript`` would commit half-way, so statements run one by one inside one transaction).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_ROLES = "'admin', 'owner', 'client', 'auditor'"

_V1 = [
    f"""CREATE TABLE keys (
        key_id        TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ({_ROLES})),
        secret_sha256 TEXT NOT NULL UNIQUE,
        created_at    TEXT NOT NULL,
        created_by    TEXT NOT NULL,
        revoked_at    TEXT,
        revoked_by    TEXT
    )""",
    "CREATE INDEX keys_name ON keys (name)",
    """CREATE TABLE voices (
        name          TEXT PRIMARY KEY,
        owner         TEXT NOT NULL REFERENCES keys (key_id),
        model_sha256  TEXT,
        imported_at   TEXT NOT NULL,
        imported_by   TEXT NOT NULL,
        erased_at     TEXT
    )""",
    """CREATE TABLE grants (
        grant_id         TEXT PRIMARY KEY,
        voice            TEXT NOT NULL REFERENCES voices (name),
        owner            TEXT NOT NULL REFERENCES keys (key_id),
        statement        TEXT NOT NULL,
        statement_sha256 TEXT NOT NULL,
        audio_sha256     TEXT,
        audio_path       TEXT,
        purposes         TEXT NOT NULL,
        clients_any      INTEGER NOT NULL CHECK (clients_any IN (0, 1)),
        client_keys      TEXT NOT NULL,
        client_names     TEXT NOT NULL,
        valid_from       TEXT NOT NULL,
        valid_until      TEXT,
        created_at       TEXT NOT NULL,
        created_by       TEXT NOT NULL,
        revoked_at       TEXT,
        revoked_by       TEXT,
        revoke_reason    TEXT
    )""",
    "CREATE INDEX grants_voice ON grants (voice)",
    """CREATE TABLE sessions (
        session_id   TEXT PRIMARY KEY,
        client       TEXT NOT NULL,
        voice        TEXT NOT NULL,
        grant_id     TEXT,
        purpose      TEXT NOT NULL,
        token        TEXT NOT NULL,
        transport    TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        converted_ms INTEGER,
        end_reason   TEXT
    )""",
    "CREATE UNIQUE INDEX sessions_token ON sessions (token)",
    "CREATE INDEX sessions_live_grant ON sessions (grant_id) WHERE ended_at IS NULL",
    """CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,
        ts         TEXT NOT NULL,
        event      TEXT NOT NULL,
        actor      TEXT NOT NULL,
        voice      TEXT,
        grant_id   TEXT,
        client     TEXT,
        session_id TEXT,
        data       TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
    )""",
    "CREATE INDEX audit_voice ON audit (voice, seq)",
    "CREATE INDEX audit_grant ON audit (grant_id, seq)",
    "CREATE INDEX audit_client ON audit (client, seq)",
    "CREATE INDEX audit_ts ON audit (ts)",
    """CREATE TABLE audit_checkpoints (
        no         INTEGER PRIMARY KEY,
        seq        INTEGER NOT NULL,
        hash       TEXT NOT NULL,
        ts         TEXT NOT NULL,
        public_key TEXT NOT NULL,
        signature  TEXT NOT NULL
    )""",
    # Append-only in the database itself: the application can never rewrite history by accident.
    # (Someone with the file can drop these triggers; the hash chain and signed checkpoints catch that.)
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END""",
    """CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END""",
]

# Running servers announce themselves here, so another process (``rtvc voices erase``) can tell whether some
# server holds a voice in memory and must confirm its unload. Not audited: liveness, not history.
_V2 = [
    """CREATE TABLE servers (
        server_id   TEXT PRIMARY KEY,
        pid         INTEGER NOT NULL,
        host        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        beat_at     TEXT NOT NULL,
        stopped_at  TEXT
    )""",
]

MIGRATIONS: list[list[str]] = [_V1, _V2]
SCHEMA_VERSION = len(MIGRATIONS)
