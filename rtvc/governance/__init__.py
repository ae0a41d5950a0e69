"""Governance: API keys and roles, voice ownership, consent grants, the session ledger, the hash-chained
audit log with signed checkpoints, and voice erasure. One SQLite database in the data dir.

Start with :class:`GovernanceStore` (``store.py``); errors are in ``errors.py``.
"""

from __future__ import annotations

from rtvc.governance.errors import (
    ClientNotAllowed,
    ConsentError,
    ErasureIncomplete,
    Forbidden,
    GrantExpired,
    GrantRevoked,
    InvalidInput,
    NoConsent,
    NotFound,
    PurposeNotAllowed,
    Unauthorized,
)
from rtvc.governance.grants import Grant
from rtvc.governance.roles import LOCAL_ADMIN, ROLES, KeyInfo
from rtvc.governance.sessions import Provenance, SessionRecord
from rtvc.governance.store import GovernanceStore
from rtvc.governance.validate import PURPOSES

__all__ = [
    "LOCAL_ADMIN",
    "PURPOSES",
    "ROLES",
    "ClientNotAllowed",
    "ConsentError",
    "ErasureIncomplete",
    "Forbidden",
    "GovernanceStore",
    "Grant",
    "GrantExpired",
    "GrantRevoked",
    "InvalidInput",
    "KeyInfo",
    "NoConsent",
    "NotFound",
    "Provenance",
    "PurposeNotAllowed",
    "SessionRecord",
    "Unauthorized",
]
