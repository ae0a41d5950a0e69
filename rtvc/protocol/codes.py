"""Stable error codes and WebSocket close codes of rtvc.v1.

Error codes travel in ``{"type": "error", "code": ..., "message": ...}``; clients
branch on them, so they never change meaning. Close codes say why the server
closed the connection; :data:`CLOSE_FOR_ERROR` maps each error code to the close
code used when that error ends the session.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from rtvc.errors import RtvcError

__all__ = ["CLOSE_FOR_ERROR", "CONSENT_CODES", "CloseCode", "ErrorCode", "ProtocolError", "close_code_for"]


class ErrorCode(StrEnum):
    """Machine-readable error codes (the ``code`` field of an error message)."""

    BAD_MESSAGE = "bad_message"  # not JSON, not an object, unknown type, missing/invalid field, wrong order
    BAD_FRAME = "bad_frame"  # binary frame: short or unknown header, partial sample, too long
    BAD_AUDIO = "bad_audio"  # NaN or infinite float samples
    BAD_FORMAT = "bad_format"  # unsupported encoding / sample rate / channels
    BAD_PARAMS = "bad_params"  # voice parameter unknown or out of range
    UNKNOWN_VOICE = "unknown_voice"
    UNAUTHORIZED = "unauthorized"  # missing, unknown or revoked key (HTTP 401 before the upgrade)
    FORBIDDEN = "forbidden"  # valid key without the needed role (HTTP 403 before the upgrade)
    MESSAGE_TOO_BIG = "message_too_big"
    IDLE_TIMEOUT = "idle_timeout"  # nothing received from the client for too long
    OVERLOADED = "overloaded"  # admission control refused a new session; retry later
    WATERMARK_FAILED = "watermark_failed"  # the watermark could not be applied: no audio is sent
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"
    # consent refusals (session.start), from rtvc.governance: no live grant covers this voice, purpose, client, now
    NO_CONSENT = "no_consent"  # the voice has no grant (or no owner on record, or was erased)
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"
    CLIENT_NOT_ALLOWED = "client_not_allowed"
    GRANT_EXPIRED = "grant_expired"
    GRANT_REVOKED = "grant_revoked"


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (RFC 6455 section 7.4 plus the 4000-4999 private range)."""

    NORMAL = 1000  # session.ended was sent
    GOING_AWAY = 1001  # server shutting down
    PROTOCOL_ERROR = 1002  # malformed binary frame
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011  # internal error or watermark failure
    TRY_AGAIN_LATER = 1013  # overloaded
    BAD_REQUEST = 4400  # invalid session.start (message, format, params)
    UNAUTHORIZED = 4401  # key revoked during the session
    FORBIDDEN = 4403
    UNKNOWN_VOICE = 4404
    IDLE_TIMEOUT = 4408
    CONSENT_REFUSED = 4451  # like HTTP 451: the voice's owner has not agreed to this use


CLOSE_FOR_ERROR: dict[str, CloseCode] = {
    ErrorCode.BAD_MESSAGE: CloseCode.BAD_REQUEST,
    ErrorCode.BAD_FRAME: CloseCode.PROTOCOL_ERROR,
    ErrorCode.BAD_AUDIO: CloseCode.PROTOCOL_ERROR,
    ErrorCode.BAD_FORMAT: CloseCode.BAD_REQUEST,
    ErrorCode.BAD_PARAMS: CloseCode.BAD_REQUEST,
    ErrorCode.UNKNOWN_VOICE: CloseCode.UNKNOWN_VOICE,
    ErrorCode.UNAUTHORIZED: CloseCode.UNAUTHORIZED,
    ErrorCode.FORBIDDEN: CloseCode.FORBIDDEN,
    ErrorCode.MESSAGE_TOO_BIG: CloseCode.MESSAGE_TOO_BIG,
    ErrorCode.IDLE_TIMEOUT: CloseCode.IDLE_TIMEOUT,
    ErrorCode.OVERLOADED: CloseCode.TRY_AGAIN_LATER,
    ErrorCode.WATERMARK_FAILED: CloseCode.INTERNAL_ERROR,
    ErrorCode.SHUTTING_DOWN: CloseCode.GOING_AWAY,
    ErrorCode.INTERNAL: CloseCode.INTERNAL_ERROR,
    ErrorCode.NO_CONSENT: CloseCode.CONSENT_REFUSED,
    ErrorCode.PURPOSE_NOT_ALLOWED: CloseCode.CONSENT_REFUSED,
    ErrorCode.CLIENT_NOT_ALLOWED: CloseCode.CONSENT_REFUSED,
    ErrorCode.GRANT_EXPIRED: CloseCode.CONSENT_REFUSED,
    ErrorCode.GRANT_REVOKED: CloseCode.CONSENT_REFUSED,
}

CONSENT_CODES = frozenset({ErrorCode.NO_CONSENT, ErrorCode.PURPOSE_NOT_ALLOWED, ErrorCode.CLIENT_NOT_ALLOWED,
                           ErrorCode.GRANT_EXPIRED, ErrorCode.GRANT_REVOKED})


def close_code_for(code: str) -> CloseCode:
    """The close code for an error code; unknown codes (from other layers) close as internal errors."""
    return CLOSE_FOR_ERROR.get(code, CloseCode.INTERNAL_ERROR)


class ProtocolError(RtvcError, ValueError):
    """A message or frame that breaks rtvc.v1; ``code`` is one of :class:`ErrorCode`."""

    code = ErrorCode.BAD_MESSAGE.value

    def __init__(self, message: str, code: str = ErrorCode.BAD_MESSAGE) -> None:
        super().__init__(message)
        self.code = str(code)
