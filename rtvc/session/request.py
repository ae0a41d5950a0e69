"""``session.start``, validated into a typed request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rtvc.audio.pcm import AudioFormat
from rtvc.governance.validate import PURPOSES
from rtvc.protocol import ProtocolError, validate

__all__ = ["StartRequest"]


@dataclass(frozen=True, slots=True)
class StartRequest:
    """What a client asks for: a voice, a purpose, wire formats, parameters and optionally a block size.

    ``output`` defaults to the input format. Voice names and parameter ranges are
    checked when the session opens (they need the registry).
    """

    voice: str
    purpose: str
    input: AudioFormat
    output: AudioFormat
    params: Mapping[str, Any] = field(default_factory=dict)
    block_ms: float | None = None

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> StartRequest:
        """Validate a ``session.start`` message.

        Raises
        ------
        ProtocolError
            ``bad_message``: wrong type, missing/unknown fields, wrong field types, a purpose not in
            :data:`rtvc.governance.PURPOSES`.
        AudioFormatError
            ``bad_format``: unsupported encoding, sample rate or channel count.
        """
        msg = dict(msg)
        msg.setdefault("type", "session.start")
        validate(msg)
        if msg["type"] != "session.start":
            raise ProtocolError(f"expected session.start first, got {msg['type']}")
        input_format = AudioFormat.from_json(msg["input"])
        output_format = AudioFormat.from_json(msg["output"]) if "output" in msg else input_format
        block_ms = msg.get("block_ms")
        purpose = msg["purpose"].strip()
        if purpose not in PURPOSES:  # consent is granted per purpose: only the fixed list can be matched
            raise ProtocolError(f'session.start "purpose" must be one of {", ".join(PURPOSES)}; got {purpose[:40]!r}')
        return cls(
            voice=msg["voice"],
            purpose=purpose,
            input=input_format,
            output=output_format,
            params=dict(msg.get("params", {})),
            block_ms=float(block_ms) if block_ms is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "session.start",
            "voice": self.voice,
            "purpose": self.purpose,
            "input": self.input.to_json(),
            "output": self.output.to_json(),
            "params": dict(self.params),
        }
        if self.block_ms is not None:
            msg["block_ms"] = self.block_ms
        return msg
