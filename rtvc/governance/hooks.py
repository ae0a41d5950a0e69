"""In-process callbacks for governance events (grant revoked, grant expired, voice erased).

Each event fires at most once per process per subject, whether it happened here (``revoke()``) or was
noticed in the database after another process (the CLI) made it. Callbacks run synchronously in the
thread that fired them and must be quick and thread-safe: from an asyncio server, hop to the loop with
``loop.call_soon_threadsafe``. A callback that raises is logged; the others still run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Hooks"]

log = logging.getLogger("rtvc.governance")


class Hooks:
    """Callbacks ``callback(subject: str)`` for one kind of event."""

    def __init__(self, event: str) -> None:
        self.event = event
        self._callbacks: list[Callable[[str], object]] = []
        self._fired: set[str] = set()
        self._lock = threading.Lock()

    def add(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Register ``callback``; returns a function that removes it again."""
        if not callable(callback):
            raise TypeError(f"{self.event} callback must be callable, got {type(callback).__name__}")
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def fire(self, subject: str, *, key: str | None = None) -> bool:
        """Run every callback with ``subject`` unless this event (``key``, default the subject) already fired
        in this process; True if it ran now."""
        key = subject if key is None else key
        with self._lock:
            if key in self._fired:
                return False
            self._fired.add(key)
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(subject)
            except Exception:  # one broken listener must not keep the others from ending sessions
                log.exception("%s callback %r failed for %s", self.event, callback, subject)
        return True
