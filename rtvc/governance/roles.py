"""Who is who: the four roles, the identity a checked API key resolves to, and the role check.

``admin`` runs the server; ``owner`` owns voices and grants or revokes their use; ``client`` is an app
that streams; ``auditor`` reads the audit log and resolves watermark tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rtvc.governance.errors import Forbidden

__all__ = ["LOCAL_ADMIN", "ROLES", "KeyInfo", "as_key_info", "require_role"]

ROLES = ("admin", "owner", "client", "auditor")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key's public facts (never its secret). ``id`` is what the audit log records.

    Any record with string ``id``, ``role`` and ``name`` reads as one (:func:`as_key_info`).
    """

    id: str
    role: str
    name: str
    created_at: str | None = None
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# The operator at the machine: the CLI works on the database file directly, so file permissions are the
# boundary and the CLI acts with the admin role. Audit rows name it "local".
LOCAL_ADMIN = KeyInfo(id="local", role="admin", name="local-cli")


def as_key_info(value: Any) -> KeyInfo | None:
    """``value`` as a :class:`KeyInfo`: itself, or any record with string ``id``, ``role`` and ``name``
    (a key record from elsewhere); None for anything else."""
    if isinstance(value, KeyInfo):
        return value
    fields = [getattr(value, name, None) for name in ("id", "role", "name")]
    if not all(isinstance(f, str) for f in fields):
        return None
    return KeyInfo(*fields, created_at=getattr(value, "created_at", None), revoked_at=getattr(value, "revoked_at", None))


def require_role(actor: Any, *roles: str, action: str) -> KeyInfo:
    """``actor`` as a :class:`KeyInfo`; raises :class:`Forbidden` unless it is a live key with one of ``roles``."""
    info = as_key_info(actor)
    if info is None:
        raise Forbidden(f"to {action} the caller must be an authenticated key, got {type(actor).__name__}")
    actor = info
    if not actor.active:
        raise Forbidden(f"key {actor.id} is revoked and may not {action}")
    if actor.role not in roles:
        raise Forbidden(f"role {actor.role!r} may not {action} (needs {' or '.join(roles)})")
    return actor
