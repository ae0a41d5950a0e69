"""`rtvc consent ...` and `rtvc audit ...` through rtvc's real main() on a real database: one test as a
separate process (exit codes, stdout, stderr as a shell sees them), the rest in-process to stay fast."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from types import SimpleNamespace

import pytest

from rtvc import cli as rtvc_cli
from rtvc.governance import LOCAL_ADMIN, GovernanceStore

# rtvc's real main() (argument parsing, error reporting, exit codes) with just the two commands under test,
# so these tests neither wait for the command list to name them nor break when another command cannot import.
RUNNER = "import sys, rtvc.cli as cli; cli.COMMANDS = ('consent', 'audit'); sys.exit(cli.main(sys.argv[1:]))"


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    store = GovernanceStore.open(path)
    _, owner = store.keys.create("owner", "alice-owner")
    _, client = store.keys.create("client", "game")
    store.voices.register(LOCAL_ADMIN, "alice", owner.id)
    record = store.sessions.start(client, "feminine", "research", 0xBEEF, builtin=True)
    store.sessions.end(record.session_id, converted_s=3.0, reason="client")
    store.close()
    return path


@pytest.fixture
def run_rtvc(monkeypatch, capsys):
    """``run_rtvc(data_dir, *argv)`` -> (returncode, stdout, stderr) of rtvc's main() in this process."""
    monkeypatch.setattr(rtvc_cli, "COMMANDS", ("consent", "audit"))

    def run(data_dir, *argv):
        code = rtvc_cli.main([*argv, "--data-dir", str(data_dir)])
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


def rtvc_process(data_dir, *argv):
    return subprocess.run([sys.executable, "-c", RUNNER, *argv, "--data-dir", str(data_dir)], capture_output=True,
                          text=True, timeout=120)


def test_grant_list_revoke_round_trip(run_rtvc, data_dir, tmp_path):
    statement = tmp_path / "statement.txt"
    statement.write_text("I, Alice, allow the game studio to use my voice.", encoding="utf-8")
    made = run_rtvc(data_dir, "consent", "grant", "alice", "--purpose", "game_character,dubbing", "--statement-file",
                str(statement), "--clients", "game", "--until", "2099-01-01T00:00:00Z", "--json")
    assert made.returncode == 0, made.stderr
    grant = json.loads(made.stdout)
    assert grant["purposes"] == ["game_character", "dubbing"] and grant["client_names"] == ["game"]
    listed = json.loads(run_rtvc(data_dir, "consent", "list", "--status", "live", "--json").stdout)["grants"]
    assert [g["grant_id"] for g in listed] == [grant["grant_id"]] and listed[0]["status"] == "live"
    revoked = run_rtvc(data_dir, "consent", "revoke", grant["grant_id"], "--reason", "withdrawn")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert "no grant left" in revoked.stderr
    text = run_rtvc(data_dir, "consent", "list")
    assert grant["grant_id"] in text.stdout and "revoked" in text.stdout


def test_grant_errors_exit_2_with_a_message(run_rtvc, data_dir):
    unknown = run_rtvc(data_dir, "consent", "grant", "nobody", "--purpose", "dubbing", "--statement", "ok")
    assert unknown.returncode == 2 and "no owner on record" in unknown.stderr
    bad = run_rtvc(data_dir, "consent", "grant", "alice", "--purpose", "karaoke", "--statement", "ok")
    assert bad.returncode == 2 and "unknown purpose 'karaoke'" in bad.stderr
    missing = run_rtvc(data_dir, "consent", "revoke", "g_0123456789abcdef")
    assert missing.returncode == 2 and "no grant" in missing.stderr


def test_audit_query_and_provenance(run_rtvc, data_dir):
    rows = json.loads(run_rtvc(data_dir, "audit", "query", "--client", "game", "--json").stdout)["rows"]
    assert [r["event"] for r in rows] == ["key.created", "session.started", "session.ended"]
    assert rows[-1]["data"]["converted_ms"] == 3000
    text = run_rtvc(data_dir, "audit", "query", "--voice", "alice")
    assert "voice.imported" in text.stdout and text.returncode == 0
    found = json.loads(run_rtvc(data_dir, "audit", "provenance", "000000000000beef", "--json").stdout)
    assert found["voice"] == "feminine" and found["client_name"] == "game" and found["purpose"] == "research"
    assert run_rtvc(data_dir, "audit", "provenance", "00000000000000ff").returncode == 2


def test_audit_verify_passes_then_fails_at_the_tampered_row(run_rtvc, data_dir):
    good = rtvc_process(data_dir, "audit", "verify")
    assert good.returncode == 0 and "audit log OK" in good.stdout
    conn = sqlite3.connect(data_dir / "rtvc.sqlite3", isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET data = '{\"converted_ms\":1}' WHERE event = 'session.ended'")
    seq = conn.execute("SELECT seq FROM audit WHERE event = 'session.ended'").fetchone()[0]
    conn.close()
    bad = rtvc_process(data_dir, "audit", "verify")
    assert bad.returncode == 1 and f"row {seq}: edited" in bad.stdout and "FAILED" in bad.stdout
    report = json.loads(run_rtvc(data_dir, "audit", "verify", "--json").stdout)
    assert report["ok"] is False and report["problems"][0]["seq"] == seq


def test_checkpoint_command_seals_the_head(run_rtvc, data_dir):
    sealed = json.loads(run_rtvc(data_dir, "audit", "checkpoint").stdout)
    store = GovernanceStore.open(data_dir)
    assert sealed["checkpoint"]["seq"] == store.audit.head()[0]
    assert sealed["checkpoint"]["public_key"] == store.signer.public_hex
    store.close()
