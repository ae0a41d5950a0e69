"""Shared by the client, browser and WebRTC tests: a live server, real speech, and checks on converted audio."""

from __future__ import annotations

import numpy as np
import parselmouth
import soundfile as sf
from scipy.signal import resample_poly

from tests.conftest import speech_files
from tests.server.conftest import RunningServer, start_server

__all__ = ["PITCH_VOICE", "RunningServer", "active_seconds", "median_f0", "speech_at", "start_server"]

PITCH_VOICE = "higher"  # a built-in voice with a `pitch` parameter (semitones) that keeps the formants
SPEECH_INDEX = 3  # a male speaker: a pitch shift up is easy to see


def speech_at(rate: int, seconds: float | None = None) -> np.ndarray:
    """The shared male utterance, float32 mono at ``rate`` Hz (optionally cut to ``seconds``)."""
    x, source_rate = sf.read(str(speech_files()[SPEECH_INDEX]), dtype="float32")
    if rate != source_rate:
        g = np.gcd(rate, source_rate)
        x = resample_poly(x, rate // g, source_rate // g).astype(np.float32)
    return x if seconds is None else x[: round(seconds * rate)]


def median_f0(x: np.ndarray, rate: int) -> float:
    """Median F0 in Hz over voiced frames (Praat's autocorrelation tracker, 60..500 Hz)."""
    pitch = parselmouth.Sound(np.asarray(x, dtype=np.float64), sampling_frequency=rate).to_pitch(
        time_step=0.01, pitch_floor=60.0, pitch_ceiling=500.0)
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    if len(voiced) < 10:
        raise AssertionError(f"only {len(voiced)} voiced frames: the audio is not speech")
    return float(np.median(voiced))


def active_seconds(x: np.ndarray, rate: int, *, threshold_db: float = -40.0, frame_ms: float = 20.0) -> float:
    """Seconds of 20 ms frames whose RMS is above ``threshold_db`` dBFS."""
    n = round(rate * frame_ms / 1000)
    frames = np.asarray(x, np.float32)[: len(x) // n * n].reshape(-1, n)
    rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    return float(np.count_nonzero(rms_db > threshold_db) * frame_ms / 1000)
