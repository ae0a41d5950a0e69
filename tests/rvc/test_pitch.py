"""Pitch: YIN against Praat on real speech, RVC's coarse code, RMVPE loading and decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.pitch import YinTracker, coarse_pitch, frame_count
from rtvc.voices.rvc.rmvpe import Rmvpe, RmvpeTracker, load_rmvpe, mel_filterbank
from tests.rvc.praat import agreement_with_praat


@pytest.mark.parametrize("f0", [60.0, 110.0, 247.0, 523.0, 1000.0])
def test_yin_on_tones(f0):
    t = np.arange(8000) / 16000
    tone = torch.tensor(0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t), dtype=torch.float32)
    track = YinTracker()(tone[None])[0]
    assert track.shape == (frame_count(8000),)
    np.testing.assert_allclose(track[5:-5].numpy(), f0, rtol=0.01)
    assert (YinTracker()(torch.zeros(1, 3200)) == 0).all()


def test_yin_agrees_with_praat_on_real_speech():
    agree, recall = agreement_with_praat(YinTracker())
    assert agree > 0.9 and recall > 0.6


def test_coarse_pitch_matches_rvc_mapping():
    f0 = torch.tensor([0.0, 50.0, 100.0, 440.0, 1100.0, 3000.0])
    mel = 1127 * np.log(1 + f0.numpy() / 700)
    lo, hi = 1127 * np.log(1 + 50 / 700), 1127 * np.log(1 + 1100 / 700)
    want = np.where(mel > 0, (mel - lo) * 254 / (hi - lo) + 1, mel)
    want = np.rint(np.clip(want, 1, 255))
    assert coarse_pitch(f0).tolist() == want.astype(int).tolist()
    assert coarse_pitch(f0)[0] == 1 and coarse_pitch(f0)[-1] == 255


def test_mel_filterbank_is_slaney_normalised_htk():
    fb = mel_filterbank()
    assert fb.shape == (128, 513) and (fb >= 0).all()
    freqs = np.linspace(0, 8000, 513)
    peaks = freqs[fb.argmax(axis=1)]
    assert peaks[0] < 60 and 7000 < peaks[-1] <= 8000 and np.all(np.diff(peaks) >= 0)
    # Slaney normalisation: each triangle's area (in Hz) is 1
    np.testing.assert_allclose(fb.sum(axis=1) * (freqs[1] - freqs[0]), 1.0, rtol=0.15)


def test_rmvpe_keys_and_decoding(tmp_path):
    full = Rmvpe()
    names = full.state_dict()
    # the layout of RVC's rmvpe.pt (E2E(4, 1, (2, 2)))
    assert tuple(names["unet.encoder.layers.0.conv.0.conv.0.weight"].shape) == (16, 1, 3, 3)
    assert tuple(names["unet.encoder.layers.4.conv.3.conv.3.weight"].shape) == (256, 256, 3, 3)
    assert tuple(names["unet.intermediate.layers.0.conv.0.shortcut.weight"].shape) == (512, 256, 1, 1)
    assert tuple(names["unet.decoder.layers.0.conv1.0.weight"].shape) == (512, 256, 3, 3)
    assert tuple(names["fc.0.gru.weight_ih_l0_reverse"].shape) == (768, 384)
    assert tuple(names["fc.1.weight"].shape) == (360, 512)
    assert sum(v.numel() for k, v in names.items() if "num_batches" not in k) > 90_000_000
    # decoding: a salience peak at bin 100 -> 10 * 2 ** ((20 * 100 + 1997.38) / 1200) Hz
    salience = torch.zeros(1, 3, 360)
    salience[0, 0, 100] = 0.9
    salience[0, 1, 100], salience[0, 1, 101] = 0.5, 0.5
    salience[0, 2, 200] = 0.02  # below the 0.03 threshold
    f0 = full.decode(salience)[0]
    assert f0[0] == pytest.approx(10 * 2 ** ((2000 + 1997.3794084376191) / 1200), rel=1e-5)
    assert f0[1] == pytest.approx(10 * 2 ** ((2010 + 1997.3794084376191) / 1200), rel=1e-5)
    assert f0[2] == 0


def test_rmvpe_state_dict_round_trip(tmp_path):
    small = Rmvpe(n_blocks=1, channels=4)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in small.state_dict().items()},
               tmp_path / "rmvpe.pt")
    loaded = load_rmvpe(tmp_path / "rmvpe.pt")
    f0 = RmvpeTracker(loaded)(torch.randn(2, 5120 - 160) * 0.1)
    assert f0.shape == (2, 32) and torch.isfinite(f0).all()
    state = small.state_dict()
    state["fc.1.weight"] = state["fc.1.weight"][:10]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ModelLoadError, match="fc.1.weight"):
        load_rmvpe(tmp_path / "bad.pt")
