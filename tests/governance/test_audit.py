"""The audit log: every event lands hash-chained, checkpoints are signed, queries respect roles,
watermark tokens resolve to their session."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time

import pytest

from rtvc.governance import LOCAL_ADMIN, Forbidden, NotFound
from rtvc.governance.audit import GENESIS, canonical_json, row_hash
from rtvc.governance.signing import verify_signature


def stream_once(store, people, voice, token, *, purpose="game_character", seconds=2.5):
    record = store.sessions.start(people.client, voice, purpose, token)
    return store.sessions.end(record.session_id, converted_s=seconds, reason="client")


@pytest.fixture
def granted(store, people, voice):
    return store.grants.create(people.owner, voice, statement="I agree to game use.", purposes=["game_character"],
                               clients="any", valid_until=time.time() + 3600)


def test_every_event_is_recorded_and_chained(store, people, voice, granted):
    stream_once(store, people, voice, 0x1234)
    store.sessions.record_detection(people.auditor, 0x1234)
    store.grants.revoke(people.owner, granted.grant_id)
    rows = store.audit.query(LOCAL_ADMIN)
    events = [row.event for row in rows]
    for event in ("key.created", "voice.imported", "grant.created", "session.started", "session.ended",
                  "detection", "grant.revoked"):
        assert event in events
    previous = GENESIS
    for n, row in enumerate(rows, 1):
        assert row.seq == n and row.prev_hash == previous and row_hash(row.body()) == row.hash
        previous = row.hash
    ended = next(r for r in rows if r.event == "session.ended")
    assert ended.data["converted_ms"] == 2500 and ended.data["token"] == f"{0x1234:016x}"
    assert ended.grant_id == granted.grant_id and ended.client == people.client.id
    assert {"started_at", "ended_at", "purpose", "reason"} <= set(ended.data)


def test_audit_rows_keep_ids_and_hashes_not_consent_text(store, people, voice, granted):
    created = store.audit.query(LOCAL_ADMIN, event="grant.created")[0]
    assert created.data["statement_sha256"] == hashlib.sha256(b"I agree to game use.").hexdigest()
    with store.db.read() as conn:
        dump = "".join(row["data"] for row in conn.execute("SELECT data FROM audit"))
    assert "I agree" not in dump


def test_canonical_encoding_is_sorted_compact_and_float_free():
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    with pytest.raises(TypeError):
        canonical_json({"seconds": 1.5})


def test_database_refuses_updates_and_deletes_of_audit_rows(store, people):
    conn = sqlite3.connect(store.db.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET actor = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_checkpoints")


def test_checkpoints_are_signed_and_copied_to_the_file(store, people, voice, granted):
    for token in range(1, 6):
        stream_once(store, people, voice, token)
    checkpoints = store.audit.checkpoints()
    assert len(checkpoints) >= 3  # every 5 rows in this fixture, and the first row at once
    with store.db.read() as conn:
        hashes = {row["seq"]: row["hash"] for row in conn.execute("SELECT seq, hash FROM audit")}
    for cp in checkpoints:
        assert cp.public_key == store.signer.public_hex
        assert verify_signature(cp.public_key, cp.message(), cp.signature)
        assert hashes[cp.seq] == cp.hash
    lines = (store.data_dir / "audit-checkpoints.jsonl").read_text().splitlines()
    assert [json.loads(line)["no"] for line in lines] == [cp.no for cp in checkpoints]
    forged = checkpoints[0].message().replace(b'"seq":1', b'"seq":2')
    assert not verify_signature(checkpoints[0].public_key, forged, checkpoints[0].signature)


def test_explicit_checkpoint_seals_an_idle_tail(store, people):
    before = store.audit.checkpoints()[-1]
    store.keys.create("client", "late")
    sealed = store.audit.checkpoint()
    assert sealed.no == before.no + 1 and sealed.seq == store.audit.head()[0]
    assert store.audit.checkpoint() is None  # nothing new to seal


def test_signing_key_is_private(store):
    key = store.data_dir / "audit-signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (store.db.path.stat().st_mode & 0o077) == 0


def test_query_filters(store, people, voice, granted):
    stream_once(store, people, voice, 11)
    other = store.grants.create(people.other_owner, "bob", statement="ok", purposes=["research"], clients="any")
    store.sessions.start(people.other_client, "bob", "research", 12)
    assert {r.voice for r in store.audit.query(people.auditor, voice="bob")} == {"bob"}
    assert {r.grant_id for r in store.audit.query(people.auditor, grant_id=other.grant_id)} == {other.grant_id}
    by_name = store.audit.query(people.auditor, client="other-client", event="session.started")
    by_id = store.audit.query(people.auditor, client=people.other_client.id, event="session.started")
    assert by_name == by_id and len(by_id) == 1 and by_id[0].voice == "bob"
    assert store.audit.query(people.auditor, since=time.time() + 60) == []
    assert len(store.audit.query(people.auditor, limit=3)) == 3


def test_owner_reads_only_rows_about_their_voices_and_clients_read_none(store, people, voice, granted):
    stream_once(store, people, voice, 21)
    store.grants.create(people.other_owner, "bob", statement="ok", purposes=["research"], clients="any")
    store.sessions.start(people.other_client, "bob", "research", 22)
    mine = store.audit.query(people.owner)
    assert mine and all(r.voice == voice or r.actor == people.owner.id for r in mine)
    assert store.audit.query(people.owner, voice="bob") == []
    assert any(r.voice == "bob" for r in store.audit.query(people.auditor))
    with pytest.raises(Forbidden):
        store.audit.query(people.client)
    with pytest.raises(Forbidden):
        store.verify_audit(people.owner)


def test_watermark_token_resolves_to_its_session(store, people, voice, granted):
    ended = stream_once(store, people, voice, "00000000deadbeef", purpose="game_character")
    found = store.sessions.provenance(people.auditor, 0xDEADBEEF)
    assert (found.session_id, found.voice, found.grant_id, found.client, found.client_name, found.purpose) == (
        ended.session_id, voice, granted.grant_id, people.client.id, "client", "game_character")
    assert found.started_at == ended.started_at
    with pytest.raises(NotFound):
        store.sessions.provenance(people.auditor, 0xFEED)
    for actor in (people.client, people.owner):
        with pytest.raises(Forbidden):
            store.sessions.provenance(actor, 0xDEADBEEF)


def test_detection_is_audited_even_when_the_token_is_unknown(store, people, voice, granted):
    stream_once(store, people, voice, 31)
    digest = hashlib.sha256(b"recording").hexdigest()
    assert store.sessions.record_detection(people.auditor, 31, input_sha256=digest).voice == voice
    assert store.sessions.record_detection(people.admin, 99) is None
    rows = store.audit.query(people.auditor, event="detection")
    assert [(r.data["resolved"], r.voice) for r in rows] == [(True, voice), (False, None)]
    assert rows[0].data["input_sha256"] == digest


def test_session_end_is_idempotent_and_orphans_close(store, people, voice, granted):
    record = store.sessions.start(people.client, voice, "game_character", 41)
    store.sessions.start(people.client, voice, "game_character", 42)
    store.sessions.end(record.session_id, converted_s=1.0, reason="client")
    again = store.sessions.end(record.session_id, converted_s=9.0, reason="other")
    assert again.converted_ms == 1000 and again.end_reason == "client"
    assert store.sessions.close_orphans() == 1 and store.sessions.live() == []


def test_a_rolled_back_append_leaves_no_row_and_no_checkpoint_copy(store, people):
    copy = store.data_dir / "audit-checkpoints.jsonl"
    before, lines = store.audit.head(), copy.read_text()
    with pytest.raises(RuntimeError, match="abort"), store.db.write() as conn:
        store.audit.checkpoint_every_rows = 1  # this append would be sealed at once
        store.audit.append(conn, "detection", actor=people.auditor.id, data={"token": "0" * 16})
        raise RuntimeError("abort")
    assert store.audit.head() == before and copy.read_text() == lines
    assert store.verify_audit(LOCAL_ADMIN).ok
