"""WebUI .pth files: strict loading of every variant, and clear errors for bad files."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import pytest
import torch

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.checkpoint import expected_file_shapes, load_synthesizer, read_rvc_model, save_webui_pth
from rtvc.voices.rvc.config import SynthConfig, reference_config
from rtvc.voices.rvc.safeload import load_torch_file
from rtvc.voices.rvc.synthesizer import Synthesizer
from rtvc.voices.rvc.synthetic import random_webui_weights, tiny_config, write_random_pth


@pytest.mark.parametrize("version,sr,f0", [("v1", "40k", True), ("v2", "48k", True), ("v1", "32k", False),
                                           ("v2", "40k", False), ("v2", "32k", True), ("v1", "48k", True)])
def test_webui_pth_loads_strictly(tmp_path, version, sr, f0):
    path = tmp_path / "voice.pth"
    write_random_pth(path, version=version, sr=sr, f0=f0)
    raw = torch.load(path, weights_only=True)  # the file really is the WebUI layout
    assert list(raw) == ["weight", "config", "info", "sr", "f0", "version"]
    assert len(raw["config"]) == 18 and raw["sr"] == sr and raw["f0"] == int(f0)
    assert all(v.dtype == torch.float16 for v in raw["weight"].values())
    assert not any("enc_q" in k for k in raw["weight"])
    assert any(k.endswith("weight_g") for k in raw["weight"])
    model_file = read_rvc_model(path)
    model = load_synthesizer(model_file)
    assert model.f0 == f0 and model_file.version == version
    assert set(expected_file_shapes(model)) == set(raw["weight"])  # no key left over on either side


def test_reference_configs_match_the_webui_model_sizes():
    """Full-size v2 40k: the parameter count of a real ~55 MB fp16 .pth (27.6 M params with the embedding)."""
    model = Synthesizer(reference_config("v2", "40k"), content_dim=768, f0=True)
    n = sum(p.numel() for p in model.parameters())
    assert 27_000_000 < n < 29_000_000
    assert reference_config("v1", "48k").hop == 480 and reference_config("v2", "32k").hop == 320


def test_folded_weights_equal_weight_norm(tmp_path):
    config = tiny_config("40k", "v1")
    weights = random_webui_weights(config, version="v1", f0=True, seed=3)
    weights["dec.ups.0.weight_g"] = weights["dec.ups.0.weight_g"] * 1.7  # g no longer equals |v|
    save_webui_pth(tmp_path / "m.pth", weights, config, version="v1", f0=True)
    model = load_synthesizer(read_rvc_model(tmp_path / "m.pth"))
    v = weights["dec.ups.0.weight_v"].half().float()
    g = weights["dec.ups.0.weight_g"].half().float()
    want = g * v / v.norm(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(model.dec.ups[0].weight.data, want, atol=1e-5, rtol=1e-4)


def test_parametrization_key_names_are_accepted(tmp_path):
    config = tiny_config("40k", "v2")
    weights = random_webui_weights(config, version="v2", f0=True)
    renamed = OrderedDict((k.replace(".weight_g", ".parametrizations.weight.original0")
                           .replace(".weight_v", ".parametrizations.weight.original1"), v) for k, v in weights.items())
    save_webui_pth(tmp_path / "new.pth", renamed, config, version="v2", f0=True)
    load_synthesizer(read_rvc_model(tmp_path / "new.pth"))


def _broken(tmp_path, mutate) -> str:
    path = tmp_path / "voice.pth"
    write_random_pth(path, version="v2", sr="40k")
    ckpt = torch.load(path, weights_only=True)
    mutate(ckpt)
    torch.save(ckpt, path)
    with pytest.raises(ModelLoadError) as err:
        load_synthesizer(read_rvc_model(path))
    assert str(path) in str(err.value)
    return str(err.value)


def test_shape_mismatch_names_the_tensor(tmp_path):
    def shrink(ckpt):
        ckpt["weight"]["dec.conv_pre.weight"] = ckpt["weight"]["dec.conv_pre.weight"][:, :, :5]
    assert "dec.conv_pre.weight" in _broken(tmp_path, shrink)


def test_missing_and_unexpected_tensors(tmp_path):
    def drop(ckpt):
        del ckpt["weight"]["flow.flows.0.post.bias"]
        ckpt["weight"]["dec.extra.weight"] = torch.zeros(1)
    message = _broken(tmp_path, drop)
    assert "flow.flows.0.post.bias" in message and "dec.extra.weight" in message


def test_config_disagreeing_with_weights(tmp_path):
    def wider(ckpt):
        ckpt["config"][3] = 32  # hidden_channels
    assert "shape" in _broken(tmp_path, wider)


def test_version_disagreeing_with_weights(tmp_path):
    def relabel(ckpt):
        ckpt["version"] = "v1"
    assert "256-d" in _broken(tmp_path, relabel)


@pytest.mark.parametrize("mutate,needle", [
    (lambda c: c.__setitem__("config", c["config"][:17]), "18-entry"),
    (lambda c: c.__setitem__("sr", "48k"), "disagrees"),
    (lambda c: c.__setitem__("f0", 2), "f0 must be"),
    (lambda c: c.__setitem__("version", "v3"), "version"),
    (lambda c: c["config"].__setitem__(12, [10, 10, 2, 3]), "upsample_rates"),
])
def test_bad_metadata(tmp_path, mutate, needle):
    assert needle in _broken(tmp_path, mutate)


def test_nan_weights_are_reported(tmp_path):
    def poison(ckpt):
        ckpt["weight"]["emb_g.weight"][0, 0] = float("nan")
    assert "non-finite" in _broken(tmp_path, poison)


def test_truncated_and_garbage_files(tmp_path):
    path = tmp_path / "voice.pth"
    write_random_pth(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        read_rvc_model(path)
    path.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelLoadError):
        read_rvc_model(path)
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        read_rvc_model(path)
    with pytest.raises(ModelLoadError, match="not found"):
        read_rvc_model(tmp_path / "absent.pth")


def test_training_checkpoint_is_refused_with_a_hint(tmp_path):
    torch.save({"model": {"a": torch.zeros(1)}, "iteration": 3}, tmp_path / "G_100.pth")
    with pytest.raises(ModelLoadError, match="not a WebUI inference model"):
        read_rvc_model(tmp_path / "G_100.pth")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/rtvc_pwned_by_pickle",))


def test_code_in_a_model_file_never_runs(tmp_path):
    marker = "/tmp/rtvc_pwned_by_pickle"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pth"
    torch.save({"weight": {"x": torch.zeros(1)}, "config": [_Evil()]}, path)
    with pytest.raises(ModelLoadError, match="refus"):
        load_torch_file(path, what="RVC model")
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"model": _Evil()}, f, protocol=2)
    with pytest.raises(ModelLoadError):
        load_torch_file(tmp_path / "evil.pkl", what="content encoder")
    assert not os.path.exists(marker)


def test_config_validation_messages():
    good = reference_config("v2", "40k").to_list()
    assert SynthConfig.from_list(good, source="x") == reference_config("v2", "40k")
    bad = list(good)
    bad[5] = 0
    with pytest.raises(ModelLoadError, match=r"config\[5\] \(n_heads\)"):
        SynthConfig.from_list(bad, source="x")
    bad = list(good)
    bad[17] = 44100
    with pytest.raises(ModelLoadError, match="32000, 40000 or 48000"):
        SynthConfig.from_list(bad, source="x")
