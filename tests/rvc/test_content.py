"""Content encoder: fairseq checkpoints without fairseq, conformance with transformers' HubertModel."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.content import fairseq_to_hf, load_content_encoder
from rtvc.voices.rvc.hubert import HubertConfig
from rtvc.voices.rvc.safeload import Opaque, load_torch_file
from rtvc.voices.rvc.synthetic import random_hubert_weights, tiny_hubert_config, write_fairseq_checkpoint

transformers = pytest.importorskip("transformers")


def _hf_model(cfg: HubertConfig, weights: dict[str, torch.Tensor]):
    hf_cfg = transformers.HubertConfig(
        hidden_size=cfg.embed_dim, num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        intermediate_size=cfg.ffn_dim, conv_dim=[d for d, _, _ in cfg.conv_layers],
        conv_kernel=[k for _, k, _ in cfg.conv_layers], conv_stride=[s for _, _, s in cfg.conv_layers],
        num_conv_pos_embeddings=cfg.conv_pos, num_conv_pos_embedding_groups=cfg.conv_pos_groups,
        feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False, feat_proj_layer_norm=True,
        hidden_act="gelu", layer_norm_eps=cfg.layer_norm_eps)
    model = transformers.HubertModel(hf_cfg).eval()
    state = fairseq_to_hf(weights)
    state.pop("final_proj.weight"), state.pop("final_proj.bias")
    model.load_state_dict(state, strict=True)
    return model


@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    cfg = HubertConfig(embed_dim=48, layers=10, heads=4, ffn_dim=96,
                       conv_layers=((24, 10, 5),) + ((24, 3, 2),) * 4 + ((24, 2, 2),) * 2, conv_pos=32,
                       conv_pos_groups=8, final_dim=256)
    weights = random_hubert_weights(cfg, seed=11)
    path = tmp_path_factory.mktemp("hubert") / "hubert_base.pt"
    write_fairseq_checkpoint(path, cfg, weights, style="omegaconf")
    return cfg, weights, path


def test_hidden_states_match_transformers(hubert):
    cfg, weights, path = hubert
    ours = load_content_encoder(path)
    reference = _hf_model(cfg, weights)
    wave = torch.randn(2, 16000 + 123) * 0.1
    with torch.no_grad():
        states = reference(wave, output_hidden_states=True).hidden_states
        for layer in (1, 9, cfg.layers):
            got = ours(wave, layer)
            assert got.shape == states[layer].shape == (2, ours.frames(wave.shape[1]), cfg.embed_dim)
            torch.testing.assert_close(got, states[layer], atol=1e-4, rtol=0)
        assert not torch.allclose(ours(wave, 9), ours(wave, cfg.layers))
        v1 = ours(wave, 9, project=True)
        torch.testing.assert_close(v1, torch.nn.functional.linear(states[9], weights["final_proj.weight"],
                                                                  weights["final_proj.bias"]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("style", ["omegaconf", "dict", "args"])
def test_fairseq_config_styles(tmp_path, style):
    cfg = tiny_hubert_config("v1")
    path = tmp_path / "ckpt.pt"
    write_fairseq_checkpoint(path, cfg, random_hubert_weights(cfg), style=style)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # it really holds config objects
    raw = load_torch_file(path, what="content encoder")
    assert isinstance(raw["task_state"]["dictionaries"][0], Opaque)  # fairseq Dictionary, never imported
    assert load_content_encoder(path).cfg == cfg


def test_hf_folder_form(tmp_path, hubert):
    cfg, weights, _ = hubert
    reference = _hf_model(cfg, weights)
    folder = tmp_path / "hubert_base"
    reference.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "hubert"
    ours = load_content_encoder(folder)
    wave = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(ours(wave, cfg.layers), reference(wave).last_hidden_state, atol=1e-4, rtol=0)
    assert not hasattr(ours, "final_proj")  # HubertModel has none; v1 voices then refuse this encoder


def test_mismatched_and_unsupported_checkpoints(tmp_path, hubert):
    cfg, weights, _ = hubert
    broken = dict(weights)
    broken["encoder.layers.3.fc1.weight"] = broken["encoder.layers.3.fc1.weight"][:, :10]
    write_fairseq_checkpoint(tmp_path / "a.pt", cfg, broken)
    with pytest.raises(ModelLoadError, match=r"encoder.layers.3.fc1.weight"):
        load_content_encoder(tmp_path / "a.pt")
    extra = dict(weights, **{"encoder.layers.0.cond_layer_norm.weight": torch.ones(3)})
    write_fairseq_checkpoint(tmp_path / "b.pt", cfg, extra)
    with pytest.raises(ModelLoadError, match="unexpected"):
        load_content_encoder(tmp_path / "b.pt")
    torch.save({"weights": {}}, tmp_path / "c.pt")
    with pytest.raises(ModelLoadError, match="not a fairseq checkpoint"):
        load_content_encoder(tmp_path / "c.pt")
    data = (tmp_path / "a.pt").read_bytes()
    (tmp_path / "d.pt").write_bytes(data[:1000])
    with pytest.raises(ModelLoadError, match="d.pt"):
        load_content_encoder(tmp_path / "d.pt")
