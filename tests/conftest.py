"""Shared fixtures: the real speech beside the repository and a tiny test voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SPEECH_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "speech"


def speech_files() -> list[Path]:
    files = sorted(SPEECH_DIR.glob("*/*.wav"))
    if not files:
        raise FileNotFoundError(f"real speech not found in {SPEECH_DIR} (../shared must sit beside the repo)")
    return files


@pytest.fixture(scope="session")
def speech_paths() -> list[Path]:
    return speech_files()


@pytest.fixture(scope="session")
def speech(speech_paths) -> tuple[np.ndarray, int]:
    """One real male utterance, float32 mono at 16 kHz."""
    x, rate = sf.read(str(speech_paths[3]), dtype="float32")
    return x, rate
