"""API keys: shown once, stored hashed, verified, revoked, shared between CLI and server."""

import json
import stat

import pytest

from rtvc.cli import keys as keys_cli
from rtvc.governance import LOCAL_ADMIN, GovernanceStore
from rtvc.server.keystore import KeyStore, KeyStoreError


def test_create_verify_revoke(tmp_path):
    store = KeyStore(tmp_path)
    key, info = store.create("client", name="laptop")
    assert key.startswith(f"rtvc_{info.id}_") and info.role == "client" and info.name == "laptop"
    assert store.verify(key) == info
    raw = store.path.read_text()
    assert key not in raw and key.split("_")[-1] not in raw  # only the hash is stored
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    for bad in (None, "", "rtvc_", key[:-1] + ("A" if key[-1] != "A" else "B"), "Bearer " + key, f"rtvc_nope_{key}"):
        assert store.verify(bad) is None
    assert store.revoke(info.id) and store.verify(key) is None
    assert not store.revoke(info.id)


def test_another_process_sees_new_keys(tmp_path):
    server_view, cli_view = KeyStore(tmp_path), KeyStore(tmp_path)
    assert server_view.count() == 0
    key, _ = cli_view.create("admin")
    assert server_view.verify(key).role == "admin"


def test_unknown_role_is_refused(tmp_path):
    with pytest.raises(KeyStoreError, match="unknown role"):
        KeyStore(tmp_path).create("root")


def test_keys_cli_json(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    keys_cli.register(parser.add_subparsers())
    args = parser.parse_args(["keys", "create", "--role", "owner", "--name", "ops", "--json",
                              "--data-dir", str(tmp_path)])
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    gov = GovernanceStore.open(tmp_path)  # the CLI writes the governance database the server reads
    try:
        assert gov.keys.verify(printed["key"]).role == "owner"
        assert [row.event for row in gov.audit.query(LOCAL_ADMIN)] == ["key.created"]
    finally:
        gov.close()
    args = parser.parse_args(["keys", "list", "--json", "--data-dir", str(tmp_path)])
    assert args.func(args) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert [k["role"] for k in listed] == ["owner"] and "key" not in listed[0]
