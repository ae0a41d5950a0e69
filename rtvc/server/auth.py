"""API-key authentication for HTTP requests and WebSocket upgrades.

A key comes in ``Authorization: Bearer KEY`` or, for browsers (which cannot set
headers on a WebSocket), as the subprotocol ``bearer.KEY`` offered next to
``rtvc.v1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.requests import HTTPConnection

from rtvc.governance import Forbidden, KeyInfo, Unauthorized
from rtvc.governance.keys import KeyStore

__all__ = ["Authenticator", "Forbidden", "Unauthorized", "bearer_from_headers", "bearer_from_subprotocols"]

_SUBPROTOCOL_PREFIX = "bearer."


def bearer_from_headers(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_from_subprotocols(subprotocols: Iterable[str]) -> str | None:
    for proto in subprotocols:
        if proto.startswith(_SUBPROTOCOL_PREFIX) and len(proto) > len(_SUBPROTOCOL_PREFIX):
            return proto[len(_SUBPROTOCOL_PREFIX) :]
    return None


def _subprotocols(conn: HTTPConnection) -> list[str]:
    if conn.scope.get("type") == "websocket":
        return list(conn.scope.get("subprotocols", []))
    return []


class Authenticator:
    """``authenticate(conn) -> KeyInfo`` for a Starlette Request or WebSocket.

    Raises :class:`Unauthorized` (no valid key) or :class:`Forbidden` (wrong role).

    ``roles``: the roles allowed (all by default).
    """

    def __init__(self, keys: KeyStore, roles: Iterable[str] | None = None) -> None:
        self.keys = keys
        self.roles = frozenset(roles) if roles is not None else None

    def __call__(self, conn: HTTPConnection) -> KeyInfo:
        key = bearer_from_headers(conn.headers) or bearer_from_subprotocols(_subprotocols(conn))
        if key is None:
            raise Unauthorized("missing API key: send 'Authorization: Bearer KEY' (or subprotocol bearer.KEY)")
        info = self.keys.verify(key)
        if info is None:
            raise Unauthorized("invalid or revoked API key")
        if self.roles is not None and info.role not in self.roles:
            raise Forbidden(f"this needs a key with role {' or '.join(sorted(self.roles))}")
        return info

    def with_roles(self, *roles: str) -> Authenticator:
        return Authenticator(self.keys, roles)
