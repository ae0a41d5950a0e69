"""API keys: hashed, role-checked, only admins manage them."""

from __future__ import annotations

import pytest

from rtvc.governance import LOCAL_ADMIN, Forbidden, InvalidInput, Unauthorized
from rtvc.governance.keys import hash_secret


def test_keys_are_stored_only_as_hashes(store, people):
    secret = people.secrets["client"]
    with store.db.read() as conn:
        stored = conn.execute("SELECT secret_sha256 FROM keys WHERE key_id = ?", (people.client.id,)).fetchone()[0]
    assert stored == hash_secret(secret) and secret not in store.db.path.read_bytes().decode("latin-1")


def test_authenticate_accepts_live_keys_and_refuses_the_rest(store, people):
    assert store.keys.authenticate(people.secrets["owner"]) == people.owner
    secret = people.secrets["client"]
    for bad in (None, "", 42, "rtvc_nothex_x", secret[:-1] + ("A" if secret[-1] != "A" else "B"), "x" * 500):
        with pytest.raises(Unauthorized):
            store.keys.authenticate(bad)
        assert store.keys.verify(bad) is None
    assert store.keys.revoke(people.client.id) is True
    with pytest.raises(Unauthorized, match="revoked"):
        store.keys.authenticate(secret)
    assert store.keys.revoke(people.client.id) is False


def test_only_admins_create_revoke_and_list_keys(store, people):
    for actor in (people.owner, people.client, people.auditor):
        with pytest.raises(Forbidden):
            store.keys.create("admin", "sneaky", actor=actor)
        with pytest.raises(Forbidden):
            store.keys.revoke(people.admin.id, actor=actor)
        with pytest.raises(Forbidden):
            store.keys.list(actor)
    assert store.keys.get(people.admin.id).active
    _, made = store.keys.create("auditor", "by-admin", actor=people.admin)
    created = store.audit.query(LOCAL_ADMIN, client=made.id, event="key.created")
    assert created[0].actor == people.admin.id and created[0].data == {"role": "auditor"}


def test_bad_key_input_is_refused(store):
    before = store.keys.count(active_only=False)
    for role, name in [("root", "x"), ("client", "a,b"), ("client", " pad"), ("client", "x" * 65), ("client", 5), (None, "x")]:
        with pytest.raises(InvalidInput):
            store.keys.create(role, name)
    assert store.keys.count(active_only=False) == before
