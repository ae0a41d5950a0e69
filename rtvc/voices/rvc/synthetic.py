"""Random-weight model files in the real RVC formats, for tests and benchmarks.

No real weights can be downloaded here, so conformance is checked on files that have the
exact key names, dtypes and nesting of the real ones, filled with seeded random values.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import torch

from rtvc.voices.rvc.checkpoint import CONTENT_DIMS, _weight_norm_prefixes, save_webui_pth
from rtvc.voices.rvc.config import SynthConfig, reference_config
from rtvc.voices.rvc.hubert import ContentEncoder, HubertConfig
from rtvc.voices.rvc.synthesizer import Synthesizer

__all__ = [
    "random_hubert_weights", "random_webui_weights", "tiny_config", "tiny_hubert_config", "write_fairseq_checkpoint",
    "write_random_fcpe", "write_random_pth",
]


def tiny_config(sr: str = "40k", version: str = "v2") -> SynthConfig:
    """The reference config for ``sr`` with small widths (same rates, kernels and structure)."""
    return replace(reference_config(version, sr), inter_channels=16, hidden_channels=16, filter_channels=32,
                   n_layers=2, upsample_initial_channel=32, gin_channels=8, spk_embed_dim=3)


def random_webui_weights(config: SynthConfig, *, version: str, f0: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """A generator state dict as training leaves it: weight norm as ``weight_g``/``weight_v``, float32."""
    torch.manual_seed(seed)
    model = Synthesizer(config, content_dim=CONTENT_DIMS[version], f0=f0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("emb_rel_k", "emb_rel_v")):
                p.normal_(0.0, p.shape[-1] ** -0.5)
            elif name.endswith((".bias", ".beta")):
                p.uniform_(-0.05, 0.05)
            elif name.endswith(".gamma"):
                p.uniform_(0.8, 1.2)
            elif name.startswith("flow.") and ".post." in name:
                p.normal_(0.0, 0.02)  # trained flows move the latent a little; zero-init would hide bugs
    wn = _weight_norm_prefixes(model)
    weights: dict[str, torch.Tensor] = OrderedDict()
    for key, tensor in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in wn and leaf == "weight":
            dims = list(range(1, tensor.dim()))
            weights[f"{prefix}.weight_g"] = tensor.norm(dim=dims, keepdim=True).clone()
            weights[f"{prefix}.weight_v"] = tensor.clone()
        else:
            weights[key] = tensor.clone()
    # training checkpoints also hold the posterior encoder; the WebUI drops it on export
    weights["enc_q.pre.weight"] = torch.zeros(config.hidden_channels, config.spec_channels, 1)
    return weights


def write_random_pth(path: str | Path, *, version: str = "v2", sr: str = "40k", f0: bool = True, tiny: bool = True,
                     seed: int = 0) -> SynthConfig:
    """Write a WebUI-format ``.pth`` with random weights; returns its config."""
    config = tiny_config(sr, version) if tiny else reference_config(version, sr)
    weights = random_webui_weights(config, version=version, f0=f0, seed=seed)
    save_webui_pth(path, weights, config, version=version, f0=f0)
    return config


# -- content encoder (fairseq checkpoint) -------------------------------------------------------------

def tiny_hubert_config(version: str = "v1") -> HubertConfig:
    """Real kernels and strides (so frame counts match) with few, narrow layers.

    v1 voices read ``final_proj`` (256-d) so the width can be small; v2 voices read the
    768-d hidden state itself, so only the depth and the feed-forward width shrink.
    """
    conv = ((16, 10, 5),) + ((16, 3, 2),) * 4 + ((16, 2, 2),) * 2
    if version == "v2":
        return HubertConfig(embed_dim=768, layers=2, heads=12, ffn_dim=64, conv_layers=conv, conv_pos=16,
                            conv_pos_groups=16, final_dim=256)
    return HubertConfig(embed_dim=32, layers=3, heads=4, ffn_dim=64, conv_layers=conv, conv_pos=16,
                        conv_pos_groups=4, final_dim=256)


def random_hubert_weights(cfg: HubertConfig, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """fairseq-named HuBERT/ContentVec weights, including the training-only tensors real files carry."""
    torch.manual_seed(seed)
    model = ContentEncoder(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_g"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("weight_v"):
                p.normal_(0.0, 0.1)
            elif name.endswith(".bias"):
                p.uniform_(-0.05, 0.05)
            elif "norm" in name and name.endswith(".weight"):
                p.uniform_(0.8, 1.2)
    weights = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    weights["mask_emb"] = torch.rand(cfg.embed_dim)
    weights["label_embs_concat"] = torch.rand(504, cfg.final_dim or 256)
    return weights


class _FakeModule:
    """Stand-ins registered under fairseq/omegaconf module names so pickles carry the real global names."""

    def __init__(self, name: str, classes: dict[str, type]) -> None:
        self.name, self.classes = name, classes

    def __enter__(self) -> None:
        module = types.ModuleType(self.name)
        for cls_name, cls in self.classes.items():
            cls.__module__, cls.__qualname__, cls.__name__ = self.name, cls_name, cls_name
            setattr(module, cls_name, cls)
        parts = self.name.split(".")
        self.added = [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) not in sys.modules]
        for parent in self.added:
            sys.modules[parent] = types.ModuleType(parent)
        self.saved = sys.modules.get(self.name)
        sys.modules[self.name] = module

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            sys.modules.pop(self.name, None)
        else:
            sys.modules[self.name] = self.saved
        for parent in self.added:
            sys.modules.pop(parent, None)


def write_fairseq_checkpoint(path: str | Path, cfg: HubertConfig, weights: dict[str, torch.Tensor], *,
                             style: str = "omegaconf") -> None:
    """Write a checkpoint shaped like fairseq's ``save_state``.

    ``style``: "omegaconf" (``cfg`` pickled as omegaconf DictConfig nodes), "dict" (``cfg`` a plain
    dict) or "args" (legacy ``args`` argparse.Namespace, ``cfg`` None). ``task_state`` always holds
    pickled fairseq ``Dictionary`` objects, as HuBERT pretraining checkpoints do.
    """
    conv = " + ".join(f"[({d}, {k}, {s})]" for d, k, s in cfg.conv_layers)
    model_cfg = {"_name": "hubert", "extractor_mode": "default", "encoder_layers": cfg.layers,
                 "encoder_embed_dim": cfg.embed_dim, "encoder_ffn_embed_dim": cfg.ffn_dim,
                 "encoder_attention_heads": cfg.heads, "activation_fn": "gelu", "layer_norm_first": False,
                 "conv_feature_layers": conv, "conv_bias": False, "final_dim": cfg.final_dim,
                 "conv_pos": cfg.conv_pos, "conv_pos_groups": cfg.conv_pos_groups, "label_rate": 50}

    class Dictionary:
        def __init__(self) -> None:
            self.symbols = ["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(500)]
            self.count = [1] * len(self.symbols)
            self.indices = {s: i for i, s in enumerate(self.symbols)}

    class AnyNode:
        def __init__(self, value: object) -> None:
            self._val, self._metadata, self._parent = value, None, None

    class DictConfig:
        def __init__(self, content: dict) -> None:
            self._content = {k: DictConfig(v) if isinstance(v, dict) else AnyNode(v) for k, v in content.items()}
            self._metadata, self._parent = None, None

        def __getstate__(self) -> dict:
            return dict(self.__dict__)

    full_cfg = {"common": {"seed": 1337}, "model": model_cfg, "task": {"_name": "hubert_pretraining"}}
    with _FakeModule("fairseq.data.dictionary", {"Dictionary": Dictionary}), \
            _FakeModule("omegaconf.nodes", {"AnyNode": AnyNode}), \
            _FakeModule("omegaconf.dictconfig", {"DictConfig": DictConfig}):
        state = {
            "args": argparse.Namespace(**model_cfg, task="hubert_pretraining") if style == "args" else None,
            "cfg": {"omegaconf": DictConfig(full_cfg), "dict": full_cfg}.get(style),
            "model": weights,
            "optimizer_history": [{"criterion_name": "HubertCriterion", "num_updates": 400000}],
            "task_state": {"dictionaries": [Dictionary()]},
            "extra_state": {"epoch": 100, "train_iterator": {"epoch": 100}},
            "last_optimizer_state": None,
        }
        torch.save(state, str(path))


def write_random_fcpe(path: str | Path, *, hidden: int = 32, n_layers: int = 2, seed: int = 0) -> None:
    """A torchfcpe ``CFNaiveMelPE`` checkpoint (conv_only) shaped like the wheel's ``fcpe_c_v001.pt``.

    The bundled file is ``{"global_step", "model", "config_dict"}`` with 512 hidden channels and
    6 layers; tests use small widths with the same key names and the same config schema.
    """
    from rtvc.voices.rvc.fcpe_net import FcpeNet

    torch.manual_seed(seed)
    net = FcpeNet(hidden=hidden, n_layers=n_layers)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight_g"):
                p.uniform_(0.5, 1.5)
            elif p.dim() > 1:
                p.normal_(0.0, 1.0 / p[0].numel() ** 0.5)
            else:
                p.normal_(0.0, 0.1) if name.endswith("bias") else p.uniform_(0.8, 1.2)
    config = {
        "mel": {"sr": 16000, "num_mels": 128, "n_fft": 1024, "win_size": 1024, "hop_size": 160, "fmin": 0,
                "fmax": 8000},
        "model": {"type": "CFNaiveMelPE", "out_dims": 360, "hidden_dims": hidden, "n_layers": n_layers,
                  "n_heads": 8, "f0_min": 32.7, "f0_max": 1975.5, "use_fa_norm": True, "residual_dropout": 0.1,
                  "attention_dropout": 0.1, "conv_only": True},
    }
    torch.save({"global_step": 1, "model": net.state_dict(), "config_dict": config}, str(path))
