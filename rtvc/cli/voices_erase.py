"""``rtvc voices erase NAME``: delete everything derived from a voice, verify it, audit it, and make sure no
running server still holds it in memory.

The files are this command's job. The in-memory copies belong to the servers running on the same data dir:
each notices the ``voice.erased`` row within a poll interval, drops the voice from its registry and every engine
process, and writes a ``voice.unloaded`` row. The command finds the running servers by their leases (heartbeat
rows) and waits, at most ``--wait-s``, for each one's confirmation; it says plainly when no server runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rtvc.cli.common import add_common, config_from_args, data_dir_from
from rtvc.governance import LOCAL_ADMIN, GovernanceStore, InvalidInput
from rtvc.governance.servers import wait_for_unload
from rtvc.voices.store import voice_files

__all__ = ["register_erase"]

DEFAULT_WAIT_S = 10.0  # a server confirms within a poll interval, unless an engine is busy loading a model


def register_erase(voices_subparsers: argparse._SubParsersAction) -> None:
    erase = voices_subparsers.add_parser("erase", help="delete everything derived from a voice and audit it")
    add_common(erase)
    erase.add_argument("name", help="voice id")
    erase.add_argument("--reason", default="requested", help="why (at most 64 characters, audited)")
    erase.add_argument("--wait-s", type=float, default=DEFAULT_WAIT_S, metavar="S",
                       help=f"how long to wait for running servers to confirm the unload (default {DEFAULT_WAIT_S:g})")
    erase.add_argument("--json", action="store_true", help="machine-readable report")
    erase.set_defaults(func=erase_voice)


def erase_voice(args: argparse.Namespace) -> int:
    """Erase a voice: grants revoked, files gone (verified), erasure audited, running servers' copies unloaded."""
    if not 0 <= args.wait_s <= 600:
        raise InvalidInput(f"--wait-s must be 0..600 seconds, got {args.wait_s:g}")
    data_dir = data_dir_from(config_from_args(args))
    gov = GovernanceStore.open(data_dir)
    try:
        gov.eraser.register_paths(lambda name: voice_files(data_dir, name))
        if gov.voices.find(args.name) is None:
            raise InvalidInput(f"voice {args.name!r} has no owner on record: nothing to erase under governance "
                               "(built-in voices cannot be erased)")
        report = gov.eraser.erase(LOCAL_ADMIN, args.name, reason=args.reason)
        servers = gov.servers.live()
        rows = wait_for_unload(gov.audit, args.name, report.audit_seq, [s.server_id for s in servers],
                               timeout_s=args.wait_s) if servers else {}
    finally:
        gov.close()
    memory = [_server_state(lease, rows.get(lease.server_id)) for lease in servers]
    left = voice_files(data_dir, args.name)
    if args.json:
        print(json.dumps({**report.to_json(), "servers": memory, "files_left": [str(p) for p in left]}, indent=2))
    else:
        print(f"erased {report.voice}: {report.files_removed} file(s), {report.bytes_removed} bytes, "
              f"{len(report.grants_revoked)} grant(s) revoked; files verified gone, audited")
        if not servers:
            print("no rtvc server is running on this data dir: no engine holds the voice in memory")
        for state in memory:
            print(_describe(state, report.voice), file=sys.stdout if state["verified"] else sys.stderr)
    if left:  # the eraser verified its own list; this checks the voice store once more from scratch
        print(f"rtvc voices erase: files left: {', '.join(map(str, left))}", file=sys.stderr)
        return 1
    return 0 if all(state["verified"] for state in memory) else 1


def _server_state(lease: Any, row: Any) -> dict[str, Any]:
    state = {"server_id": lease.server_id, "pid": lease.pid, "host": lease.host, "confirmed": row is not None}
    if row is None:
        return {**state, "verified": False}
    return {**state, **{k: row.data.get(k) for k in ("processes", "answered", "still_loaded", "sessions_closed")},
            "verified": bool(row.data.get("verified"))}


def _describe(state: dict[str, Any], voice: str) -> str:
    who = f"server {state['server_id']} (pid {state['pid']} on {state['host']})"
    if not state["confirmed"]:
        return (f"rtvc voices erase: {who} did not confirm the unload in time: it may still hold the voice in memory "
                f"(its later answer: rtvc audit query --voice {voice} --event voice.unloaded)")
    if not state["verified"]:
        return (f"rtvc voices erase: {who} STILL HOLDS the voice in {state['still_loaded']} place(s) "
                f"({state['answered']}/{state['processes']} engine(s) answered)")
    return f"{who}: unloaded from memory, {state['processes']} engine(s) answered, nothing left loaded"
