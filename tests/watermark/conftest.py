"""Real speech, a key and marked audio shared by the watermark tests."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from rtvc.watermark import Watermarker, WatermarkKey
from tests.conftest import speech_files

TOKEN = 0x5EC0_17AB_CDEF_0042


@pytest.fixture(scope="session")
def key() -> WatermarkKey:
    return WatermarkKey(bytes(range(32)))


@pytest.fixture(scope="session")
def speech16k() -> np.ndarray:
    """About 12 s of real speech (three speakers back to back), float32 at 16 kHz."""
    pieces = [sf.read(str(p), dtype="float32")[0] for p in speech_files()[9:12]]
    return np.concatenate(pieces)


@pytest.fixture(scope="session")
def speech48k(speech16k) -> np.ndarray:
    return soxr.resample(speech16k, 16000, 48000).astype(np.float32)


@pytest.fixture(scope="session")
def marked48k(key, speech48k) -> np.ndarray:
    return Watermarker(key, TOKEN, 48000).process(speech48k, last=True)
