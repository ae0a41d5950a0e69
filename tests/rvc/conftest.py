"""Tiny RVC model files in the real formats (random weights), written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rtvc.voices.rvc.synthetic import (
    random_hubert_weights,
    tiny_hubert_config,
    write_fairseq_checkpoint,
    write_random_pth,
)


@pytest.fixture(scope="session")
def rvc_files(tmp_path_factory) -> dict[str, Path]:
    """``v1``/``v2`` pitch models (40k), ``v2_nono`` (48k), ``v1_32k``, content encoders ``hubert_v1``/``hubert_v2``."""
    root = tmp_path_factory.mktemp("rvc")
    files = {
        "v1": root / "v1_40k.pth", "v2": root / "v2_40k.pth", "v2_nono": root / "v2_48k_nono.pth",
        "v1_32k": root / "v1_32k.pth", "hubert_v1": root / "hubert_small.pt", "hubert_v2": root / "hubert_768.pt",
    }
    write_random_pth(files["v1"], version="v1", sr="40k", seed=1)
    write_random_pth(files["v2"], version="v2", sr="40k", seed=2)
    write_random_pth(files["v2_nono"], version="v2", sr="48k", f0=False, seed=3)
    write_random_pth(files["v1_32k"], version="v1", sr="32k", seed=4)
    for version in ("v1", "v2"):
        cfg = tiny_hubert_config(version)
        write_fairseq_checkpoint(files[f"hubert_{version}"], cfg, random_hubert_weights(cfg, seed=5))
    return files


@pytest.fixture(autouse=True)
def _few_threads():
    """One intra-op thread: on a shared 2-core machine OpenMP spin-waits make 2 threads ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
