"""The governance database: one SQLite file in WAL mode, shared by the server and the CLI.

Thread-safety: a :class:`Database` gives each thread its own connection, so any thread may call it and
a read on the event loop never queues behind a write another thread is waiting to start. Several
processes may open the same file: readers never block (WAL), writers queue on ``BEGIN IMMEDIATE`` for at
most ``busy_timeout_ms``. Writes that also append to the audit log take the write lock *before* reading
the chain head, so two writers (threads or processes) can never fork it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rtvc.governance.errors import StoreError
from rtvc.governance.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["DB_FILENAME", "Database"]

DB_FILENAME = "rtvc.sqlite3"


class Database:
    """A connection to the governance database; creates the file (mode 0600) and migrates it on open.

    Parameters
    ----------
    path
        The SQLite file.
    busy_timeout_ms
        How long a writer waits for another process's write transaction before :class:`StoreError`.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # create private before SQLite does (it copies the mode to -wal and -shm)
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._migrate()

    @property
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (made on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self.busy_timeout_ms / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")  # an audit row that was acknowledged survives power loss
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable SQLite database ({exc})") from None
        return conn

    def _migrate(self) -> None:
        with self.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}; this rtvc knows up to {SCHEMA_VERSION} (upgrade rtvc)"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on any exception.

        Nested use from the same thread joins the outer transaction.
        """
        conn = self._conn
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: could not start a write ({exc})") from None
        self._local.after_commit = []
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"{self.path}: commit failed ({exc})") from None
        for action in self._local.after_commit:
            action()

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run ``action`` once the current write transaction has committed (never if it rolls back)."""
        if not self._conn.in_transaction:
            raise RuntimeError("after_commit needs an open write transaction")
        self._local.after_commit.append(action)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot, never blocked by writers."""
        conn = self._conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def data_version(self) -> int:
        """Changes whenever another connection (thread or process) commits: a cheap "anything new?" probe."""
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        """Close every thread's connection; call when no thread uses the database any more."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
