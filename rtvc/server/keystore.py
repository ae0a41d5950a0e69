"""API keys: created once, shown once, stored hashed in the data directory.

A key reads ``rtvc_<id>_<secret>``: the id finds the record without scanning,
the secret (256 bits) is checked against its SHA-256 in constant time. A fast
hash is enough for random high-entropy secrets (nothing to brute-force), and
keeps verification cheap on every request.

Storage is one JSON file (``keys.json``, mode 0600) of records with room to
grow (``role`` today; consent grants and scopes later, when it moves to SQLite).
Writes go through a lock file and an atomic rename, so the CLI can create keys
while a server runs; the server re-reads the file when it changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rtvc.errors import ConfigError, RtvcError

__all__ = ["ROLES", "KeyInfo", "KeyStore", "KeyStoreError"]

ROLES = ("client", "admin")
FILE_NAME = "keys.json"
_FORMAT_VERSION = 1
_PREFIX = "rtvc_"


class KeyStoreError(RtvcError, ValueError):
    code = "bad_request"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key's public record (never the secret)."""

    id: str
    role: str
    name: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """The key file of one data directory."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir).expanduser() / FILE_NAME
        self._records: dict[str, dict] = {}
        self._stamp: tuple[int, int] | None = None

    # -- reading --------------------------------------------------------------------------------------

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        self._records = self._read()
        self._stamp = stamp

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"key store {self.path} is unreadable: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION or not isinstance(data.get("keys"), list):
            raise ConfigError(f"key store {self.path} has an unknown format (expected version {_FORMAT_VERSION})")
        return {record["id"]: record for record in data["keys"]}

    def keys(self) -> list[KeyInfo]:
        self._reload()
        return [_info(record) for record in self._records.values()]

    def count(self, role: str | None = None, *, active_only: bool = True) -> int:
        return sum(1 for k in self.keys() if (role is None or k.role == role) and (k.active or not active_only))

    def verify(self, key: str | None) -> KeyInfo | None:
        """The record of an active key, or None for a missing, malformed, unknown or revoked one."""
        if not key or not key.startswith(_PREFIX):
            return None
        key_id, sep, secret = key[len(_PREFIX) :].partition("_")
        if not sep or not secret:
            return None
        self._reload()
        record = self._records.get(key_id)
        if record is None or not hmac.compare_digest(record["sha256"], _hash(key)):
            return None
        info = _info(record)
        return info if info.active else None

    # -- writing --------------------------------------------------------------------------------------

    def create(self, role: str = "client", name: str | None = None) -> tuple[str, KeyInfo]:
        """Make a key; returns (the key, shown only now, its record)."""
        if role not in ROLES:
            raise KeyStoreError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        key_id = secrets.token_hex(6)
        key = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = {"id": key_id, "role": role, "name": name or f"{role}-{key_id}", "created_at": _now(),
                  "revoked_at": None, "sha256": _hash(key)}
        with self._locked() as records:
            records[key_id] = record
        return key, _info(record)

    def revoke(self, key_id: str) -> bool:
        """Revoke by id; False if there is no such active key."""
        with self._locked() as records:
            record = records.get(key_id)
            if record is None or record.get("revoked_at"):
                return False
            record["revoked_at"] = _now()
        return True

    def _locked(self) -> _Transaction:
        return _Transaction(self)

    def _write(self, records: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": _FORMAT_VERSION, "keys": list(records.values())}
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None


class _Transaction:
    """Read-modify-write of the key file under an exclusive lock (CLI and server may both write)."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self._fd = -1

    def __enter__(self) -> dict[str, dict]:
        self.store.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.store.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.records = self.store._read()
        return self.records

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.store._write(self.records)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)


def _info(record: dict) -> KeyInfo:
    return KeyInfo(id=record["id"], role=record["role"], name=record["name"], created_at=record["created_at"],
                   revoked_at=record.get("revoked_at"))
