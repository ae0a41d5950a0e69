"""The rtvc server: ASGI app (HTTP + WebSocket on one port), API keys, metrics."""

from __future__ import annotations

from rtvc.server.app import ServerContext, create_app
from rtvc.server.keystore import KeyInfo, KeyStore

__all__ = ["KeyInfo", "KeyStore", "ServerContext", "create_app"]
