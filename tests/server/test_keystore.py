"""API keys: shown once, stored hashed, verified, revoked, shared between CLI and server."""

import json

from rtvc.cli import keys as keys_cli
from rtvc.governance import LOCAL_ADMIN, GovernanceStore


def test_a_key_made_by_the_cli_works_in_a_server_already_running(tmp_path):
    server_view, cli_view = GovernanceStore.open(tmp_path), GovernanceStore.open(tmp_path)
    try:
        assert server_view.keys.count() == 0
        key, _ = cli_view.keys.create("admin")
        assert server_view.keys.verify(key).role == "admin"
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("rtvc.sqlite3*"))
        assert raw
        assert key.encode() not in raw  # only the hash is stored
    finally:
        server_view.close()
        cli_view.close()


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
