"""``rtvc keys``: create, list and revoke API keys (stored hashed in the data directory's governance database).

The CLI acts as the local admin (file permissions are the boundary); every action is audited as actor ``local``.
"""

from __future__ import annotations

import argparse
import json
import sys

from rtvc.cli.common import add_common, governance_store
from rtvc.governance import ROLES

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="manage API keys")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a key and print it (once)")
    add_common(create)
    create.add_argument("--role", choices=ROLES, default="client", help="client: streams; owner: owns voices, grants and revokes consent; "
                        "auditor: reads the audit log, resolves watermark tokens; admin: all")
    create.add_argument("--name", help="a label for the key (default: ROLE-ID)")
    create.add_argument("--json", action="store_true", help='print {"key": ..., "id": ..., "role": ...}')
    create.set_defaults(func=create_key)

    listing = actions.add_parser("list", help="list keys (never their secrets)")
    add_common(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=list_keys)

    revoke = actions.add_parser("revoke", help="revoke a key by id")
    add_common(revoke)
    revoke.add_argument("id", help="the key id (the part after rtvc_, see `rtvc keys list`)")
    revoke.set_defaults(func=revoke_key)


def create_key(args: argparse.Namespace) -> int:
    with governance_store(args) as gov:
        key, info = gov.keys.create(args.role, args.name)
    if args.json:
        print(json.dumps({"key": key, "id": info.id, "role": info.role, "name": info.name}))
    else:
        print(key)
        print(f"({info.role} key {info.id} '{info.name}'; shown only now, stored hashed)", file=sys.stderr)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    with governance_store(args) as gov:
        keys = gov.keys.keys()
    if args.json:
        print(json.dumps({"keys": [
            {"id": k.id, "role": k.role, "name": k.name, "created_at": k.created_at, "revoked_at": k.revoked_at}
            for k in keys
        ]}, indent=2))
        return 0
    for k in keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        print(f"{k.id}  {k.role:<7}  {k.created_at}  {state:<30}  {k.name}")
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    with governance_store(args) as gov:
        revoked = gov.keys.revoke(args.id)
    if not revoked:
        print(f"rtvc keys: no active key with id {args.id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.id}")
    return 0
