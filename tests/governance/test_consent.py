"""Consent grants: every refusal code, expiry, revocation hooks and who may grant or revoke."""

from __future__ import annotations

import time

import pytest

from rtvc.governance import (
    LOCAL_ADMIN,
    ClientNotAllowed,
    Forbidden,
    GrantExpired,
    GrantRevoked,
    NoConsent,
    NotFound,
    PurposeNotAllowed,
)

NOW = time.time()
HOUR = 3600.0


def grant(store, actor, voice="alice", **overrides):
    settings = dict(statement="I, the owner, allow this.", purposes=["game_character"], clients="any",
                    valid_until=NOW + 10 * HOUR)
    settings.update(overrides)
    return store.grants.create(actor, voice, **settings)


def test_voice_without_grant_is_refused_with_no_consent(store, people, voice):
    with pytest.raises(NoConsent) as refused:
        store.grants.check(voice, "game_character", people.client)
    assert refused.value.code == "no_consent"
    with pytest.raises(NoConsent, match="no owner"):  # an unknown, non-builtin name is nobody's consent
        store.grants.check("stranger", "game_character", people.client)


def test_live_grant_is_returned(store, people, voice):
    made = grant(store, people.owner)
    found = store.grants.check(voice, "game_character", people.client)
    assert found.grant_id == made.grant_id and found.status() == "live"


def test_other_purpose_is_refused_with_purpose_not_allowed(store, people, voice):
    made = grant(store, people.owner, purposes=["accessibility"])
    with pytest.raises(PurposeNotAllowed) as refused:
        store.grants.check(voice, "dubbing", people.client)
    assert refused.value.code == "purpose_not_allowed" and refused.value.grant_id == made.grant_id


def test_client_not_in_grant_is_refused_with_client_not_allowed(store, people, voice):
    grant(store, people.owner, clients=[people.client.id])
    assert store.grants.check(voice, "game_character", people.client)
    with pytest.raises(ClientNotAllowed) as refused:
        store.grants.check(voice, "game_character", people.other_client)
    assert refused.value.code == "client_not_allowed"


def test_client_named_in_grant_covers_a_rotated_key_of_that_name(store, people, voice):
    grant(store, people.owner, clients=["client"])
    store.keys.revoke(people.client.id)
    _, rotated = store.keys.create("client", "client")
    assert store.grants.check(voice, "game_character", rotated)
    with pytest.raises(ClientNotAllowed):
        store.grants.check(voice, "game_character", people.other_client)


def test_expiry_refuses_with_grant_expired(store, people, voice):
    made = grant(store, people.owner, valid_until=NOW + HOUR)
    assert store.grants.check(voice, "game_character", people.client, now=NOW + HOUR - 1)
    with pytest.raises(GrantExpired) as refused:
        store.grants.check(voice, "game_character", people.client, now=NOW + HOUR)
    assert refused.value.code == "grant_expired" and refused.value.grant_id == made.grant_id
    assert store.grants.expired_between(NOW, NOW + 2 * HOUR) == [made.grant_id]


def test_grant_not_yet_valid_is_no_consent(store, people, voice):
    grant(store, people.owner, valid_from=NOW + HOUR)
    with pytest.raises(NoConsent, match="valid only from"):
        store.grants.check(voice, "game_character", people.client)
    assert store.grants.check(voice, "game_character", people.client, now=NOW + HOUR + 1)


def test_revoked_grant_refuses_with_grant_revoked_and_fires_hook(store, people, voice):
    made = grant(store, people.owner)
    seen = []
    store.on_revoke(seen.append)
    revoked = store.grants.revoke(people.owner, made.grant_id, reason="changed my mind")
    assert seen == [made.grant_id] and revoked.status() == "revoked"
    with pytest.raises(GrantRevoked) as refused:
        store.grants.check(voice, "game_character", people.client)
    assert refused.value.code == "grant_revoked"
    store.grants.revoke(people.owner, made.grant_id)  # idempotent: no second hook call, no second audit row
    assert seen == [made.grant_id]
    assert len(store.audit.query(LOCAL_ADMIN, grant_id=made.grant_id, event="grant.revoked")) == 1


def test_a_failing_hook_does_not_stop_the_others(store, people, voice):
    made = grant(store, people.owner)
    seen = []
    store.on_revoke(lambda gid: 1 / 0)
    store.on_revoke(seen.append)
    store.grants.revoke(LOCAL_ADMIN, made.grant_id)
    assert seen == [made.grant_id]


def test_a_grant_covering_the_use_decides_the_code_then_the_closest(store, people, voice):
    old = grant(store, people.owner, purposes=["dubbing"])
    store.grants.revoke(people.owner, old.grant_id)
    grant(store, people.owner, purposes=["research"])
    with pytest.raises(GrantRevoked) as refused:  # consent for dubbing was given and withdrawn: that is the answer
        store.grants.check(voice, "dubbing", people.client)
    assert refused.value.grant_id == old.grant_id
    assert store.grants.check(voice, "research", people.client)
    with pytest.raises(PurposeNotAllowed):  # nothing ever covered accessibility: the live grant came closest
        store.grants.check(voice, "accessibility", people.client)


