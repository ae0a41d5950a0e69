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


def grant_dubbing(data_dir, voice: str) -> str:
    """Give ``voice`` an owner who lets the client "studio" use it for dubbing; returns studio's key."""
    from rtvc.governance import GovernanceStore

    gov = GovernanceStore.open(data_dir)
    try:
        _, owner = gov.keys.create("owner", name=f"{voice}-herself")
        client_key, _ = gov.keys.create("client", name="studio")
        gov.voices.register(owner, voice, owner.id)
        gov.grants.create(owner, voice, statement="I agree to my voice being used for dubbing by the studio.",
                          purposes=["dubbing"], clients=["studio"])
    finally:
        gov.close()
    return client_key
