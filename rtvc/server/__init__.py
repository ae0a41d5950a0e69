"""The rtvc server: ASGI app (HTTP + WebSocket on one port), API key checks, metrics (keys live in rtvc.governance)."""

from __future__ import annotations

from rtvc.server.app import ServerContext, create_app

__all__ = ["ServerContext", "create_app"]
