"""Users' ONNX synthesizer exports render what rtvc's torch synthesizer renders, block-wise and through `rtvc convert`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rtvc.audio.resample import ResampleStream, resample  # noqa: E402
from rtvc.voices.rvc.checkpoint import load_synthesizer, read_rvc_model  # noqa: E402
from rtvc.voices.rvc.onnx_synth import load_onnx_export  # noqa: E402
from rtvc.voices.rvc.onnx_synthetic import write_deiteris_onnx, write_rvc_onnx, write_wokada_onnx  # noqa: E402
from rtvc.voices.rvc.pitch import HOP, YinTracker, coarse_pitch  # noqa: E402
from rtvc.voices.rvc.render import render_window  # noqa: E402
from rtvc.voices.rvc.synthesizer import SynthNoise  # noqa: E402
from rtvc.voices.rvc.voice import RVCVoice  # noqa: E402
from tests.conftest import grant_dubbing, speech_files  # noqa: E402

SEED = 4321


@pytest.fixture(scope="module")
def synths(rvc_files):
    return {name: load_synthesizer(read_rvc_model(rvc_files[name])) for name in ("v1", "v2", "v2_nono")}


@pytest.fixture(scope="module")
def exports(synths, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx_render")
    return {
        "rvc": write_rvc_onnx(root / "rvc.onnx", synths["v2"], opset=18),
        "rvc_batch": write_rvc_onnx(root / "rvc_batch.onnx", synths["v2"], dynamic_batch=True),
        "rvc_nono": write_rvc_onnx(root / "rvc_nono.onnx", synths["v2_nono"], opset=16),
        "wokada": write_wokada_onnx(root / "wokada.onnx", synths["v2"]),
        "wokada_legacy_v1": write_wokada_onnx(root / "wokada_v1.onnx", synths["v1"], legacy=True),
        "deiteris": write_deiteris_onnx(root / "deiteris.onnx", synths["v2"]),
    }


def _inputs(synth, frames: int, batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    phone = torch.randn(batch, frames, synth.content_dim, generator=g)
    pitchf = pitch = None
    if synth.f0:
        pitchf = torch.rand(batch, frames, generator=g) * 250 + 80
        pitchf[:, frames // 3: frames // 3 + 6] = 0.0  # an unvoiced stretch: the excitation is noise there
        pitch = coarse_pitch(pitchf)
    noise = SynthNoise.draw(batch, synth.config.inter_channels, frames, synth.hop, nsf=synth.f0, generator=g)
    return phone, torch.full((batch,), frames), pitch, pitchf, torch.zeros(batch, dtype=torch.long), noise


@pytest.mark.parametrize("fmt,model,rate", [("rvc", "v2", 40000), ("rvc_nono", "v2_nono", 48000),
                                            ("wokada", "v2", None), ("wokada_legacy_v1", "v1", None),
                                            ("deiteris", "v2", None)])
def test_export_renders_what_the_torch_synthesizer_renders(exports, synths, fmt, model, rate):
    """Whole-window render, tail returned; same noise in, same audio out; seeded output reproducible."""
    synth = synths[model]
    _, onnx_synth = load_onnx_export(exports[fmt], sample_rate=rate)
    frames, skip = 70, 40
    args = _inputs(synth, frames)
    with torch.no_grad():
        want = synth.infer(*args)[:, :, skip * synth.hop:]
    got = onnx_synth.infer(*args, skip_head=skip, return_length=frames - skip)
    assert got.shape == want.shape == (1, 1, (frames - skip) * synth.hop)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)
    assert float(want.abs().max()) > 1e-3
    again = onnx_synth.infer(*args, skip_head=skip, return_length=frames - skip)
    assert torch.equal(again, got)  # no noise drawn inside the graph any more
    other_noise = _inputs(synth, frames, seed=1)[-1]
    changed = onnx_synth.infer(*args[:-1], other_noise, skip_head=skip, return_length=frames - skip)
    assert not torch.allclose(changed, got, atol=1e-4)  # ... and the noise we feed does reach the output


def test_free_batch_axis_runs_a_batch_at_once(exports, synths):
    synth = synths["v2"]
    export, batched = load_onnx_export(exports["rvc_batch"], sample_rate=40000)
    _, single = load_onnx_export(exports["rvc"], sample_rate=40000)
    assert export.batch_axis
    args = _inputs(synth, 50, batch=3, seed=2)
    with torch.no_grad():
        want = synth.infer(*args)
    np.testing.assert_allclose(batched.infer(*args).numpy(), want.numpy(), atol=1e-4)
    np.testing.assert_allclose(single.infer(*args).numpy(), want.numpy(), atol=1e-4)  # batch 1: one row at a time


def _speech(rate: int, seconds: float) -> np.ndarray:
    x, sr = sf.read(str(speech_files()[5]), dtype="float32")
    return resample(x[: int(seconds * sr)], sr, rate)


def _windows(x: np.ndarray, block: int, window: int) -> list[np.ndarray]:
    padded = np.concatenate([np.zeros(window, np.float32), x])
    return [padded[k + block: k + block + window] for k in range(0, len(x) - block + 1, block)]


@pytest.fixture(scope="module")
def onnx_voice(exports, rvc_files):
    return RVCVoice.from_files("olga", model=exports["wokada"], content=rvc_files["hubert_v2"], device="cpu",
                               fcpe_model=None)


def test_streaming_equals_a_direct_call_of_the_export_on_each_window(onnx_voice):
    """Block by block == the ONNX model called on the window rebuilt from scratch (one-shot 16 kHz, f0, noise)."""
    voice, sr = onnx_voice, onnx_voice.sample_rate
    block = sr // 10
    params = voice.check_params({"pitch": 3.0, "f0_method": 2, "extra_ms": 300})
    stream = voice.open(sample_rate=sr, block=block, params=params, seed=SEED)
    template = voice.open(sample_rate=sr, block=block, params=params, seed=0).job(voice.model)
    x = _speech(sr, 0.6)
    windows = _windows(x, block, stream.layout.window)
    got = [stream.process(w) for w in windows]
    history, frames, model = len(stream.history), stream.frames, voice.model
    x16 = np.concatenate([np.zeros(history, np.float32), ResampleStream(sr, 16000).process(x[: len(windows) * block])])
    generator = torch.Generator().manual_seed(SEED)
    for k, g in enumerate(got):
        end = history + (k + 1) * block * 16000 // sr
        f0 = YinTracker()(torch.from_numpy(x16[:end].copy())[None])[0, -frames - 1:-1]
        noise = SynthNoise.draw(1, model.synth.config.inter_channels, frames, model.synth.hop, nsf=True,
                                generator=generator)
        job = dataclasses.replace(template, audio16k=torch.from_numpy(x16[end - frames * HOP: end].copy()), f0=f0,
                                  noise=noise)
        np.testing.assert_allclose(g, render_window(model, job), atol=1e-4, err_msg=f"block {k}")
    assert max(np.abs(g).max() for g in got) > 1e-3


def test_export_voice_streams_what_the_torch_voice_streams(onnx_voice, rvc_files, synths):
    """With a decoder margin covering its reach, the torch voice's trimmed render equals the export's whole one."""
    torch_voice = RVCVoice.from_files("v2", model=rvc_files["v2"], content=rvc_files["hubert_v2"], device="cpu",
                                      fcpe_model=None, decoder_margin_frames=synths["v2"].receptive_margin())
    sr = torch_voice.sample_rate
    block = sr // 20
    outs = {}
    for voice in (torch_voice, onnx_voice):
        params = voice.check_params({"pitch": -2.0, "f0_method": 2, "extra_ms": 400})
        stream = voice.open(sample_rate=sr, block=block, params=params, seed=SEED)
        outs[voice.name] = np.concatenate([stream.process(w) for w in _windows(_speech(sr, 0.4), block,
                                                                              stream.layout.window)])
    assert np.abs(outs["v2"]).max() > 1e-3
    np.testing.assert_allclose(outs["olga"], outs["v2"], atol=1e-4)


def test_import_and_convert_through_the_rtvc_command(tmp_path, exports, rvc_files, speech_paths, capsys):
    """rtvc's real main() in this process (the .pth path runs it as a subprocess in tests/cli)."""
    from rtvc import cli

    data = str(tmp_path / "data")

    def rtvc(*args):
        code = cli.main([*args, "--data-dir", data])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = rtvc("voices", "import", "wendy", "--model", str(exports["rvc"]), "--sample-rate", "40000",
                          "--content", str(rvc_files["hubert_v2"]))
    assert code == 0, err
    assert "ONNX export (RVC WebUI" in out
    client_key = grant_dubbing(data, "wendy")
    wav = tmp_path / "out.wav"
    code, out, err = rtvc("convert", str(speech_paths[2]), str(wav), "--voice", "wendy", "--key", client_key,
                          "--purpose", "dubbing", "--pitch", "2")
    assert code == 0, err
    x, rate = sf.read(str(speech_paths[2]))
    y, out_rate = sf.read(str(wav))
    assert out_rate == rate and len(y) == len(x)
    assert np.isfinite(y).all() and np.std(y) > 1e-3
    code, out, err = rtvc("convert", str(speech_paths[2]), str(wav), "--voice", "wendy", "--key", client_key,
                          "--purpose", "dubbing", "--formant", "1")
    assert code != 0 and "formant" in err  # whole-window exports cannot stretch the decoder input
