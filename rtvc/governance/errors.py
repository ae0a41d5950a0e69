"""Errors of the governance layer: consent refusals, role checks, bad input, missing records.

Every class carries a stable ``code`` (used on the wire and by the CLI)::

    RtvcError
    ├── ConsentError                     a session may not use this voice now
    │   ├── NoConsent          no_consent            no grant for the voice (or none valid yet)
    │   ├── PurposeNotAllowed  purpose_not_allowed   a live grant exists, not for this purpose
    │   ├── ClientNotAllowed   client_not_allowed    a live grant exists, not for this client
    │   ├── GrantExpired       grant_expired         the grant's valid_until has passed
    │   └── GrantRevoked       grant_revoked         the owner withdrew the grant
    ├── Unauthorized (PermissionError)   unauthorized  unknown, malformed or revoked API key
    ├── Forbidden (PermissionError)      forbidden     the key's role may not do this
    ├── InvalidInput (ValueError)        bad_request   wrong type, unknown value, oversize input
    ├── NotFound (KeyError)              not_found     no such key, voice, grant or session
    ├── Conflict                         conflict      the record exists / is in the wrong state
    ├── ErasureIncomplete                erasure_incomplete  files or loaded copies survived erasure
    └── StoreError                       store_error   the database is unusable (newer schema, corrupt)
"""

from __future__ import annotations

from rtvc.errors import RtvcError

__all__ = [
    "ClientNotAllowed",
    "Conflict",
    "ConsentError",
    "ErasureIncomplete",
    "Forbidden",
    "GrantExpired",
    "GrantRevoked",
    "InvalidInput",
    "NoConsent",
    "NotFound",
    "PurposeNotAllowed",
    "StoreError",
    "Unauthorized",
]


class ConsentError(RtvcError):
    """A session may not use this voice: ``code`` says why, ``grant_id`` names the grant that came closest."""

    code = "no_consent"

    def __init__(self, message: str, *, voice: str | None = None, grant_id: str | None = None) -> None:
        super().__init__(message)
        self.voice = voice
        self.grant_id = grant_id


class NoConsent(ConsentError):
    code = "no_consent"


class PurposeNotAllowed(ConsentError):
    code = "purpose_not_allowed"


class ClientNotAllowed(ConsentError):
    code = "client_not_allowed"


class GrantExpired(ConsentError):
    code = "grant_expired"


class GrantRevoked(ConsentError):
    code = "grant_revoked"


class Unauthorized(RtvcError, PermissionError):
    code = "unauthorized"


class Forbidden(RtvcError, PermissionError):
    code = "forbidden"


class InvalidInput(RtvcError, ValueError):
    code = "bad_request"


class NotFound(RtvcError, KeyError):
    code = "not_found"


class Conflict(RtvcError):
    code = "conflict"


class ErasureIncomplete(RtvcError):
    """Erasure ran but something survived; ``leftovers`` lists the paths and loaders that still hold the voice."""

    code = "erasure_incomplete"

    def __init__(self, message: str, leftovers: list[str]) -> None:
        super().__init__(message)
        self.leftovers = leftovers


class StoreError(RtvcError):
    code = "store_error"
