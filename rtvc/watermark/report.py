"""What detection found: presence score, marked spans per second, tokens with their spans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DetectionReport", "SecondScore", "Span", "TokenSpan"]


@dataclass(frozen=True)
class Span:
    """A stretch of the input, in seconds from its start."""

    start_s: float
    end_s: float

    def to_json(self) -> dict[str, Any]:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3)}


@dataclass(frozen=True)
class SecondScore:
    """Localisation: the pilot z-score of one second of input at the alignment of a detected mark,
    and the token its data cells match (None if none was decoded or none matches)."""

    start_s: float
    end_s: float
    score: float
    marked: bool
    token: int | None = None

    def to_json(self) -> dict[str, Any]:
        token = None if self.token is None else f"{self.token:016x}"
        return {**Span(self.start_s, self.end_s).to_json(), "score": round(self.score, 2), "marked": self.marked,
                "token": token}


@dataclass(frozen=True)
class TokenSpan:
    """A decoded session token (its keyed tag checked) and the marked span it was read from."""

    token: int
    start_s: float
    end_s: float

    @property
    def hex(self) -> str:
        return f"{self.token:016x}"

    def to_json(self) -> dict[str, Any]:
        return {"token": self.hex, **Span(self.start_s, self.end_s).to_json()}


@dataclass(frozen=True)
class DetectionReport:
    """Result of :func:`rtvc.watermark.detect`.

    Attributes
    ----------
    score : float
        Presence score: the best pilot z-score of any 2 s window (of the whole input if shorter).
    threshold : float
        The score above which the mark is declared present; it rises with the number of windows
        searched so that a whole unmarked input is flagged with probability <= ~1e-3.
    present : bool
        ``score >= threshold``.
    seconds : list of SecondScore
        Per-second localisation (empty unless present).
    spans : list of Span
        Marked seconds merged into spans.
    tokens : list of TokenSpan
        Tokens decoded from the marked spans.
    """

    duration_s: float
    sample_rate: int
    key_id: str
    score: float
    threshold: float
    present: bool
    seconds: list[SecondScore] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    tokens: list[TokenSpan] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "duration_s": round(self.duration_s, 3),
            "sample_rate": self.sample_rate,
            "key_id": self.key_id,
            "present": self.present,
            "score": round(self.score, 2),
            "threshold": round(self.threshold, 2),
            "spans": [s.to_json() for s in self.spans],
            "tokens": [t.to_json() for t in self.tokens],
            "seconds": [s.to_json() for s in self.seconds],
        }
