"""Tampering with the database file is found by verify, at the right row."""

from __future__ import annotations

import json

import pytest

from rtvc.governance import LOCAL_ADMIN
from rtvc.governance.audit import AuditRow, canonical_json, row_hash

from .conftest import raw


@pytest.fixture
def log(store, people, voice):
    """About 20 rows, checkpointed at row 1 and every 5 rows."""
    store.grants.create(people.owner, voice, statement="yes", purposes=["research"], clients="any")
    for token in range(1, 7):
        record = store.sessions.start(people.client, voice, "research", token)
        store.sessions.end(record.session_id, converted_s=1.0, reason="client")
    assert store.verify_audit(LOCAL_ADMIN).ok
    return store


def tamper(store, *statements, args=()):
    conn = raw(store)
    for trigger in ("audit_no_update", "audit_no_delete", "checkpoints_no_update", "checkpoints_no_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in statements:
        conn.execute(statement, args) if args else conn.execute(statement)
    conn.close()


def row(store, seq) -> AuditRow:
    with store.db.read() as conn:
        return AuditRow.from_db(conn.execute("SELECT * FROM audit WHERE seq = ?", (seq,)).fetchone())


def first_problem(store):
    report = store.verify_audit(LOCAL_ADMIN)
    assert not report.ok
    return report.first, report


def test_intact_log_verifies(log):
    report = log.verify_audit(LOCAL_ADMIN)
    assert report.ok and report.rows == report.last_seq >= 20 and report.sealed_seq >= 15


def test_edited_row_is_found(log):
    tamper(log, "UPDATE audit SET data = '{\"role\":\"admin\"}' WHERE seq = 4")
    problem, report = first_problem(log)
    assert (problem.seq, problem.kind) == (4, "edited")
    assert len(report.problems) == 1


def test_edited_and_rehashed_row_is_found(log):
    original = row(log, 9)
    forged = AuditRow(**{**original.to_json(), "actor": "ffffffffffff"})
    digest = row_hash(forged.body())
    tamper(log, f"UPDATE audit SET actor = 'ffffffffffff', hash = '{digest}' WHERE seq = 9")
    problem, _ = first_problem(log)
    assert (problem.seq, problem.kind) == (9, "rewritten")


def test_deleted_row_is_found(log):
    tamper(log, "DELETE FROM audit WHERE seq = 12")
    problem, _ = first_problem(log)
    assert (problem.seq, problem.kind) == (12, "deleted")


def test_deleted_row_hidden_by_renumbering_is_found(log):
    tamper(log, "DELETE FROM audit WHERE seq = 12", "UPDATE audit SET seq = seq - 1 WHERE seq > 12")
    problem, report = first_problem(log)
    assert (problem.seq, problem.kind) == (12, "deleted")
    assert any(p.kind == "renumbered" and p.seq == 12 for p in report.problems)


def test_inserted_row_with_a_valid_hash_is_found(log):
    before = row(log, 6)
    forged = AuditRow(7, before.ts, "session.started", "local", "alice", None, "000000000000", "s_forged",
                      {"purpose": "research"}, before.hash, "")
    digest = row_hash(forged.body())
    tamper(log, "UPDATE audit SET seq = seq + 1000 WHERE seq >= 7", "UPDATE audit SET seq = seq - 999 WHERE seq >= 1007")
    tamper(log, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           args=(7, forged.ts, forged.event, forged.actor, forged.voice, None, forged.client, forged.session_id,
                 canonical_json(forged.data).decode(), forged.prev_hash, digest))
    problem, _ = first_problem(log)
    assert (problem.seq, problem.kind) == (7, "inserted")


def test_reordered_rows_are_found(log):
    tamper(log, "UPDATE audit SET seq = -1 WHERE seq = 10", "UPDATE audit SET seq = 10 WHERE seq = 11",
           "UPDATE audit SET seq = 11 WHERE seq = -1")
    problem, report = first_problem(log)
    assert (problem.seq, problem.kind) == (10, "reordered")
    assert [(p.seq, p.kind) for p in report.problems] == [(10, "reordered"), (11, "reordered")]


def test_cut_tail_after_a_checkpoint_is_found(log):
    last_sealed = log.audit.checkpoints()[-1].seq
    tamper(log, f"DELETE FROM audit WHERE seq >= {last_sealed - 2}")
    problem, _ = first_problem(log)
    assert (problem.seq, problem.kind) == (last_sealed - 2, "truncated")


def test_cut_tail_with_its_checkpoints_is_found_from_the_checkpoint_file(log):
    last = log.audit.checkpoints()[-1]
    tamper(log, f"DELETE FROM audit WHERE seq > {last.seq - 3}", f"DELETE FROM audit_checkpoints WHERE no = {last.no}")
    problem, report = first_problem(log)
    kinds = {p.kind for p in report.problems}
    assert "truncated" in kinds and "checkpoint" in kinds and problem.seq == last.seq - 2


def test_chain_rewritten_from_a_row_on_is_caught_by_the_checkpoint(log):
    checkpoints = log.audit.checkpoints()
    target = checkpoints[1].seq + 2  # inside the span that checkpoint 3 seals
    with log.db.read() as conn:
        rows = [AuditRow.from_db(r) for r in conn.execute("SELECT * FROM audit WHERE seq >= ? ORDER BY seq", (target - 1,))]
    statements, previous = [], rows[0].hash
    for original in rows[1:]:  # a perfect re-hash of everything from the edited row on
        changed = {"actor": "ffffffffffff"} if original.seq == target else {}
        fixed = AuditRow(**{**original.to_json(), **changed, "prev_hash": previous})
        previous = row_hash(fixed.body())
        statements.append(f"UPDATE audit SET actor = '{fixed.actor}', prev_hash = '{fixed.prev_hash}', "
                          f"hash = '{previous}' WHERE seq = {fixed.seq}")
    tamper(log, *statements)
    problem, _ = first_problem(log)
    assert problem.kind == "rewritten" and problem.seq == checkpoints[1].seq + 1
    assert f"..{checkpoints[2].seq}" in problem.message


def test_forged_or_deleted_checkpoint_is_found(log):
    cp = log.audit.checkpoints()[1]
    tamper(log, f"UPDATE audit_checkpoints SET seq = {cp.seq + 1} WHERE no = {cp.no}")
    problem, _ = first_problem(log)
    assert problem.kind == "checkpoint"
    tamper(log, f"DELETE FROM audit_checkpoints WHERE no = {cp.no}")
    path = log.data_dir / "audit-checkpoints.jsonl"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines() if json.loads(line)["no"] != cp.no))
    report = log.verify_audit(LOCAL_ADMIN)
    assert any(p.kind == "checkpoint" and f"checkpoint {cp.no} is missing" in p.message for p in report.problems)


def test_a_replaced_signing_key_is_found(log, tmp_path):
    other = type(log).open(tmp_path / "elsewhere")
    report = log.verify_audit(LOCAL_ADMIN, trusted_keys={other.signer.public_hex})
    assert {p.kind for p in report.problems} == {"checkpoint"}
    other.close()
