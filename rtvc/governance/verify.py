"""Checking the audit log: every edited, deleted, inserted, reordered or cut-off row, by number.

How rows are told apart: a row whose content still hashes to its stored hash is intact; one that hashes
correctly only under another number was moved (renumbered or reordered); one that matches under no
number was edited (if the next row still links to its stored hash) or inserted (if no row links to it).
An intact row whose successor links to a different hash was rewritten and re-hashed. Signed checkpoints
catch what the chain alone cannot: a chain re-hashed from some row on, and a cut-off tail.
Rows after the last checkpoint can be cut without trace; checkpoint often and copy the checkpoint file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtvc.governance.audit import _ROW_COLUMNS, GENESIS, AuditRow, Checkpoint, row_hash
from rtvc.governance.db import Database
from rtvc.governance.signing import verify_signature

__all__ = ["Problem", "VerifyReport", "verify_log"]

_MOVE_SEARCH = 3  # how far a renumbered row is looked for (rows inserted or deleted next to each other)


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    kind: str  # edited | deleted | inserted | reordered | renumbered | truncated | rewritten | checkpoint
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    rows: int
    last_seq: int
    checkpoints: int
    sealed_seq: int  # rows up to here are covered by a signed checkpoint
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_log(db: Database, *, trusted_keys: set[str], checkpoint_files: list[Path] = ()) -> VerifyReport:
    """Check the chain and the checkpoints of ``db`` against the public keys in ``trusted_keys`` (hex)."""
    with db.read() as conn:
        rows = [AuditRow.from_db(r) for r in conn.execute(f"SELECT {_ROW_COLUMNS} FROM audit ORDER BY seq")]
        stored = [Checkpoint(**dict(r)) for r in conn.execute("SELECT * FROM audit_checkpoints ORDER BY no")]
    problems: list[Problem] = []
    origin, copies = _origins(rows)
    hash_at = _classify(rows, origin, copies, problems)
    sealed = _check_checkpoints(stored, _read_files(checkpoint_files, problems), hash_at, trusted_keys, problems)
    problems.sort(key=lambda p: (p.seq, p.kind))
    return VerifyReport(len(rows), rows[-1].seq if rows else 0, len(stored), sealed, problems)


def _origins(rows: list[AuditRow]) -> tuple[list[int | None], dict[int, int]]:
    """For each row, the number under which its content hashes to its stored hash (None: no number fits),
    and the rows that copy another row's number ({index: number}; the copy nothing links to is the fake)."""
    origin: list[int | None] = [row.seq if row_hash(row.body()) == row.hash else None for row in rows]
    failing = [i for i, o in enumerate(origin) if o is None]
    others = {rows[i].seq for i in failing} if len(failing) <= 64 else set()
    for i in failing:
        seq = rows[i].seq
        candidates = {seq + d for d in range(-_MOVE_SEARCH, _MOVE_SEARCH + 1) if d and seq + d > 0} | others - {seq}
        for candidate in sorted(candidates, key=lambda c: abs(c - seq)):
            if row_hash(rows[i].body(candidate)) == rows[i].hash:
                origin[i] = candidate
                break
    linked = {row.prev_hash for row in rows}
    claims: dict[int, list[int]] = {}
    for i, o in enumerate(origin):
        if o is not None:
            claims.setdefault(o, []).append(i)
    copies = {}
    for o, holders in claims.items():
        if len(holders) > 1:
            genuine = next((i for i in holders if rows[i].hash in linked), holders[0])
            for i in holders:
                if i != genuine:
                    origin[i] = None
                    copies[i] = o
    return origin, copies


