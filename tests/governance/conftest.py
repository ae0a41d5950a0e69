"""A real governance database in a temp dir, with one key of each role and an owned voice."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import pytest

from rtvc.governance import LOCAL_ADMIN, GovernanceStore, KeyInfo


@dataclass
class People:
    admin: KeyInfo
    owner: KeyInfo
    other_owner: KeyInfo
    client: KeyInfo
    other_client: KeyInfo
    auditor: KeyInfo
    secrets: dict[str, str]


@pytest.fixture
def store(tmp_path):
    s = GovernanceStore.open(tmp_path / "data", checkpoint_every_rows=5)
    yield s
    s.close()


@pytest.fixture
def people(store) -> People:
    made = {}
    for label, role in [("admin", "admin"), ("owner", "owner"), ("other_owner", "owner"), ("client", "client"),
                        ("other_client", "client"), ("auditor", "auditor")]:
        made[label] = store.keys.create(role, label.replace("_", "-"))
    return People(**{label: info for label, (_, info) in made.items()},
                  secrets={label: secret for label, (secret, _) in made.items()})


@pytest.fixture
def voice(store, people) -> str:
    store.voices.register(LOCAL_ADMIN, "alice", people.owner.id, model_sha256="ab" * 32)
    store.voices.register(LOCAL_ADMIN, "bob", people.other_owner.id)
    return "alice"


def raw(store) -> sqlite3.Connection:
    """A second, plain connection to the same file: what someone tampering with it would use."""
    conn = sqlite3.connect(store.db.path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def counts(store) -> dict[str, int]:
    with store.db.read() as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("keys", "voices", "grants", "sessions", "audit", "audit_checkpoints")}
