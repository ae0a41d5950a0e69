"""An f0 tracker checked against Praat's autocorrelation pitch on the shared speech."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import parselmouth
import soundfile as sf
import torch

from tests.conftest import speech_files


def agreement_with_praat(track: Callable[[torch.Tensor], torch.Tensor], files: int = 4) -> tuple[float, float]:
    """(share of frames both call voiced where f0 agrees within 5 %, share of Praat's voiced frames found)."""
    agree, recall = [], []
    for path in speech_files()[:files]:
        x, sr = sf.read(str(path), dtype="float32")
        assert sr == 16000
        ours = track(torch.from_numpy(x)[None])[0].numpy()
        pitch = parselmouth.Sound(x.astype(np.float64), sr).to_pitch_ac(time_step=0.01, pitch_floor=50,
                                                                          pitch_ceiling=1100)
        ref = np.nan_to_num(np.array([pitch.get_value_at_time(i * 0.01) or 0.0 for i in range(len(ours))]))
        both = (ref > 0) & (ours > 0)
        agree.append(np.abs(ours[both] / ref[both] - 1) < 0.05)
        recall.append(both.sum() / max(1, (ref > 0).sum()))
    return float(np.concatenate(agree).mean()), float(np.mean(recall))
