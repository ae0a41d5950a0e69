"""FCPE: our network and mel front end on the torchfcpe wheel's weights, loading errors, streaming.

The wheel's own modules import torchaudio and cannot run here; its numpy-only mel filterbank
file can, and is compared directly. The network on the real weights is checked by what a
pitch tracker must do: tones within 1 %, silence unvoiced, agreement with Praat on speech.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from rtvc.audio.resample import ResampleStream, resample
from rtvc.errors import ModelLoadError, ParamError
from rtvc.voices.rvc.fcpe import FcpeTracker, bundled_fcpe_path, load_fcpe
from rtvc.voices.rvc.fcpe_net import FcpeMel, slaney_mel_filterbank
from rtvc.voices.rvc.pitch import HOP
from rtvc.voices.rvc.render import RenderJob, render_window
from rtvc.voices.rvc.synthesizer import SynthNoise
from rtvc.voices.rvc.synthetic import write_random_fcpe
from rtvc.voices.rvc.voice import RVCVoice
from tests.conftest import speech_files
from tests.rvc.praat import agreement_with_praat

BUNDLED = bundled_fcpe_path()
needs_wheel = pytest.mark.skipif(BUNDLED is None, reason="torchfcpe wheel not installed (pip install --no-deps "
                                                          "torchfcpe==0.0.4)")


@pytest.fixture(scope="module")
def small_fcpe(tmp_path_factory):
    path = tmp_path_factory.mktemp("fcpe") / "fcpe_small.pt"
    write_random_fcpe(path, seed=3)
    return path


@pytest.fixture(scope="module")
def real_fcpe():
    if BUNDLED is None:
        pytest.skip("torchfcpe wheel not installed")
    return FcpeTracker(lambda: load_fcpe(BUNDLED))


@needs_wheel
def test_filterbank_equals_the_wheels_numpy_code():
    # mel_fn_librosa.py (a copy of librosa.filters.mel) imports only numpy: load that one file by path
    spec = importlib.util.spec_from_file_location("fcpe_mel_fn", BUNDLED.parents[1] / "mel_fn_librosa.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    theirs = module.mel(sr=16000, n_fft=1024, n_mels=128, fmin=0, fmax=8000)
    np.testing.assert_allclose(slaney_mel_filterbank(), theirs, atol=1e-7)
    assert "torchfcpe" not in sys.modules and "torchaudio" not in sys.modules


def test_filterbank_is_slaney_scale_and_area_normalised():
    fb = slaney_mel_filterbank()
    freqs = np.linspace(0, 8000, 513)
    peaks = freqs[fb.argmax(axis=1)]
    below = np.diff(peaks[peaks < 900])
    assert np.allclose(below, below.mean(), atol=16.0)  # linear spacing (~66.7 Hz) below 1 kHz
    assert np.diff(peaks[peaks > 2000]).mean() > 3 * below.mean()  # logarithmic above
    np.testing.assert_allclose(fb.sum(axis=1) * (freqs[1] - freqs[0]), 1.0, rtol=0.15)


def test_log_mel_equals_a_numpy_computation():
    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal(3200)).astype(np.float32)
    ours = FcpeMel()(torch.from_numpy(x)[None])[0].numpy()
    padded = np.pad(x.astype(np.float64), (432, 432), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, 1024)[::160]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)  # periodic Hann
    mag = np.sqrt(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2 + 1e-9)
    want = np.log(np.maximum(mag @ slaney_mel_filterbank().T.astype(np.float64), 1e-5))
    want = np.concatenate([want, want[-1:]])  # n // 160 + 1 frames: the last one repeated
    assert ours.shape == (3200 // 160 + 1, 128)
    np.testing.assert_allclose(ours, want, atol=2e-4)


@needs_wheel
@pytest.mark.parametrize("f0", [60.0, 110.0, 247.0, 523.0, 1000.0])
def test_real_weights_track_harmonic_tones_within_one_percent(real_fcpe, f0):
    t = np.arange(8000) / 16000
    tone = sum(a * np.sin(2 * np.pi * k * f0 * t) for k, a in ((1, 0.3), (2, 0.1), (3, 0.05)))
    track = real_fcpe(torch.tensor(tone, dtype=torch.float32)[None])[0].numpy()
    assert track.shape == (8000 // 160 + 1,)
    np.testing.assert_allclose(track[3:-3], f0, rtol=0.01)


@needs_wheel
def test_real_weights_unvoiced_on_silence_and_quiet_noise(real_fcpe):
    assert (real_fcpe(torch.zeros(2, 8000)) == 0).all()
    noise = 0.01 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(1))  # -40 dBFS hiss
    assert (real_fcpe(noise) == 0).float().mean() > 0.95
    assert "torchfcpe" not in sys.modules and "torchaudio" not in sys.modules


@needs_wheel
def test_real_weights_agree_with_praat_on_speech(real_fcpe):
    agree, recall = agreement_with_praat(real_fcpe)
    assert agree > 0.9 and recall > 0.8


def test_checkpoint_loads_strictly_and_bad_files_are_named(small_fcpe, tmp_path):
    model = load_fcpe(small_fcpe)
    f0 = model(0.1 * torch.randn(2, 2400))
    assert f0.shape == (2, 16) and torch.isfinite(f0).all()
    ckpt = torch.load(small_fcpe, weights_only=True)

    def write(name: str, mutate) -> str:  # noqa: ANN001
        bad = {**ckpt, "model": dict(ckpt["model"]), "config_dict": {k: dict(v) for k, v in ckpt["config_dict"].items()}}
        mutate(bad)
        torch.save(bad, tmp_path / name)
        return tmp_path / name

    cases = {
        "input_stack.0.weight": lambda c: c["model"].update({"input_stack.0.weight": torch.zeros(32, 128, 5)}),
        "missing output_proj.weight_g": lambda c: c["model"].pop("output_proj.weight_g"),
        "conv_only": lambda c: c["config_dict"]["model"].update(conv_only=False),
        "160-sample hop": lambda c: c["config_dict"]["mel"].update(hop_size=256),
        "non-finite": lambda c: c["model"]["norm.weight"].fill_(float("nan")),
    }
    for i, (message, mutate) in enumerate(cases.items()):
        with pytest.raises(ModelLoadError, match=message):
            load_fcpe(write(f"bad{i}.pt", mutate))
    (tmp_path / "cut.pt").write_bytes(small_fcpe.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="cut.pt"):
        load_fcpe(tmp_path / "cut.pt")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "plain.pt")
    with pytest.raises(ModelLoadError, match="not a torchfcpe checkpoint"):
        load_fcpe(tmp_path / "plain.pt")


def test_auto_order_and_parameter_errors(rvc_files, small_fcpe):
    with_fcpe = RVCVoice.from_files("a", model=rvc_files["v2"], content=rvc_files["hubert_v2"], device="cpu",
                                    fcpe_model=small_fcpe)
    without = RVCVoice.from_files("b", model=rvc_files["v2"], content=rvc_files["hubert_v2"], device="cpu",
                                  fcpe_model=None)
    sr = with_fcpe.sample_rate
    auto = with_fcpe.open(sample_rate=sr, block=sr // 10, params=with_fcpe.check_params({}))
    assert auto.tracker_name(with_fcpe.model) == "fcpe"  # no rmvpe.pt: FCPE before YIN
    assert without.open(sample_rate=sr, block=sr // 10, params=without.check_params({})).tracker_name(
        without.model) == "yin"
    with pytest.raises(ParamError, match="torchfcpe"):
        without.check_params({"f0_method": 3})
    with pytest.raises(ModelLoadError, match="not found"):
        RVCVoice.from_files("c", model=rvc_files["v2"], content=rvc_files["hubert_v2"], device="cpu",
                            fcpe_model=small_fcpe.parent / "missing.pt")


def _rvc_cached_f0(tracker, x16: np.ndarray, ends: list[int], seg: int, frames: int, k: int) -> torch.Tensor:  # noqa: ANN001
    """The f0 of block k's window from first principles: frame at sample p holds the value of the last
    block j <= k whose segment ``[ends[j] - seg, ends[j])`` has p in its kept frames (3rd to last-but-one)."""
    tracks = {}
    out = torch.zeros(frames)
    for i in range(frames):
        p = ends[k] - (frames - i) * HOP
        writers = [j for j in range(k + 1) if ends[j] - seg + 3 * HOP <= p <= ends[j] - HOP]
        if writers:
            j = writers[-1]
            if j not in tracks:
                tracks[j] = tracker(torch.from_numpy(x16[ends[j] - seg:ends[j]].copy())[None])[0]
            out[i] = tracks[j][(p - (ends[j] - seg)) // HOP]
    return out


def test_streaming_with_fcpe_equals_rvc_per_segment_reference(rvc_files, small_fcpe):
    voice = RVCVoice.from_files("f", model=rvc_files["v2"], content=rvc_files["hubert_v2"], device="cpu",
                                fcpe_model=small_fcpe)
    sr, model = voice.sample_rate, voice.model
    params = voice.check_params({"pitch": 3.0, "f0_method": 3, "extra_ms": 200})
    block = sr // 10
    stream = voice.open(sample_rate=sr, block=block, params=params, seed=5)
    x, rate = sf.read(str(speech_files()[2]), dtype="float32")
    x = resample(x[: int(0.6 * rate)], rate, sr)
    n_blocks = len(x) // block
    padded = np.concatenate([np.zeros(stream.layout.window, np.float32), x])
    got = [stream.process(padded[(k + 1) * block:(k + 1) * block + stream.layout.window]) for k in range(n_blocks)]

    history = len(stream.history)
    x16 = np.concatenate([np.zeros(history, np.float32), ResampleStream(sr, 16000).process(x[: n_blocks * block])])
    b16 = block * 16000 // sr
    ends = [history + (k + 1) * b16 for k in range(n_blocks)]
    seg = stream.f0_segment(model)
    tracker = model.trackers["fcpe"]
    generator = torch.Generator().manual_seed(5)
    for k in range(n_blocks):
        f0 = _rvc_cached_f0(tracker, x16, ends, seg, stream.frames, k)
        noise = SynthNoise.draw(1, model.synth.config.inter_channels, stream.frames, model.synth.hop, nsf=True,
                                generator=generator)
        job = RenderJob(torch.from_numpy(x16[ends[k] - stream.frames * HOP:ends[k]].copy()), f0, noise,
                        stream.skip_head, stream.return_length, pitch=3.0, rms_mix_rate=params["rms_mix_rate"])
        np.testing.assert_allclose(got[k], render_window(model, job), atol=1e-4, err_msg=f"block {k}")
    # FCPE's GroupNorm sees the whole segment: per-segment f0 is not the one-shot track (documented in docs/rvc.md)
    one_shot = tracker(torch.from_numpy(x16[:ends[-1]].copy())[None])[0, -stream.frames - 1:-1]
    cached = stream.f0_cache[-stream.frames:]
    written = cached > 0
    assert written.sum() > 20 and not torch.allclose(cached[written], one_shot[written], rtol=1e-3)
