"""The voice interface shared by built-in DSP voices and RVC models.

A :class:`Voice` is a shared, immutable description plus whatever heavy state
(weights) all sessions share. :meth:`Voice.open` makes a :class:`VoiceStream`:
one session's private state. The pipeline cuts the input into fixed blocks and
hands each stream a *window* of ``context + block`` samples (float32, mono, at
the stream's processing rate, in [-1, 1]). The stream returns
``block + crossfade + search`` samples:

* stateful streaming voices (the DSP voices) use ``context = crossfade =
  search = 0`` and return exactly ``block`` samples, delayed by ``delay``;
* window-rendering voices (RVC) see left context, render the tail of the
  window and let the pipeline's SOLA stage join consecutive renders.

Engines may batch: :meth:`Voice.run` takes the windows of many streams of the
same voice at once. The default runs them one by one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rtvc.errors import ParamError

__all__ = ["BlockLayout", "ParamSpec", "Voice", "VoiceStream"]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One tunable parameter of a voice, with its unit and allowed range."""

    name: str
    default: float
    minimum: float
    maximum: float
    unit: str
    description: str

    def check(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"parameter {self.name!r} must be a number, got {type(value).__name__}")
        value = float(value)
        if not np.isfinite(value) or not self.minimum <= value <= self.maximum:
            raise ParamError(
                f"parameter {self.name!r}={value:g} is outside {self.minimum:g}..{self.maximum:g} {self.unit}".rstrip()
            )
        return value


@dataclass(frozen=True, slots=True)
class BlockLayout:
    """How a stream wants its input cut. All lengths are samples at the processing rate.

    ``block``: new samples per call. ``context``: past samples prepended (left
    context). ``crossfade`` / ``search``: SOLA crossfade length and search range;
    both 0 when the voice's output joins itself. ``delay``: the stream's own
    delay; the output of the call whose block ends at input sample t covers
    input up to t - delay.
    """

    block: int
    context: int = 0
    crossfade: int = 0
    search: int = 0
    delay: int = 0

    @property
    def window(self) -> int:
        return self.context + self.block

    @property
    def rendered(self) -> int:
        return self.block + self.crossfade + self.search

    @property
    def latency(self) -> int:
        """Samples between an input sample and its converted output (excluding the block wait)."""
        return self.delay + self.crossfade + self.search


class VoiceStream(ABC):
    """One session's state for one voice."""

    layout: BlockLayout
    sample_rate: int

    @abstractmethod
    def process(self, window: np.ndarray) -> np.ndarray:
        """Convert one block.

        Parameters
        ----------
        window : np.ndarray [shape=(layout.window,), dtype=float32]
            ``context`` past samples then ``block`` new samples, in [-1, 1].

        Returns
        -------
        np.ndarray [shape=(layout.rendered,), dtype=float32]
        """

    @abstractmethod
    def update(self, params: Mapping[str, float]) -> None:
        """Apply already-validated parameters from the next block on."""


class Voice(ABC):
    """A voice: its name, parameters and the streams it opens."""

    name: str
    description: str
    kind: str = "dsp"
    #: Processing rate in Hz, or None for "runs at the stream's input rate".
    sample_rate: int | None = None
    params: tuple[ParamSpec, ...] = ()
    #: True for voices whose output timing follows the input sample for sample (SOLA voices shift by up to `search`).
    keeps_timing: bool = True
    #: Block duration this voice works best with; None: the pipeline's configured default.
    default_block_ms: float | None = None

    def block_quantum(self, sample_rate: int) -> int:
        """The block length in samples must be a multiple of this."""
        return 1

    @property
    def batches(self) -> bool:
        """Whether one :meth:`run` over many streams is cheaper than one per stream (it is overridden).

        Engines give a voice that does not batch one stream at a time, so each result can leave at once.
        """
        return type(self).run is not Voice.run

    @abstractmethod
    def open(self, *, sample_rate: int, block: int, params: Mapping[str, float]) -> VoiceStream:
        """A new stream at ``sample_rate`` Hz taking ``block``-sample blocks; params already checked."""

    def run(self, streams: Sequence[VoiceStream], windows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Convert one block for each of several streams of this voice (engines batch through this)."""
        return [stream.process(window) for stream, window in zip(streams, windows, strict=True)]

    def check_params(self, params: Mapping[str, object], *, partial: bool = False) -> dict[str, float]:
        """Validate names and ranges; fill defaults unless ``partial``."""
        specs = {spec.name: spec for spec in self.params}
        unknown = sorted(set(params) - set(specs))
        if unknown:
            allowed = ", ".join(specs) or "none"
            raise ParamError(f"voice {self.name!r} has no parameter {', '.join(unknown)} (allowed: {allowed})")
        checked = {} if partial else {name: spec.default for name, spec in specs.items()}
        checked.update({name: specs[name].check(value) for name, value in params.items()})
        return checked

    def describe(self) -> dict:
        """A JSON-ready description (for ``rtvc voices --json`` and ``GET /v1/voices``)."""
        return {
            "id": self.name,
            "kind": self.kind,
            "description": self.description,
            "sample_rate": self.sample_rate,
            "keeps_timing": self.keeps_timing,
            "params": [asdict(spec) for spec in self.params],
        }
