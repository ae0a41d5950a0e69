"""PCM wire formats: validation at the boundary, decode to float32, encode back.

Inside rtvc, audio is float32 in [-1, 1], shape ``(n,)`` (mono) or ``(n, channels)``.
On the wire it is interleaved little-endian ``pcm_s16le`` or ``pcm_f32le``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtvc.errors import AudioFormatError, AudioValueError

__all__ = ["ENCODINGS", "SUPPORTED_RATES", "AudioFormat", "check_audio", "to_mono"]

SUPPORTED_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
ENCODINGS = {"pcm_s16le": np.dtype("<i2"), "pcm_f32le": np.dtype("<f4")}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """An interleaved PCM format: ``encoding`` in ENCODINGS, ``sample_rate`` in Hz, ``channels`` 1 or 2."""

    encoding: str = "pcm_s16le"
    sample_rate: int = 48000
    channels: int = 1

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise AudioFormatError(f"unsupported encoding {self.encoding!r}; use one of {', '.join(ENCODINGS)}")
        if isinstance(self.sample_rate, bool) or self.sample_rate not in SUPPORTED_RATES:
            rates = ", ".join(str(r) for r in SUPPORTED_RATES)
            raise AudioFormatError(f"unsupported sample rate {self.sample_rate!r} Hz; use one of {rates}")
        if isinstance(self.channels, bool) or self.channels not in (1, 2):
            raise AudioFormatError(f"unsupported channel count {self.channels!r}; use 1 or 2")

    @classmethod
    def from_json(cls, obj: object) -> AudioFormat:
        if not isinstance(obj, dict):
            raise AudioFormatError("audio format must be an object with encoding, sample_rate, channels")
        unknown = set(obj) - {"encoding", "sample_rate", "channels"}
        if unknown:
            raise AudioFormatError(f"unknown audio format field(s): {', '.join(sorted(unknown))}")
        return cls(
            encoding=obj.get("encoding", "pcm_s16le"),
            sample_rate=obj.get("sample_rate", 48000),
            channels=obj.get("channels", 1),
        )

    def to_json(self) -> dict:
        return {"encoding": self.encoding, "sample_rate": self.sample_rate, "channels": self.channels}

    @property
    def dtype(self) -> np.dtype:
        return ENCODINGS[self.encoding]

    @property
    def frame_bytes(self) -> int:
        """Bytes per sample frame (all channels)."""
        return self.dtype.itemsize * self.channels

    def decode(self, data: bytes | bytearray | memoryview) -> np.ndarray:
        """Wire bytes -> float32 ``(n, channels)``. Raises on partial frames and non-finite floats."""
        if len(data) % self.frame_bytes:
            raise AudioFormatError(
                f"{len(data)} bytes is not a whole number of {self.frame_bytes}-byte frames "
                f"({self.encoding}, {self.channels} ch)"
            )
        raw = np.frombuffer(data, dtype=self.dtype).reshape(-1, self.channels)
        if self.encoding == "pcm_s16le":
            return raw.astype(np.float32) / np.float32(32768.0)
        samples = raw.astype(np.float32)
        check_audio(samples)
        return samples

    def encode(self, samples: np.ndarray) -> bytes:
        """float32 ``(n,)`` or ``(n, channels)`` -> wire bytes; mono is duplicated to stereo if needed.

        Out-of-range values are clipped (int16 has no headroom; f32 keeps the same [-1, 1] contract).
        """
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[:, None]
        if samples.shape[1] != self.channels:
            samples = np.repeat(to_mono(samples)[:, None], self.channels, axis=1)
        if self.encoding == "pcm_s16le":  # the exact inverse of decode: k / 32768 -> k
            return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()
        return np.clip(samples, -1.0, 1.0).astype("<f4").tobytes()


def to_mono(samples: np.ndarray) -> np.ndarray:
    """``(n,)`` or ``(n, channels)`` -> ``(n,)`` float32, averaging channels."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2 or samples.shape[1] not in (1, 2):
        raise AudioFormatError(f"audio must be shaped (n,) or (n, 1|2), got {samples.shape}")
    if samples.shape[1] == 1:
        return samples[:, 0]
    return (samples[:, 0] + samples[:, 1]) * np.float32(0.5)


def check_audio(samples: np.ndarray) -> None:
    """Reject non-float or non-finite audio: NaN/inf are errors, never silently replaced."""
    if not np.issubdtype(samples.dtype, np.floating):
        raise AudioValueError(f"audio must be floating point, got {samples.dtype}")
    if not np.isfinite(samples).all():
        bad = int(np.size(samples) - np.count_nonzero(np.isfinite(samples)))
        raise AudioValueError(f"audio contains {bad} NaN/inf sample(s); rejected, nothing was processed")
