"""Input checks for the governance API: every value is checked before anything is written.

Times are stored as fixed-width UTC ISO-8601 strings (``2025-01-31T12:00:00.000000Z``): they sort
lexicographically in SQL and read the same in every language. The API takes epoch seconds, aware
datetimes or such strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rtvc.governance.errors import InvalidInput

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_REASON_CHARS",
    "MAX_STATEMENT_CHARS",
    "PURPOSES",
    "check_choice",
    "check_id",
    "check_key_id",
    "check_key_name",
    "check_name",
    "check_purpose",
    "check_purposes",
    "check_text",
    "check_token",
    "iso_time",
    "now_iso",
]

PURPOSES = ("live_streaming", "game_character", "accessibility", "dubbing", "research")
MAX_NAME_CHARS = 64
MAX_STATEMENT_CHARS = 10_000
MAX_REASON_CHARS = 500
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ID = re.compile(r"[a-z]{1,3}_[0-9a-f]{8,32}")
_KEY_ID = re.compile(r"[0-9a-f]{12}")
_TOKEN = re.compile(r"[0-9a-f]{16}")
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def now_iso() -> str:
    return datetime.now(UTC).strftime(_ISO_FORMAT)


def iso_time(value: Any, field: str = "time") -> str:
    """``value`` (epoch seconds, aware datetime or ISO-8601 string) as the canonical UTC string."""
    if value is None:
        return now_iso()
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a time (epoch seconds or ISO-8601), got bool")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidInput(f"{field} must be finite, got {value!r}")
        try:
            stamp = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput(f"{field}={value!r} is not a representable time") from None
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{field} must be timezone-aware, got a naive datetime")
        stamp = value.astimezone(UTC)
    elif isinstance(value, str):
        if len(value) > 40:
            raise InvalidInput(f"{field} is too long for a time ({len(value)} chars)")
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{field}={value!r} is not an ISO-8601 time (e.g. 2025-01-31T12:00:00Z)") from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)  # CLI convenience: a bare date/time means UTC
        stamp = stamp.astimezone(UTC)
    else:
        raise InvalidInput(f"{field} must be epoch seconds, a datetime or an ISO-8601 string, got {type(value).__name__}")
    if not _EARLIEST <= stamp < _LATEST:
        raise InvalidInput(f"{field}={stamp.isoformat()} is outside 2000..9000")
    return stamp.strftime(_ISO_FORMAT)


def check_text(value: Any, field: str, *, max_chars: int, required: bool = True) -> str | None:
    """A string of at most ``max_chars`` characters; blank counts as missing."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, got {type(value).__name__}")
    if len(value) > max_chars:
        raise InvalidInput(f"{field} is {len(value)} characters; at most {max_chars} allowed")
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters")
    if not value.strip():
        if required:
            raise InvalidInput(f"{field} must not be empty")
        return None
    return value


def check_name(value: Any, field: str = "name") -> str:
    """A key or voice name: 1-64 of letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit."""
    check_text(value, field, max_chars=MAX_NAME_CHARS)
    if not _NAME.fullmatch(value):
        raise InvalidInput(f"{field}={value!r} may hold only letters, digits, '.', '_', '-' (first a letter or digit)")
    return value


def check_key_name(value: Any, field: str = "key name") -> str:
    """A key's label: 1-64 printable characters without commas (grants list names comma-separated)."""
    check_text(value, field, max_chars=MAX_NAME_CHARS)
    if value != value.strip() or "," in value or not value.isprintable():
        raise InvalidInput(f"{field}={value!r} must be printable, without commas or surrounding spaces")
    return value


def check_id(value: Any, field: str) -> str:
    """A record id as the governance store makes them (``g_…`` for grants)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string id, got {type(value).__name__}")
    if len(value) > 40 or not _ID.fullmatch(value):
        raise InvalidInput(f"{field}={value[:40]!r} is not an rtvc id (like g_0123abcd…)")
    return value


def check_key_id(value: Any, field: str = "key") -> str:
    """An API key id: 12 lowercase hex digits."""
    if not isinstance(value, str) or not _KEY_ID.fullmatch(value):
        raise InvalidInput(f"{field}={str(value)[:40]!r} is not a key id (12 hex digits)")
    return value


def check_purpose(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"purpose must be a string, got {type(value).__name__}")
    if value not in PURPOSES:
        raise InvalidInput(f"unknown purpose {value[:40]!r}; allowed: {', '.join(PURPOSES)}")
    return value


def check_purposes(values: Any) -> list[str]:
    """A non-empty list of distinct purposes, returned in the canonical order of :data:`PURPOSES`."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidInput(f"purposes must be a list of strings, got {type(values).__name__}")
    values = list(values)
    if not values or len(values) > len(PURPOSES):
        raise InvalidInput(f"purposes must list 1..{len(PURPOSES)} of: {', '.join(PURPOSES)}")
    chosen = {check_purpose(v) for v in values}
    return [p for p in PURPOSES if p in chosen]


def check_choice(value: Any, field: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(f"{field} must be one of {', '.join(choices)}, got {str(value)[:40]!r}")
    return value


def check_token(value: Any) -> str:
    """A 64-bit watermark token (int, 8 bytes or 16 hex digits) as 16 lowercase hex digits."""
    if isinstance(value, bool):
        raise InvalidInput("watermark token must be a 64-bit int, 8 bytes or 16 hex digits, got bool")
    if isinstance(value, int):
        if not 0 <= value < 1 << 64:
            raise InvalidInput("watermark token must fit in 64 unsigned bits")
        return f"{value:016x}"
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 8:
            raise InvalidInput(f"watermark token must be 8 bytes, got {len(value)}")
        return bytes(value).hex()
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0x")
        if _TOKEN.fullmatch(text):
            return text
        raise InvalidInput(f"watermark token {value[:40]!r} is not 16 hex digits")
    raise InvalidInput(f"watermark token must be a 64-bit int, 8 bytes or 16 hex digits, got {type(value).__name__}")
