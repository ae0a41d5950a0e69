"""Wrong types and oversize values give a clear InvalidInput and change nothing."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from rtvc.governance import LOCAL_ADMIN, InvalidInput

from .conftest import counts

GOOD_GRANT = dict(statement="I agree.", purposes=["dubbing"], clients="any", valid_until=time.time() + 3600)

BAD_GRANTS = [
    ({"statement": 42}, "statement must be a string"),
    ({"statement": "   "}, "statement must not be empty"),
    ({"statement": "x" * 10_001}, "at most 10000"),
    ({"purposes": "dubbing"}, "purposes must be a list"),
    ({"purposes": []}, "purposes must list"),
    ({"purposes": ["karaoke"]}, "unknown purpose"),
    ({"purposes": [None]}, "purpose must be a string"),
    ({"clients": "everyone"}, "clients must be 'any'"),
    ({"clients": []}, "clients must list"),
    ({"clients": ["ok", 7]}, "client must be a string"),
    ({"clients": [f"app{n}" for n in range(101)]}, "clients must list"),
    ({"valid_until": float("nan")}, "must be finite"),
    ({"valid_until": time.time() - 10}, "in the future"),
    ({"valid_until": "next tuesday"}, "not an ISO-8601 time"),
    ({"valid_until": datetime(2030, 1, 1)}, "timezone-aware"),
    ({"valid_until": True}, "got bool"),
    ({"valid_from": "2031-01-01", "valid_until": "2030-01-01"}, "must be after valid_from"),
    ({"valid_until": [2030]}, "must be epoch seconds"),
    ({"statement_audio": b"not audio at all"}, "not a readable audio file"),
    ({"statement_audio": b"x" * (20 * 2**20 + 1)}, "statement audio must be"),
    ({"statement_audio": 3.5}, "statement_audio must be bytes"),
    ({"statement_audio": "/no/such/file.wav"}, "is not a file"),
]


@pytest.mark.parametrize("change, message", BAD_GRANTS, ids=[m for _, m in BAD_GRANTS])
def test_bad_grant_fields(store, people, voice, change, message):
    before = counts(store)
    with pytest.raises(InvalidInput, match=message):
        store.grants.create(people.owner, voice, **{**GOOD_GRANT, **change})
    assert counts(store) == before
    assert not (store.data_dir / "consent-statements").exists() or not any((store.data_dir / "consent-statements").iterdir())


def test_bad_voice_names_and_owners(store, people):
    before = counts(store)
    for name, owner, sha, message in [
        ("../etc", people.owner.id, None, "may hold only"),
        ("x" * 65, people.owner.id, None, "at most 64"),
        (b"alice", people.owner.id, None, "must be a string"),
        ("alice", people.client.id, None, "role 'owner'"),
        ("alice", "nope", None, "not a key id"),
        ("alice", people.owner.id, "XYZ", "sha256"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            store.voices.register(LOCAL_ADMIN, name, owner, model_sha256=sha)
    assert counts(store) == before


def test_bad_session_fields(store, people, voice):
    store.grants.create(people.owner, voice, **GOOD_GRANT)
    before = counts(store)
    for kwargs, message in [
        (dict(purpose="fun"), "unknown purpose"),
        (dict(token=-1), "64 unsigned bits"),
        (dict(token=1 << 64), "64 unsigned bits"),
        (dict(token="xyz"), "not 16 hex digits"),
        (dict(token=b"1234"), "must be 8 bytes"),
        (dict(token=1.0), "watermark token must be"),
        (dict(transport="carrier-pigeon"), "transport must be one of"),
        (dict(session_id="a" * 65), "at most 64"),
        (dict(voice=None), "voice must be a string"),
    ]:
        args = dict(voice=voice, purpose="dubbing", token=1) | kwargs
        with pytest.raises(InvalidInput, match=message):
            store.sessions.start(people.client, args.pop("voice"), args.pop("purpose"), args.pop("token"), **args)
    assert counts(store) == before
    record = store.sessions.start(people.client, voice, "dubbing", 1)
    before = counts(store)
    for seconds in (-1.0, float("inf"), True, "3", 1e12):
        with pytest.raises(InvalidInput, match="converted_s"):
            store.sessions.end(record.session_id, converted_s=seconds, reason="client")
    with pytest.raises(InvalidInput, match="reason"):
        store.sessions.end(record.session_id, converted_s=1.0, reason="r" * 65)
    assert counts(store) == before


def test_bad_revocations_queries_and_lookups(store, people, voice):
    grant = store.grants.create(people.owner, voice, **GOOD_GRANT)
    before = counts(store)
    with pytest.raises(InvalidInput, match="not an rtvc id"):
        store.grants.revoke(people.owner, "'; DROP TABLE grants; --")
    with pytest.raises(InvalidInput, match="at most 500"):
        store.grants.revoke(people.owner, grant.grant_id, reason="r" * 501)
    for kwargs, message in [(dict(limit=0), "limit"), (dict(limit="5"), "limit"), (dict(event="party"), "event must"),
                            (dict(since="yesterday"), "ISO-8601"), (dict(voice="a b"), "may hold only")]:
        with pytest.raises(InvalidInput, match=message):
            store.audit.query(people.auditor, **kwargs)
    with pytest.raises(InvalidInput, match="hex"):
        store.sessions.provenance(people.auditor, "not-a-token")
    assert counts(store) == before
    assert store.grants.get(LOCAL_ADMIN, grant.grant_id).revoked_at is None
