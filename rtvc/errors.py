"""The one exception root of rtvc.

Hierarchy::

    RtvcError
    ├── ConfigError (ValueError)          bad or unknown configuration
    ├── AudioFormatError (ValueError)     unsupported rate, encoding, channels; odd byte counts
    ├── AudioValueError (ValueError)      NaN / inf / empty audio
    ├── ParamError (ValueError)           voice parameter out of range or unknown
    ├── UnknownVoice (KeyError)           no voice by that name
    ├── ModelLoadError                    a model file is corrupt, truncated or mismatched
    ├── EngineError
    │   ├── Overloaded                    the engine cannot take another session
    │   ├── RemoteError                   raised in an engine process (rtvc.session.remote)
    │   └── VoiceErased                   a session's voice was erased under it (rtvc.session.backend)
    ├── ProtocolError (ValueError)        rtvc.v1 violations, with their code (rtvc.protocol)
    ├── WatermarkError                    the watermark cannot be made or applied (rtvc.watermark)
    ├── WatermarkFailed                   the session's watermark stage failed: fail closed (rtvc.session)
    ├── MessageTooBig                     an HTTP body over its limit (rtvc.server.routes)
    └── governance (rtvc.governance.errors):
        ├── ConsentError                  no_consent, purpose_not_allowed, client_not_allowed,
        │                                 grant_expired, grant_revoked
        ├── Unauthorized, Forbidden (PermissionError)   no valid key / wrong role
        ├── InvalidInput (ValueError), NotFound (KeyError), Conflict
        └── ErasureIncomplete, StoreError

Every error carries a message that says what was wrong and what was expected.
"""

from __future__ import annotations

__all__ = [
    "AudioFormatError",
    "AudioValueError",
    "ConfigError",
    "EngineError",
    "ModelLoadError",
    "Overloaded",
    "ParamError",
    "RtvcError",
    "UnknownVoice",
]


class RtvcError(Exception):
    """Root of every error rtvc raises on purpose."""

    code = "internal"  # stable machine-readable code, used on the wire

    def __str__(self) -> str:
        return self.args[0] if self.args else self.__class__.__name__


class ConfigError(RtvcError, ValueError):
    code = "bad_config"


class AudioFormatError(RtvcError, ValueError):
    code = "bad_format"


class AudioValueError(RtvcError, ValueError):
    code = "bad_audio"


class ParamError(RtvcError, ValueError):
    code = "bad_params"


class UnknownVoice(RtvcError, KeyError):
    code = "unknown_voice"

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f"; known voices: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown voice {name!r}{hint}")
        self.name = name


class ModelLoadError(RtvcError):
    code = "bad_model"


class EngineError(RtvcError):
    code = "internal"


class Overloaded(EngineError):
    code = "overloaded"
