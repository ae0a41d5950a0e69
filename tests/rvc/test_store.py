"""Voice store and `rtvc voices import / export-onnx`, then converting through the imported voice."""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
import pytest
import torch

from rtvc.audio.pcm import AudioFormat
from rtvc.cli.voices_import import register_import
from rtvc.errors import ModelLoadError, ParamError, UnknownVoice
from rtvc.pipeline import Pipeline
from rtvc.voices.rvc.library import stored_rvc_voices, voice_from_record
from rtvc.voices.store import VoiceStore


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="rtvc voices")
    register_import(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_copies_hashes_and_shares_the_content_encoder(tmp_path, rvc_files, capsys):
    data = str(tmp_path / "data")
    assert _cli("import", "alice", "--data-dir", data, "--model", str(rvc_files["v1"]),
                "--content", str(rvc_files["hubert_v1"])) == 0
    assert "sha256 " + _sha(rvc_files["v1"]) in capsys.readouterr().out
    assert _cli("import", "bob", "--data-dir", data, "--model", str(rvc_files["v1_32k"])) == 0  # shared encoder
    store = VoiceStore(data)
    assert store.names() == ["alice", "bob"]
    alice, bob = store.get("alice"), store.get("bob")
    assert alice.files["content"].sha256 == bob.files["content"].sha256 == _sha(rvc_files["hubert_v1"])
    assert len(list((store.root / "files").iterdir())) == 3  # two models + one content encoder
    assert alice.path("model").read_bytes() == rvc_files["v1"].read_bytes()
    assert bob.facts["sample_rate"] == 32000 and alice.facts["version"] == "v1"
    store.verify("alice")
    voices = {v.name: v for v in stored_rvc_voices(data)}
    assert voices["bob"].sample_rate == 32000 and voices["alice"].describe()["kind"] == "rvc"
    store.remove("alice")
    assert store.names() == ["bob"] and bob.path("content").exists()


def test_import_refuses_bad_files_and_names_without_storing(tmp_path, rvc_files):
    store = VoiceStore(tmp_path)
    with pytest.raises(ModelLoadError, match="content encoder"):
        _cli("import", "x", "--data-dir", str(tmp_path), "--model", str(rvc_files["v1"]))  # nothing to share yet
    with pytest.raises(ModelLoadError, match="768-d"):  # a v2 model needs 768-d features
        _cli("import", "x", "--data-dir", str(tmp_path), "--model", str(rvc_files["v2"]),
             "--content", str(rvc_files["hubert_v1"]))
    broken = tmp_path / "broken.pth"
    broken.write_bytes(rvc_files["v1"].read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="broken.pth"):
        _cli("import", "x", "--data-dir", str(tmp_path), "--model", str(broken), "--content", str(rvc_files["hubert_v1"]))
    assert store.names() == [] and not (store.root / "files").exists()
    with pytest.raises(ParamError, match="voice name"):
        _cli("import", "Bad Name", "--data-dir", str(tmp_path), "--model", str(rvc_files["v1"]),
             "--content", str(rvc_files["hubert_v1"]))
    _cli("import", "x", "--data-dir", str(tmp_path), "--model", str(rvc_files["v1"]),
         "--content", str(rvc_files["hubert_v1"]))
    with pytest.raises(ParamError, match="already exists"):
        _cli("import", "x", "--data-dir", str(tmp_path), "--model", str(rvc_files["v1"]))
    with pytest.raises(UnknownVoice):
        store.get("nobody")
    store.get("x").path("model").write_bytes(b"tampered")
    with pytest.raises(ModelLoadError, match="sha256"):
        store.verify("x")


def test_onnx_backend_matches_torch_through_the_pipeline(tmp_path, rvc_files):
    pytest.importorskip("onnxruntime")
    data = str(tmp_path)
    _cli("import", "carol", "--data-dir", data, "--model", str(rvc_files["v2"]),
         "--content", str(rvc_files["hubert_v2"]))
    assert _cli("export-onnx", "carol", "--data-dir", data) == 0
    record = VoiceStore(data).get("carol")
    x = (0.2 * np.sin(2 * np.pi * 150 * np.arange(16000) / 16000)).astype(np.float32)
    outs = {}
    for backend in ("torch", "onnx"):
        voice = voice_from_record(record, device="cpu", backend=backend)
        torch.manual_seed(0)
        pipeline = Pipeline(voice, input=AudioFormat("pcm_f32le", 16000, 1), output=AudioFormat("pcm_f32le", 16000, 1),
                            params={"pitch": 3.0, "f0_method": 2, "extra_ms": 200}, block_ms=100)
        pipeline._stream.generator.manual_seed(99)  # same noise for both backends
        outs[backend] = pipeline.process(x, last=True)
    assert np.abs(outs["torch"]).max() > 1e-3
    np.testing.assert_allclose(outs["onnx"], outs["torch"], atol=1e-4)
    with pytest.raises(ModelLoadError, match="export-onnx"):
        _cli("import", "dave", "--data-dir", data, "--model", str(rvc_files["v1"]), "--content",
             str(rvc_files["hubert_v1"]))
        voice_from_record(VoiceStore(data).get("dave"), backend="onnx").model  # noqa: B018
