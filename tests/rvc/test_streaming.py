"""Streaming equals the reference algorithm: block-wise output == a direct model call on the same window."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from rtvc.audio.pcm import AudioFormat
from rtvc.audio.resample import ResampleStream
from rtvc.errors import ParamError
from rtvc.pipeline import Pipeline
from rtvc.voices.rvc.pitch import HOP, YinTracker
from rtvc.voices.rvc.render import RenderJob, render_window
from rtvc.voices.rvc.synthesizer import SynthNoise
from rtvc.voices.rvc.voice import RVCVoice
from tests.conftest import speech_files

SEED = 1234


def _speech_at(rate: int, seconds: float) -> np.ndarray:
    x, sr = sf.read(str(speech_files()[3]), dtype="float32")
    from rtvc.audio.resample import resample

    return resample(x[: int(seconds * sr)], sr, rate)


@pytest.fixture(scope="module")
def voice_v2(rvc_files):
    return RVCVoice.from_files("v2", model=rvc_files["v2"], content=rvc_files["hubert_v2"], device="cpu")


def _windows(x: np.ndarray, block: int, window: int) -> list[np.ndarray]:
    padded = np.concatenate([np.zeros(window, np.float32), x])
    return [padded[k + block: k + block + window] for k in range(0, len(x) - block + 1, block)]


def _reference_outputs(voice: RVCVoice, stream, x: np.ndarray, n_blocks: int, params: dict) -> list[np.ndarray]:
    """Recompute each block from scratch: one-shot 16 kHz signal, one-shot YIN, same seeded noise."""
    model = voice.model
    block, frames = stream.layout.block, stream.frames
    history = len(stream.history)
    x16 = np.concatenate([np.zeros(history, np.float32),
                          ResampleStream(voice.sample_rate, 16000).process(x[: n_blocks * block])])
    generator = torch.Generator().manual_seed(SEED)
    yin = YinTracker()
    out = []
    for k in range(n_blocks):
        end = history + (k + 1) * block * 16000 // voice.sample_rate
        window16 = torch.from_numpy(x16[end - frames * HOP: end].copy())
        f0 = yin(torch.from_numpy(x16[:end].copy())[None])[0, -frames - 1:-1]  # frame i sits at 160 i
        noise = SynthNoise.draw(1, model.synth.config.inter_channels, frames, model.synth.hop, nsf=True,
                                generator=generator)
        job = RenderJob(window16, f0, noise, stream.skip_head, stream.return_length, pitch=params["pitch"],
                        formant=params.get("formant", 0.0), decoder_margin=voice.decoder_margin_frames,
                        rms_mix_rate=params["rms_mix_rate"], protect=params["protect"],
                        index_rate=params.get("index_rate", 0.0))
        out.append(render_window(model, job))
    return out


@pytest.mark.parametrize("block_ms,extra_ms,seconds", [(100, 300, 0.7), (60, 500, 0.5)])
def test_blockwise_output_equals_direct_call_on_the_window(voice_v2, block_ms, extra_ms, seconds):
    params = voice_v2.check_params({"pitch": 4.0, "f0_method": 2, "extra_ms": extra_ms})
    sr = voice_v2.sample_rate
    block = block_ms * sr // 1000
    stream = voice_v2.open(sample_rate=sr, block=block, params=params, seed=SEED)
    x = _speech_at(sr, seconds)
    windows = _windows(x, block, stream.layout.window)
    got = [stream.process(w) for w in windows]
    assert all(g.shape == (stream.layout.rendered,) for g in got)
    want = _reference_outputs(voice_v2, stream, x, len(windows), params)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, atol=1e-4, err_msg=f"block {k}")
    assert max(np.abs(g).max() for g in got) > 1e-3  # not trivially silent


def test_pitch_cache_equals_one_shot_track(voice_v2):
    """RVC's per-block f0 with edge frames dropped reproduces the whole-signal track (local tracker)."""
    sr = voice_v2.sample_rate
    block = sr // 10
    stream = voice_v2.open(sample_rate=sr, block=block, params=voice_v2.check_params({"f0_method": 2}), seed=1)
    x = _speech_at(sr, 1.5)
    for w in _windows(x, block, stream.layout.window):
        stream.process(w)
    x16 = np.concatenate([np.zeros(len(stream.history), np.float32),
                          ResampleStream(sr, 16000).process(x[: len(x) // block * block])])
    one_shot = YinTracker()(torch.from_numpy(x16)[None])[0]
    cached = stream.f0_cache[-stream.frames:]
    np.testing.assert_allclose(cached.numpy(), one_shot[-stream.frames - 1:-1].numpy(), atol=1e-3)
    assert (cached > 0).sum() > 10  # speech is voiced somewhere


def test_batched_run_equals_one_by_one(voice_v2):
    sr = voice_v2.sample_rate
    block = sr // 10
    x = _speech_at(sr, 0.8)
    settings = [{"pitch": 0.0}, {"pitch": 7.0}, {"pitch": -5.0, "formant": 1.0}]
    solo, batched = [], []
    for params in settings:
        stream = voice_v2.open(sample_rate=sr, block=block, params=voice_v2.check_params(params), seed=7)
        solo.append([stream.process(w) for w in _windows(x, block, stream.layout.window)])
    streams = [voice_v2.open(sample_rate=sr, block=block, params=voice_v2.check_params(p), seed=7) for p in settings]
    per_stream = [_windows(x, block, s.layout.window) for s in streams]
    for k in range(len(per_stream[0])):
        outs = voice_v2.run(streams, [w[k] for w in per_stream])
        batched.append(outs)
    for i in range(len(settings)):
        for k in range(len(per_stream[0])):
            np.testing.assert_allclose(batched[k][i], solo[i][k], atol=1e-4)
    assert not np.allclose(solo[0][-1], solo[1][-1], atol=1e-3)  # the pitch shift reached the output


def test_trimmed_render_equals_full_window_render(voice_v2):
    """With a decoder margin covering its receptive field, skip_head/return_length change nothing."""
    model = voice_v2.model
    frames = 60
    generator = torch.Generator().manual_seed(3)
    audio16 = torch.from_numpy(_speech_at(16000, frames * HOP / 16000))
    f0 = YinTracker()(audio16[None])[0, :frames]
    noise = SynthNoise.draw(1, model.synth.config.inter_channels, frames, model.synth.hop, nsf=True,
                            generator=generator)
    full = render_window(model, RenderJob(audio16, f0, noise, 0, frames, pitch=2.0))
    margin = model.synth.receptive_margin()
    trimmed = render_window(model, RenderJob(audio16, f0, noise, 45, 15, pitch=2.0, decoder_margin=margin))
    np.testing.assert_allclose(trimmed, full[45 * model.synth.hop:], atol=1e-4)
    rvc_style = render_window(model, RenderJob(audio16, f0, noise, 45, 15, pitch=2.0))
    assert not np.allclose(rvc_style, full[45 * model.synth.hop:], atol=1e-4)  # RVC's edge, which SOLA hides


def test_pipeline_gives_n_out_for_n_in_on_real_speech(voice_v2):
    x = _speech_at(16000, 1.0)
    pipeline = Pipeline(voice_v2, input=AudioFormat("pcm_f32le", 16000, 1), output=AudioFormat("pcm_s16le", 48000, 2),
                        params={"pitch": 2.0, "f0_method": 2, "extra_ms": 200}, block_ms=80)
    out = [pipeline.process(x[i:i + 320]) for i in range(0, len(x), 320)]
    out.append(pipeline.process(x[:0], last=True))
    y = np.concatenate(out)
    assert y.shape == (len(x) * 3 + math.ceil(pipeline.latency_exact), 2)
    assert np.isfinite(y).all() and np.abs(y).max() > 1e-3
    assert pipeline.latency_ms < 80  # crossfade 40 + search 10 + resamplers


def test_no_pitch_model_and_v1_through_the_pipeline(rvc_files):
    x = _speech_at(16000, 0.6)
    for model, content, rate in (("v2_nono", "hubert_v2", 48000), ("v1_32k", "hubert_v1", 32000)):
        voice = RVCVoice.from_files(model, model=rvc_files[model], content=rvc_files[content], device="cpu")
        assert voice.sample_rate == rate and ("pitch" in {p.name for p in voice.params}) == (model != "v2_nono")
        pipeline = Pipeline(voice, input=AudioFormat("pcm_f32le", 16000, 1), output=AudioFormat("pcm_f32le", 16000, 1),
                            params={"extra_ms": 100}, block_ms=50)
        y = pipeline.process(x, last=True)
        assert len(y) == len(x) + math.ceil(pipeline.latency_exact) and np.abs(y).max() > 1e-4


def test_parameter_errors(voice_v2):
    with pytest.raises(ParamError, match="rmvpe"):
        voice_v2.check_params({"f0_method": 1})
    with pytest.raises(ParamError, match="index_rate"):
        voice_v2.check_params({"index_rate": 0.5})  # no index imported
    with pytest.raises(ParamError, match="10 ms"):
        voice_v2.open(sample_rate=40000, block=4100, params=voice_v2.check_params({}))
