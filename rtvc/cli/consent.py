"""``rtvc consent grant|revoke|list``: record, withdraw and show voice owners' consent, locally.

The CLI works on the data dir's database directly, as the local admin (file permissions are the
boundary); every action lands in the audit log as actor ``local``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rtvc.cli.common import add_common, governance_store
from rtvc.governance import LOCAL_ADMIN, PURPOSES
from rtvc.governance.errors import InvalidInput

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("consent", help="grant, revoke and list consent for owned voices")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    grant = actions.add_parser("grant", help="record an owner's consent for a voice")
    add_common(grant)
    grant.add_argument("voice", help="the owned voice (imported with an owner)")
    grant.add_argument("--purpose", action="append", required=True, metavar="P",
                       help=f"allowed purpose, repeat or comma-separate: {', '.join(PURPOSES)}")
    text = grant.add_mutually_exclusive_group(required=True)
    text.add_argument("--statement", metavar="TEXT", help="the owner's consent statement")
    text.add_argument("--statement-file", metavar="FILE", help="read the statement from a UTF-8 text file")
    grant.add_argument("--statement-audio", metavar="AUDIO", help="the owner's recorded statement (WAV/FLAC/Ogg)")
    grant.add_argument("--clients", default="any", metavar="LIST",
                       help="'any' or comma-separated key ids / key names allowed to stream (default: any)")
    grant.add_argument("--from", dest="valid_from", metavar="TIME", help="valid from (ISO-8601, UTC; default now)")
    grant.add_argument("--until", dest="valid_until", metavar="TIME", help="valid until (ISO-8601, UTC; default: until revoked)")
    grant.add_argument("--json", action="store_true", help="machine-readable output")
    grant.set_defaults(func=create_grant)

    revoke = actions.add_parser("revoke", help="withdraw a grant: live sessions under it end")
    add_common(revoke)
    revoke.add_argument("grant", help="grant id (g_...)")
    revoke.add_argument("--reason", help="why (kept with the grant, not in the audit log)")
    revoke.add_argument("--json", action="store_true", help="machine-readable output")
    revoke.set_defaults(func=revoke_grant)

    listing = actions.add_parser("list", help="show grants")
    add_common(listing)
    listing.add_argument("--voice", help="only this voice")
    listing.add_argument("--status", choices=("live", "pending", "expired", "revoked"), help="only grants in this state")
    listing.add_argument("--json", action="store_true", help="machine-readable output (includes statements)")
    listing.set_defaults(func=list_grants)


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def create_grant(args: argparse.Namespace) -> int:
    if args.statement_file is not None:
        try:
            statement = Path(args.statement_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read statement file {args.statement_file}: {exc}") from None
    else:
        statement = args.statement
    clients = "any" if args.clients.strip() == "any" else _split([args.clients])
    with governance_store(args) as store:
        grant = store.grants.create(
            LOCAL_ADMIN, args.voice, statement=statement, purposes=_split(args.purpose), clients=clients,
            valid_from=args.valid_from, valid_until=args.valid_until, statement_audio=args.statement_audio,
        )
    if args.json:
        print(json.dumps(grant.to_json(), indent=2))
    else:
        print(f"granted {grant.grant_id}: voice {grant.voice} for {', '.join(grant.purposes)}, "
              f"clients {_clients_text(grant)}, {grant.valid_from} .. {grant.valid_until or 'until revoked'}")
    return 0


def revoke_grant(args: argparse.Namespace) -> int:
    with governance_store(args) as store:
        grant = store.grants.revoke(LOCAL_ADMIN, args.grant, reason=args.reason)
        remaining = store.grants.active_count(grant.voice)
        servers = store.servers.live()
    if args.json:
        print(json.dumps({"grant": grant.to_json(statement=False), "voice_grants_remaining": remaining}, indent=2))
        return 0
    print(f"revoked {grant.grant_id} (voice {grant.voice}) at {grant.revoked_at}; running servers end its sessions")
    if remaining == 0 and servers:
        print(f"voice {grant.voice} has no grant left: the running server erases it (files and loaded copies)",
              file=sys.stderr)
    elif remaining == 0:
        print(f"voice {grant.voice} has no grant left and no server is running: erase its files with "
              f"`rtvc voices erase {grant.voice}`", file=sys.stderr)
    return 0


def list_grants(args: argparse.Namespace) -> int:
    with governance_store(args) as store:
        grants = store.grants.list(LOCAL_ADMIN, voice=args.voice, status=args.status)
        statuses = [g.status() for g in grants]
    if args.json:
        print(json.dumps({"grants": [{**g.to_json(), "status": s} for g, s in zip(grants, statuses, strict=True)]},
                         indent=2))
        return 0
    for grant, status in zip(grants, statuses, strict=True):
        print(f"{grant.grant_id}  {status:<8} {grant.voice:<16} {','.join(grant.purposes):<32} "
              f"clients {_clients_text(grant)}  until {grant.valid_until or '-'}")
    if not grants:
        print("no grants")
    return 0


def _clients_text(grant) -> str:
    return "any" if grant.clients_any else ",".join(grant.client_keys + grant.client_names)
