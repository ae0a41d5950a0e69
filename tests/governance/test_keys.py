"""API keys: hashed, role-checked, and a drop-in successor of rtvc.server.keystore.KeyStore."""

from __future__ import annotations

import inspect
import json

import pytest

from rtvc.governance import LOCAL_ADMIN, Forbidden, GovernanceStore, InvalidInput, Unauthorized
from rtvc.governance.errors import StoreError
from rtvc.governance.keys import hash_secret
from rtvc.server import keystore as legacy


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


def test_public_api_matches_the_server_keystore(store):
    for name in ("keys", "count", "verify", "create", "revoke"):
        theirs = inspect.signature(getattr(legacy.KeyStore, name))
        ours = inspect.signature(getattr(type(store.keys), name))
        shape = [(p.name, p.kind, p.default) for p in theirs.parameters.values()]
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()][: len(shape)] == shape
    assert store.keys.create("client", "My Game App")[1].name == "My Game App"  # free-form labels as before
    secret, info = store.keys.create()  # same defaults and result shape
    assert info.role == "client" and info.name == f"client-{info.id}" and info.active
    assert secret.startswith(f"rtvc_{info.id}_") and store.keys.verify(secret) == info
    assert {f for f in legacy.KeyInfo.__dataclass_fields__} <= {f for f in type(info).__dataclass_fields__}


def test_keys_of_the_server_keystore_are_imported_and_keep_working(tmp_path):
    data_dir = tmp_path / "data"
    old = legacy.KeyStore(data_dir)
    admin_secret, admin = old.create("admin", "boss")
    gone_secret, gone = old.create("client")
    old.revoke(gone.id)
    store = GovernanceStore.open(data_dir)
    assert store.keys.verify(admin_secret).id == admin.id and store.keys.verify(admin_secret).role == "admin"
    assert store.keys.verify(gone_secret) is None
    assert not (data_dir / "keys.json").exists() and (data_dir / "keys.json.imported").exists()
    events = [(r.event, r.client) for r in store.audit.query(LOCAL_ADMIN)]
    assert ("key.created", admin.id) in events and ("key.revoked", gone.id) in events
    store.close()
    again = GovernanceStore.open(data_dir)  # nothing to import twice
    assert again.keys.count(active_only=False) == 2
    again.close()


def test_a_corrupt_legacy_file_is_a_clear_error_and_imports_nothing(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "keys.json").write_text(json.dumps({"version": 9, "keys": []}))
    with pytest.raises(StoreError, match="cannot import keys"):
        GovernanceStore.open(data_dir)
