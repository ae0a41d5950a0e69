"""``rtvc audit verify|query|checkpoint|provenance``: check and read the audit log of the data dir.

``verify`` exits 1 when it finds a problem (and names each row), 0 when the log is intact.
"""

from __future__ import annotations

import argparse
import json

from rtvc.cli.common import add_common, governance_store
from rtvc.governance import LOCAL_ADMIN
from rtvc.governance.audit import EVENTS

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="verify and query the tamper-evident audit log")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    verify = actions.add_parser("verify", help="check the hash chain and the signed checkpoints")
    add_common(verify)
    verify.add_argument("--checkpoints", action="append", default=[], metavar="FILE",
                        help="also check against a copy of audit-checkpoints.jsonl kept elsewhere")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(func=verify_log)

    query = actions.add_parser("query", help="who used what: audit rows matching every filter, oldest first")
    add_common(query)
    query.add_argument("--voice", help="rows about this voice")
    query.add_argument("--grant", help="rows about this grant id")
    query.add_argument("--client", help="rows about this client key id or key name")
    query.add_argument("--since", metavar="TIME", help="rows at or after this time (ISO-8601, UTC)")
    query.add_argument("--event", choices=EVENTS, help="only this event")
    query.add_argument("--limit", type=int, default=1000, help="at most this many rows (default 1000)")
    query.add_argument("--json", action="store_true", help="machine-readable output")
    query.set_defaults(func=query_log)

    checkpoint = actions.add_parser("checkpoint", help="sign the current head now and print the checkpoint")
    add_common(checkpoint)
    checkpoint.set_defaults(func=seal_log)

    provenance = actions.add_parser("provenance", help="resolve a watermark token to its session")
    add_common(provenance)
    provenance.add_argument("token", help="64-bit token as 16 hex digits")
    provenance.add_argument("--json", action="store_true", help="machine-readable output")
    provenance.set_defaults(func=resolve_token)


def verify_log(args: argparse.Namespace) -> int:
    with governance_store(args) as store:
        report = store.verify_audit(LOCAL_ADMIN, checkpoint_files=args.checkpoints)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for problem in report.problems:
            print(f"row {problem.seq}: {problem.kind}: {problem.message}")
        verdict = "OK" if report.ok else f"FAILED ({len(report.problems)} problem(s))"
        print(f"audit log {verdict}: {report.rows} rows, {report.checkpoints} signed checkpoints, "
              f"rows 1..{report.sealed_seq} sealed, {report.last_seq - report.sealed_seq} after the last checkpoint")
    return 0 if report.ok else 1


def query_log(args: argparse.Namespace) -> int:
    with governance_store(args) as store:
        rows = store.audit.query(LOCAL_ADMIN, voice=args.voice, grant_id=args.grant, client=args.client,
                                 since=args.since, event=args.event, limit=args.limit)
    if args.json:
        print(json.dumps({"rows": [row.to_json() for row in rows]}, indent=2))
        return 0
    for row in rows:
        fields = " ".join(f"{k}={v}" for k, v in (("voice", row.voice), ("grant", row.grant_id),
                                                  ("client", row.client), ("session", row.session_id)) if v)
        data = " ".join(f"{k}={v}" for k, v in sorted(row.data.items()) if v is not None)
        print(f"{row.seq:>6} {row.ts} {row.event:<16} actor={row.actor} {fields} {data}".rstrip())
    if not rows:
        print("no matching audit rows")
    return 0


def seal_log(args: argparse.Namespace) -> int:
    with governance_store(args) as store:
        made = store.audit.checkpoint()
        latest = store.audit.checkpoints()[-1:] or [None]
    checkpoint = made or latest[0]
    print(json.dumps({"new": made is not None, "checkpoint": checkpoint.to_json() if checkpoint else None}, indent=2))
    return 0


def resolve_token(args: argparse.Namespace) -> int:
    with governance_store(args) as store:
        found = store.sessions.provenance(LOCAL_ADMIN, args.token)
    if args.json:
        print(json.dumps(found.to_json(), indent=2))
    else:
        print(f"token {found.token}: session {found.session_id}, voice {found.voice}, grant {found.grant_id or '-'}, "
              f"client {found.client_name or '?'} ({found.client}), purpose {found.purpose}, started {found.started_at}")
    return 0