def test_a_revoked_grant_for_one_client_refuses_it_while_another_clients_grant_keeps_the_voice(store, people, voice):
    mine = grant(store, people.owner, clients=[people.client.id])
    grant(store, people.owner, clients=[people.other_client.id])
    store.grants.revoke(people.owner, mine.grant_id)
    with pytest.raises(GrantRevoked):
        store.grants.check(voice, "game_character", people.client)
    assert store.grants.check(voice, "game_character", people.other_client)
    assert store.grants.active_count(voice) == 1


def test_among_grants_covering_the_use_an_unrevoked_one_decides(store, people, voice):
    expired = grant(store, people.owner, valid_until=NOW + HOUR)
    revoked = grant(store, people.owner)  # newer, but revoked: the expiry is the closer truth
    store.grants.revoke(people.owner, revoked.grant_id)
    with pytest.raises(GrantExpired) as refused:
        store.grants.check(voice, "game_character", people.client, now=NOW + 2 * HOUR)
    assert refused.value.grant_id == expired.grant_id


def test_client_and_auditor_cannot_grant(store, people, voice):
    for actor in (people.client, people.auditor):
        with pytest.raises(Forbidden):
            grant(store, actor)
    with pytest.raises(Forbidden, match="owner of voice"):
        grant(store, people.other_owner)  # an owner, but not this voice's
    assert store.grants.list(LOCAL_ADMIN) == []


def test_only_owner_or_admin_revokes_and_owners_see_only_their_grants(store, people, voice):
    mine = grant(store, people.owner)
    theirs = grant(store, people.other_owner, voice="bob")
    for actor in (people.client, people.auditor, people.other_owner):
        with pytest.raises(Forbidden):
            store.grants.revoke(actor, mine.grant_id)
    assert [g.grant_id for g in store.grants.list(people.owner)] == [mine.grant_id]
    with pytest.raises(NotFound):
        store.grants.get(people.owner, theirs.grant_id)
    with pytest.raises(Forbidden):
        store.grants.list(people.client)
    assert store.grants.revoke(people.admin, mine.grant_id).revoked_by == people.admin.id


def test_revoked_key_cannot_act(store, people, voice):
    store.keys.revoke(people.owner.id)
    stale = store.keys.get(people.owner.id)
    with pytest.raises(Forbidden, match="revoked"):
        grant(store, stale)


def test_builtin_voice_streams_without_grant_but_is_audited(store, people, voice):
    record = store.sessions.start(people.client, "feminine", "live_streaming", 0xABC, builtin=True)
    assert record.grant_id is None
    started = store.audit.query(people.auditor, event="session.started")
    assert started[-1].voice == "feminine" and started[-1].data["token"] == f"{0xABC:016x}"


def test_owned_voice_claimed_as_builtin_still_needs_a_grant(store, people, voice):
    with pytest.raises(NoConsent):
        store.sessions.start(people.client, voice, "live_streaming", 1, builtin=True)


def test_refused_session_is_audited_with_its_code(store, people, voice):
    grant(store, people.owner, purposes=["accessibility"])
    with pytest.raises(PurposeNotAllowed):
        store.sessions.start(people.client, voice, "dubbing", 7)
    refused = store.audit.query(people.auditor, event="session.refused")
    assert len(refused) == 1
    assert refused[0].data["code"] == "purpose_not_allowed" and refused[0].client == people.client.id
    assert store.sessions.live() == []


def test_session_after_revocation_is_refused_and_live_sessions_are_listed(store, people, voice):
    made = grant(store, people.owner)
    running = store.sessions.start(people.client, voice, "game_character", 1, transport="webrtc")
    assert [s.session_id for s in store.sessions.live(grant_id=made.grant_id)] == [running.session_id]
    store.grants.revoke(people.owner, made.grant_id)
    with pytest.raises(GrantRevoked):
        store.sessions.start(people.client, voice, "game_character", 2)


def test_poll_fires_expiry_once(store, people, voice):
    made = grant(store, people.owner, valid_until=NOW + HOUR)
    expired = []
    store.on_expire(expired.append)
    assert store.poll(now=NOW + HOUR - 10) == []
    assert store.poll(now=NOW + HOUR + 1) == [("grant.expired", made.grant_id)]
    assert store.poll(now=NOW + HOUR + 2) == [] and expired == [made.grant_id]


def test_key_records_of_another_shape_are_accepted_and_anything_else_refused(store, people, voice):
    from types import SimpleNamespace

    grant(store, people.owner, clients=["client"])
    theirs = SimpleNamespace(id=people.client.id, role="client", name="client", created_at="2025-01-01T00:00:00Z")
    assert store.grants.check(voice, "game_character", theirs)
    assert store.sessions.start(theirs, voice, "game_character", 77).client == people.client.id
    with pytest.raises(Forbidden, match="authenticated key"):
        store.sessions.start({"id": "x"}, voice, "game_character", 78)
