"""rms_mix_rate and protect: RVC's formulas, and streaming still equal to the reference with them on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtvc.errors import ParamError
from rtvc.voices.rvc.loudness import frame_rms, mix_rms, protect_features
from rtvc.voices.rvc.voice import RVCVoice
from tests.rvc.test_streaming import SEED, _reference_outputs, _speech_at, _windows

faiss = pytest.importorskip("faiss")


def test_frame_rms_is_librosas_centred_rms():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000).astype(np.float32)
    hop = 400
    padded = np.pad(x.astype(np.float64), (2 * hop, 2 * hop))  # librosa: centred, zero ("constant") padding
    want = np.sqrt([np.mean(padded[i * hop:i * hop + 4 * hop] ** 2) for i in range(len(x) // hop + 1)])
    np.testing.assert_allclose(frame_rms(torch.from_numpy(x)[None], hop)[0].numpy(), want, rtol=1e-5)


def test_mix_rms_transfers_the_input_envelope():
    frames, hop = 30, 400
    t16 = np.arange(frames * 160) / 16000
    envelope = 0.05 + 0.2 * t16 / t16[-1]  # a slow swell: nearly constant over each 40 ms frame
    reference = torch.tensor(envelope * np.sign(np.sin(2 * np.pi * 200 * t16)), dtype=torch.float32)[None]
    out = 0.3 * torch.randn(1, frames * hop, generator=torch.Generator().manual_seed(0))
    rates = torch.tensor([0.0])
    full = mix_rms(out, reference, hop, rates)
    np.testing.assert_allclose(frame_rms(full, hop)[0, 4:-4].numpy(), frame_rms(reference, 160)[0, 4:-4].numpy(),
                               rtol=0.05)  # the output now follows the input's loudness
    assert torch.equal(mix_rms(out, reference, hop, torch.tensor([1.0])), out)  # 1: the model's own
    half = mix_rms(out, reference, hop, torch.tensor([0.5]))
    gain_full, gain_half = (full / out)[0], (half / out)[0]
    np.testing.assert_allclose(gain_half.numpy(), np.sqrt(gain_full.numpy()), rtol=1e-4)


def test_protect_blends_only_unvoiced_frames():
    blended, original = torch.ones(2, 4, 3), torch.zeros(2, 4, 3)
    f0 = torch.tensor([[100.0, 0.0, 120.0, 0.0]] * 2)
    out = protect_features(blended, original, f0, torch.tensor([0.2, 0.5]))
    np.testing.assert_allclose(out[0, :, 0].numpy(), [1.0, 0.2, 1.0, 0.2])
    assert torch.equal(out[1], blended[1])  # 0.5 switches protection off, as in RVC


@pytest.fixture(scope="module")
def voice_with_index(rvc_files, tmp_path_factory):
    vectors = np.random.default_rng(4).standard_normal((300, 768)).astype(np.float32)
    index = faiss.index_factory(768, "IVF7,Flat")
    index.train(vectors)
    index.add(vectors)
    path = tmp_path_factory.mktemp("index") / "added_IVF7_Flat_nprobe_1_t_v2.index"
    faiss.write_index(index, str(path))
    return RVCVoice.from_files("indexed", model=rvc_files["v2"], content=rvc_files["hubert_v2"], index=path,
                               device="cpu", fcpe_model=None)


def _stream_outputs(voice: RVCVoice, params: dict, x: np.ndarray, block: int) -> tuple[list[np.ndarray], object]:
    stream = voice.open(sample_rate=voice.sample_rate, block=block, params=params, seed=SEED)
    return [stream.process(w) for w in _windows(x, block, stream.layout.window)], stream


def test_streaming_with_protect_and_rms_mix_equals_the_reference(voice_with_index):
    voice = voice_with_index
    sr = voice.sample_rate
    block = sr // 10
    x = _speech_at(sr, 0.8)
    params = voice.check_params({"pitch": 2.0, "f0_method": 2, "extra_ms": 200, "index_rate": 0.8, "protect": 0.1,
                                 "rms_mix_rate": 0.3})
    got, stream = _stream_outputs(voice, params, x, block)
    want = _reference_outputs(voice, stream, x, len(got), params)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, atol=1e-4, err_msg=f"block {k}")
    unprotected, _ = _stream_outputs(voice, {**params, "protect": 0.5}, x, block)
    assert any(not np.allclose(a, b, atol=1e-3) for a, b in zip(got, unprotected, strict=True))
    own_loudness, _ = _stream_outputs(voice, {**params, "rms_mix_rate": 1.0}, x, block)
    assert any(not np.allclose(a, b, atol=1e-3) for a, b in zip(got, own_loudness, strict=True))


def test_defaults_reproduce_rvc_realtime(voice_with_index):
    params = voice_with_index.check_params({})
    assert params["rms_mix_rate"] == 0.0  # RVC's realtime GUI: the input's loudness envelope
    assert params["protect"] == 0.5  # protection off: the realtime GUI has none
    with pytest.raises(ParamError, match="protect"):
        voice_with_index.check_params({"protect": 0.7})
    with pytest.raises(ParamError, match="rms_mix_rate"):
        voice_with_index.check_params({"rms_mix_rate": 1.5})
