"""Building one session's stream (pipeline + watermark + bounded queue), wherever the engine runs it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rtvc.errors import ParamError
from rtvc.pipeline import Pipeline
from rtvc.pipeline.pipeline import GATE_PARAM
from rtvc.session.limits import Limits
from rtvc.session.request import StartRequest
from rtvc.session.stream import SessionStream
from rtvc.session.watermark import make_watermark
from rtvc.voices.base import Voice

__all__ = ["StreamInfo", "build_stream", "check_update", "default_registry"]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the session needs to know about a stream built for it (picklable: crosses processes)."""

    block_ms: float
    latency_ms: float
    latency_samples: int
    params: dict[str, float | None]
    block_out: int  # output samples per block
    input_queue_samples: int
    watermarked: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_stream(voice: Voice, request: StartRequest, *, config: Mapping[str, Any], limits: Limits,
                 data_dir: Path, watermark_token: int | None) -> tuple[SessionStream, StreamInfo]:
    """A ready stream for ``request``. Blocking (may load a model and the watermark key): not on the event loop.

    Raises
    ------
    ParamError, AudioFormatError
        Bad parameters or block size.
    WatermarkFailed
        The watermark is installed but could not be created.
    """
    block_ms = request.block_ms
    if block_ms is not None and not limits.min_block_ms <= block_ms <= limits.max_block_ms:
        raise ParamError(f"block_ms={block_ms:g} is outside {limits.min_block_ms:g}..{limits.max_block_ms:g} ms")
    postprocess = None
    if watermark_token is not None:
        postprocess = make_watermark(data_dir, request.output.sample_rate, watermark_token)
    pipeline_config = config.get("pipeline", {})
    pipeline = Pipeline(
        voice,
        input=request.input,
        output=request.output,
        params=request.params,
        block_ms=block_ms,
        postprocess=postprocess,
        gate_db=float(pipeline_config.get("gate_db", -60.0)),
        max_buffer_ms=max(100.0, 2 * limits.max_block_ms),  # the session queue bounds input; this never fills
        default_block_ms=float(pipeline_config.get("block_ms", 20.0)),
    )
    stream = SessionStream(pipeline, input_queue_ms=limits.input_queue_ms, realtime_lead_ms=limits.realtime_lead_ms)
    info = StreamInfo(
        block_ms=pipeline.block_ms,
        latency_ms=pipeline.latency_ms,
        latency_samples=pipeline.latency,
        params={k: (v if math.isfinite(v) else None) for k, v in pipeline.params.items()},  # JSON has no inf
        block_out=pipeline.block_out,
        input_queue_samples=stream.queue.capacity,
        watermarked=postprocess is not None,
    )
    return stream, info


def check_update(voice: Voice, params: Mapping[str, Any]) -> None:
    """Validate a ``session.update`` where the pipeline is not at hand (ParamError); mirrors Pipeline.update."""
    params = dict(params)
    if GATE_PARAM in params:
        Pipeline._check_gate(params.pop(GATE_PARAM))
    voice.check_params(params, partial=True)


def default_registry(config: Mapping[str, Any], data_dir: Path | None = None) -> Any:
    """The configured voices: built-ins, plus the RVC models imported into the data directory."""
    from rtvc.voices.registry import VoiceRegistry

    return VoiceRegistry.from_config(config, data_dir=data_dir)
