"""The streaming pipeline of one session.

Stages, in order::

    wire bytes -> decode/downmix -> input ring (bounded) -> fixed blocks
      -> resample to the voice rate -> noise gate -> left context window
      -> voice (the model call; engines batch it) -> SOLA
      -> resample to the output rate -> postprocess (watermark) -> encode

Blocks have the same duration at every rate (their length is a whole number
of samples at the input, voice and output rates), so every stage sees the same
block sequence whatever the caller's chunking: the output is a deterministic
function of the input samples, the voice and its parameters. After the fixed
latency ``L`` (output samples), N input samples give exactly N output samples
(at the output rate, block by block); ``last=True`` flushes the tail so the
whole input comes out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import ceil, gcd, lcm
from typing import Protocol

import numpy as np

from rtvc.audio.pcm import AudioFormat, check_audio, to_mono
from rtvc.audio.resample import ResampleStream
from rtvc.errors import AudioFormatError, AudioValueError, ParamError
from rtvc.pipeline.gate import NoiseGate
from rtvc.pipeline.ring import RingBuffer
from rtvc.pipeline.sola import Sola
from rtvc.voices.base import Voice, VoiceStream

__all__ = ["GATE_PARAM", "BlockJob", "Pipeline", "PostProcess"]

GATE_PARAM = "gate_db"  # pipeline-level parameter: noise gate threshold in dBFS (-inf disables)
GATE_RANGE = (-120.0, 0.0)


class PostProcess(Protocol):
    """A same-length stage at the output rate (the watermark)."""

    def process(self, x: np.ndarray, *, last: bool = False) -> np.ndarray: ...


@dataclass(slots=True)
class BlockJob:
    """One block ready for the voice: the engine calls ``voice.run([job.stream], [job.window])``."""

    stream: VoiceStream
    window: np.ndarray
    last: bool = False


class Pipeline:
    """Convert one stream of audio through ``voice``.

    Parameters
    ----------
    voice : Voice
    input, output : AudioFormat
        Wire formats of what comes in and what goes out.
    params : mapping
        Voice parameters plus ``gate_db``; missing ones take the voice's defaults.
    block_ms : float, optional
        Block duration; rounded to the nearest length that is whole at every rate involved.
        Default: the voice's ``default_block_ms``, else ``default_block_ms``.
    postprocess : PostProcess, optional
        Same-length stage at the output rate (the watermark). If it raises,
        the error propagates and no audio of that block is returned.
    max_buffer_ms : float
        Input ring capacity; beyond it the oldest input is dropped and counted.
    """

    def __init__(self, voice: Voice, *, input: AudioFormat, output: AudioFormat,
                 params: Mapping[str, object] | None = None, block_ms: float | None = None,
                 postprocess: PostProcess | None = None, gate_db: float | None = None,
                 max_buffer_ms: float = 2000.0, default_block_ms: float = 10.0) -> None:
        self.voice, self.input, self.output = voice, input, output
        params = dict(params or {})
        if gate_db is not None:
            params.setdefault(GATE_PARAM, gate_db)
        gate_threshold = self._check_gate(params.pop(GATE_PARAM, -60.0))
        self.params = voice.check_params(params)
        self.params[GATE_PARAM] = gate_threshold

        r_in, r_out = input.sample_rate, output.sample_rate
        r_v = voice.sample_rate or r_in
        self.voice_rate = r_v
        g = gcd(gcd(r_in, r_v), r_out)
        unit = lcm(r_v // g, voice.block_quantum(r_v))
        wanted = (block_ms or voice.default_block_ms or default_block_ms) * r_v / 1000.0
        if not 0 < wanted <= r_v:  # at most one second
            raise ParamError(f"block_ms={block_ms} must be in (0, 1000]")
        self.block_voice = unit * max(1, round(wanted / unit))
        self.block_in = self.block_voice * r_in // r_v
        self.block_out = self.block_voice * r_out // r_v
        self.block_ms = 1000.0 * self.block_voice / r_v

        voice_params = {name: value for name, value in self.params.items() if name != GATE_PARAM}
        self._stream = voice.open(sample_rate=r_v, block=self.block_voice, params=voice_params)
        layout = self._stream.layout
        if layout.block != self.block_voice:
            raise AssertionError(f"voice {voice.name} changed the block ({layout.block} != {self.block_voice})")
        self._in_rs = ResampleStream(r_in, r_v)
        self._out_rs = ResampleStream(r_v, r_out)
        self._gate = NoiseGate(r_v, block=self.block_voice, threshold_db=gate_threshold)
        self._sola = Sola(block=layout.block, crossfade=layout.crossfade, search=layout.search)
        self._context = np.zeros(layout.context, dtype=np.float32)
        self._postprocess = postprocess

        # Latency in output samples: input resampler, voice (+SOLA), output resampler.
        self.latency_exact = (
            self._in_rs.delay() * Fraction(r_out, r_v)
            + Fraction(layout.latency * r_out, r_v)
            + self._out_rs.delay()
        )
        self.latency = round(self.latency_exact)
        self.latency_ms = float(self.latency_exact) * 1000.0 / r_out

        capacity = max(2 * self.block_in, round(max_buffer_ms * r_in / 1000.0))
        self._ring = RingBuffer(capacity)
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        self.samples_in = 0  # accepted input samples
        self.samples_out = 0  # emitted output samples
        self.dropped_in = 0  # input samples dropped by the bounded ring
        self._flushing = False
        self._closed = False
        self._flush_target = 0  # total output samples once flushed
        self._pad_left = 0  # silence still to append while flushing

    # -- parameters -----------------------------------------------------------------------------------

    @staticmethod
    def _check_gate(value: object) -> float:
        if value is None:
            return float("-inf")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"parameter {GATE_PARAM!r} must be a number (dBFS), got {type(value).__name__}")
        value = float(value)
        if value == float("-inf"):
            return value
        if not GATE_RANGE[0] <= value <= GATE_RANGE[1]:
            raise ParamError(f"parameter {GATE_PARAM!r}={value:g} is outside {GATE_RANGE[0]:g}..{GATE_RANGE[1]:g} dBFS")
        return value

    def update(self, params: Mapping[str, object]) -> None:
        """Validate now (raises ParamError, changes nothing then); apply at the next block."""
        params = dict(params)
        checked: dict[str, float] = {}
        if GATE_PARAM in params:
            checked[GATE_PARAM] = self._check_gate(params.pop(GATE_PARAM))
        checked.update(self.voice.check_params(params, partial=True))
        with self._lock:
            self._pending.update(checked)

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        self.params.update(pending)
        if GATE_PARAM in pending:
            self._gate.set_threshold(pending.pop(GATE_PARAM))
        if pending:
            self._stream.update(pending)

    # -- input ----------------------------------------------------------------------------------------

    def _as_mono(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise AudioValueError(f"pipeline input must be float audio in [-1, 1], got dtype {x.dtype}")
        if x.ndim == 2 and x.shape[1] != self.input.channels:
            raise AudioFormatError(f"expected {self.input.channels} channel(s), got {x.shape[1]}")
        if x.ndim not in (1, 2):
            raise AudioFormatError(f"audio must be shaped (n,) or (n, channels), got {x.shape}")
        check_audio(x)
        return to_mono(x.astype(np.float32, copy=False))

    def feed(self, x: np.ndarray) -> int:
        """Buffer input (float ``(n,)`` or ``(n, channels)``); return samples dropped to stay bounded."""
        if self._flushing or self._closed:
            raise AudioValueError("stream already ended (last=True); no more input accepted")
        mono = self._as_mono(x)
        with self._lock:
            dropped = self._ring.write(mono)
            self.samples_in += len(mono) - dropped
            self.dropped_in += dropped
        return dropped

    def end_input(self) -> None:
        """No more input: pad the tail with silence so the whole stream comes out."""
        with self._lock:
            if self._flushing:
                return
            self._flushing = True
            r_in, r_out = self.input.sample_rate, self.output.sample_rate
            self._flush_target = ceil(Fraction(self.samples_in * r_out, r_in)) + ceil(self.latency_exact)
            needed = ceil(Fraction(self._flush_target - self.samples_out, self.block_out))
            # Silence is added lazily in prepare_block so that it never pushes real input out of the ring.
            self._pad_left = max(0, needed * self.block_in - len(self._ring))

    # -- blocks ---------------------------------------------------------------------------------------

    def prepare_block(self) -> BlockJob | None:
        """Pop one block and run the stages before the voice; None if no whole block is buffered."""
        with self._lock:
            if self._closed:
                return None
            if len(self._ring) < self.block_in and self._pad_left:
                pad = min(self._pad_left, self.block_in - len(self._ring))
                self._ring.write(np.zeros(pad, dtype=np.float32))
                self._pad_left -= pad
            if len(self._ring) < self.block_in:
                return None
            block = self._ring.read(self.block_in)
            last = self._flushing and self._pad_left == 0 and len(self._ring) < self.block_in
        self._apply_pending()
        x = self._gate.process(self._in_rs.process(block))
        if self._context.size:
            window = np.concatenate([self._context, x])
            self._context = window[-self._context.size :]
        else:
            window = x
        return BlockJob(self._stream, window, last)

    def finish_block(self, job: BlockJob, rendered: np.ndarray) -> np.ndarray:
        """Run the stages after the voice; returns float32 ``(block_out, channels)``."""
        y = self._out_rs.process(self._sola.process(np.asarray(rendered, dtype=np.float32)))
        if self._postprocess is not None:
            y = self._postprocess.process(y, last=job.last)
        if self._flushing:
            y = y[: max(0, self._flush_target - self.samples_out)]
            if job.last:
                self._closed = True
        self.samples_out += len(y)
        if self.output.channels == 2:
            return np.repeat(y[:, None], 2, axis=1)
        return y[:, None]

    def run_block(self, job: BlockJob) -> np.ndarray:
        return self.finish_block(job, self.voice.run([job.stream], [job.window])[0])

    # -- one-call API ---------------------------------------------------------------------------------

    def process(self, x: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Feed ``x`` and convert every whole block; returns float32 ``(m, output.channels)``."""
        x = np.asarray(x)
        if len(x) == 0 and not last:
            raise AudioValueError("empty input chunk; send audio or last=True")
        if len(x):
            self.feed(x)
        if last:
            self.end_input()
        out = []
        while (job := self.prepare_block()) is not None:
            out.append(self.run_block(job))
        if not out:
            return np.zeros((0, self.output.channels), dtype=np.float32)
        return np.concatenate(out)

    def process_bytes(self, data: bytes, *, last: bool = False) -> bytes:
        """Wire bytes in (input format) -> wire bytes out (output format)."""
        return self.output.encode(self.process(self.input.decode(data), last=last))

    def describe(self) -> dict:
        return {
            "voice": self.voice.name,
            "voice_rate": self.voice_rate,
            "block_ms": self.block_ms,
            "block_samples": {"input": self.block_in, "voice": self.block_voice, "output": self.block_out},
            "latency_samples": self.latency,
            "latency_ms": self.latency_ms,
            "params": dict(self.params),
        }