def _classify(rows: list[AuditRow], origin: list[int | None], copies: dict[int, int],
              problems: list[Problem]) -> dict[int, str]:
    """Walk the rows in order, report problems; returns {original number: stored hash} of chain rows."""
    linked = {row.prev_hash for row in rows}
    present = {o for o in origin if o is not None}
    hash_at: dict[int, str] = {}
    expected = 1
    moved: list[tuple[int, int]] = []
    reported_moves: set[int] = set()
    for i, row in enumerate(rows):
        o = origin[i]
        if i in copies:
            problems.append(Problem(row.seq, "inserted", f"row {row.seq} ({row.event}) is a second entry "
                                                         f"{copies[i]} that nothing links to: inserted"))
            continue
        if o is None:
            last = i == len(rows) - 1
            if row.hash in linked or last:
                tail = " (or forged at the end)" if last and row.hash not in linked else ""
                problems.append(Problem(row.seq, "edited", f"row {row.seq} ({row.event}) no longer matches its hash: "
                                                           f"edited{tail}"))
                o = row.seq
            else:
                problems.append(Problem(row.seq, "inserted", f"row {row.seq} ({row.event}) is not part of the chain: "
                                                             "inserted"))
                continue
        elif o != row.seq:
            moved.append((row.seq, o))
        if o > expected:
            gap = [n for n in range(expected, o) if n not in present]
            if gap:
                span = f"rows {gap[0]}..{gap[-1]} are" if len(gap) > 1 else f"row {gap[0]} is"
                problems.append(Problem(gap[0], "deleted", f"{span} missing: deleted"))
            if len(gap) < o - expected:
                problems.append(Problem(row.seq, "reordered", f"row {row.seq} holds entry {o}: rows were reordered"))
                reported_moves.add(row.seq)
        elif o < expected:
            problems.append(Problem(row.seq, "reordered", f"row {row.seq} holds entry {o}: rows were reordered"))
            reported_moves.add(row.seq)
        hash_at[o] = row.hash
        expected = max(expected, o + 1)
    for i, row in enumerate(rows):  # links, now that every original number is known
        o = origin[i] if origin[i] is not None else row.seq
        if hash_at.get(o) != row.hash:
            continue
        previous = GENESIS if o == 1 else hash_at.get(o - 1)
        if previous is not None and row.prev_hash != previous and origin[i] is not None:
            problems.append(Problem(o - 1, "rewritten", f"row {o - 1} was rewritten and re-hashed: row {row.seq} "
                                                        "links to a different hash"))
    _report_renumbering([m for m in moved if m[0] not in reported_moves], problems)
    return hash_at


def _report_renumbering(moved: list[tuple[int, int]], problems: list[Problem]) -> None:
    """One problem per run of rows shifted by the same amount (the trace of a hidden insert or delete)."""
    start = None
    for k, (seq, o) in enumerate(moved):
        if start is None:
            start = k
        nxt = moved[k + 1] if k + 1 < len(moved) else None
        if nxt is None or nxt[0] != seq + 1 or nxt[1] - nxt[0] != o - seq:
            first, last = moved[start], moved[k]
            problems.append(Problem(first[0], "renumbered", f"rows {first[0]}..{last[0]} were renumbered "
                                                            f"(they were {first[1]}..{last[1]})"))
            start = None


def _read_files(paths: list[Path], problems: list[Problem]) -> list[tuple[Path, Checkpoint]]:
    found = []
    for path in paths:
        if not os.path.exists(path):
            continue
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                found.append((Path(path), Checkpoint(**json.loads(line))))
            except (ValueError, TypeError):
                problems.append(Problem(0, "checkpoint", f"{path}:{number} is not a checkpoint line"))
    return found


def _check_checkpoints(stored: list[Checkpoint], copies: list[tuple[Path, Checkpoint]], hash_at: dict[int, str],
                       trusted: set[str], problems: list[Problem]) -> int:
    """Verify signatures, numbering, copies and the rows each checkpoint signed; returns the sealed seq."""
    by_no = {cp.no: cp for cp in stored}
    for path, copy in copies:
        if by_no.get(copy.no) is None:
            by_no[copy.no] = copy
            problems.append(Problem(copy.seq, "checkpoint", f"checkpoint {copy.no} (row {copy.seq}) from {path} is "
                                                            "missing from the database: deleted"))
        elif by_no[copy.no] != copy:
            problems.append(Problem(copy.seq, "checkpoint", f"checkpoint {copy.no} differs between {path} and the "
                                                            "database"))
    last_row = max(hash_at, default=0)
    sealed, previous_seq = 0, 0
    for no in range(1, max(by_no, default=0) + 1):
        cp = by_no.get(no)
        if cp is None:
            problems.append(Problem(previous_seq + 1, "checkpoint", f"checkpoint {no} is missing: deleted"))
            continue
        if cp.public_key not in trusted or not verify_signature(cp.public_key, cp.message(), cp.signature):
            problems.append(Problem(cp.seq, "checkpoint", f"checkpoint {no} has no valid signature by the server key"))
            continue
        if cp.seq > last_row:
            problems.append(Problem(last_row + 1, "truncated", f"rows {last_row + 1}..{cp.seq} are gone: checkpoint "
                                                               f"{no} signed row {cp.seq} (tail cut off)"))
        elif cp.seq in hash_at and hash_at[cp.seq] != cp.hash:
            problems.append(Problem(previous_seq + 1, "rewritten", f"rows {previous_seq + 1}..{cp.seq} were rewritten: "
                                                                   f"row {cp.seq} differs from signed checkpoint {no}"))
        sealed = max(sealed, cp.seq)
        previous_seq = cp.seq
    return sealed
