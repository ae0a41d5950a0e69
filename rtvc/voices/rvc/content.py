"""Load a content encoder: fairseq checkpoint (``hubert_base.pt``, ContentVec) or Hugging Face folder.

Both forms end up as fairseq-named weights in :class:`~rtvc.voices.rvc.hubert.ContentEncoder`,
loaded strictly after every tensor's shape was checked against the declared config.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import torch

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.hubert import DEFAULT_CONV_LAYERS, ContentEncoder, HubertConfig
from rtvc.voices.rvc.safeload import check_state_dict, load_torch_file, to_plain

__all__ = ["fairseq_to_hf", "hf_to_fairseq", "load_content_encoder"]

IGNORED_KEYS = ("mask_emb", "label_embs_concat")  # training-only


def _literal_layers(text: str, source: str) -> tuple[tuple[int, int, int], ...]:
    """Evaluate fairseq's ``conv_feature_layers`` string (lists, tuples, ints, + and *) without eval()."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left), ev(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"unsupported element {type(node).__name__}")

    try:
        layers = ev(ast.parse(text, mode="eval"))
        out = tuple((int(d), int(k), int(s)) for d, k, s in layers)
    except (SyntaxError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{source}: cannot read conv_feature_layers {text!r}: {exc}") from None
    if not out:
        raise ModelLoadError(f"{source}: conv_feature_layers is empty")
    return out


def _model_settings(ckpt: dict) -> dict:
    """The model section of a fairseq checkpoint's ``cfg`` (omegaconf) or legacy ``args`` (Namespace)."""
    cfg = to_plain(ckpt.get("cfg"))
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        return cfg["model"]
    args = to_plain(ckpt.get("args"))
    return args if isinstance(args, dict) else {}


def _config_from(settings: dict, weights: dict[str, torch.Tensor], source: str) -> HubertConfig:
    if settings.get("extractor_mode", "default") != "default":
        raise ModelLoadError(f"{source}: extractor_mode {settings['extractor_mode']!r} is not supported "
                             "(HuBERT/ContentVec base use 'default')")
    if settings.get("layer_norm_first", False):
        raise ModelLoadError(f"{source}: layer_norm_first=True (large models) is not supported")
    if settings.get("conv_bias", False):
        raise ModelLoadError(f"{source}: conv_bias=True is not supported")
    conv = settings.get("conv_feature_layers")
    conv_layers = _literal_layers(conv, source) if isinstance(conv, str) else DEFAULT_CONV_LAYERS
    proj = weights.get("post_extract_proj.weight")
    if proj is None or proj.dim() != 2:
        raise ModelLoadError(f"{source}: no post_extract_proj.weight; not a HuBERT/ContentVec checkpoint")
    embed_dim = int(settings.get("encoder_embed_dim", proj.shape[0]))
    layers = sum(1 for k in weights if k.startswith("encoder.layers.") and k.endswith(".fc1.weight"))
    fc1 = weights.get("encoder.layers.0.fc1.weight")
    final = weights.get("final_proj.weight")
    pos_v = weights.get("encoder.pos_conv.0.weight_v")
    conv_pos = int(settings.get("conv_pos", pos_v.shape[2] if pos_v is not None else 128))
    groups = int(settings.get("conv_pos_groups", embed_dim // pos_v.shape[1] if pos_v is not None else 16))
    return HubertConfig(
        embed_dim=embed_dim,
        layers=int(settings.get("encoder_layers", layers)),
        heads=int(settings.get("encoder_attention_heads", 12)),
        ffn_dim=int(settings.get("encoder_ffn_embed_dim", fc1.shape[0] if fc1 is not None else 4 * embed_dim)),
        conv_layers=conv_layers, conv_pos=conv_pos, conv_pos_groups=groups,
        final_dim=int(final.shape[0]) if final is not None else 0,
    )


def _load_strict(cfg: HubertConfig, weights: dict[str, torch.Tensor], source: str) -> ContentEncoder:
    if cfg.embed_dim % cfg.heads:
        raise ModelLoadError(f"{source}: embed dim {cfg.embed_dim} is not divisible by {cfg.heads} heads")
    model = ContentEncoder(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights = {k: v for k, v in weights.items() if k not in IGNORED_KEYS}
    check_state_dict(weights, expected, source=source, what="a HuBERT/ContentVec encoder")
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    return model.eval()


# -- Hugging Face naming ------------------------------------------------------------------------------

_LAYER_MAP = (
    ("self_attn.q_proj", "attention.q_proj"), ("self_attn.k_proj", "attention.k_proj"),
    ("self_attn.v_proj", "attention.v_proj"), ("self_attn.out_proj", "attention.out_proj"),
    ("self_attn_layer_norm", "layer_norm"), ("fc1", "feed_forward.intermediate_dense"),
    ("fc2", "feed_forward.output_dense"), ("final_layer_norm", "final_layer_norm"),
)


def fairseq_to_hf(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename fairseq HuBERT weights to ``transformers.HubertModel`` names (``final_proj`` kept as is)."""
    out = {}
    for key, value in weights.items():
        new = key
        if key.startswith("feature_extractor.conv_layers."):
            parts = key.split(".")
            new = f"feature_extractor.conv_layers.{parts[2]}.{'conv' if parts[3] == '0' else 'layer_norm'}.{parts[4]}"
        elif key.startswith("layer_norm."):
            new = "feature_projection." + key
        elif key.startswith("post_extract_proj."):
            new = key.replace("post_extract_proj", "feature_projection.projection")
        elif key.startswith("encoder.pos_conv.0."):
            leaf = key.rsplit(".", 1)[1]
            leaf = {"weight_g": "parametrizations.weight.original0",
                    "weight_v": "parametrizations.weight.original1"}.get(leaf, leaf)
            new = f"encoder.pos_conv_embed.conv.{leaf}"
        elif key.startswith("encoder.layers."):
            for old, hf in _LAYER_MAP:
                if f".{old}." in key:
                    new = key.replace(f".{old}.", f".{hf}.")
                    break
        elif key == "mask_emb":
            new = "masked_spec_embed"
        elif key == "label_embs_concat":
            continue
        out[new] = value
    return out


def hf_to_fairseq(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`fairseq_to_hf` (also accepts the older ``weight_g``/``weight_v`` HF names)."""
    out = {}
    for key, value in weights.items():
        key = key.removeprefix("hubert.")
        new = key
        if key.startswith("feature_extractor.conv_layers."):
            parts = key.split(".")
            new = f"feature_extractor.conv_layers.{parts[2]}.{'0' if parts[3] == 'conv' else '2'}.{parts[4]}"
        elif key.startswith("feature_projection.layer_norm."):
            new = key.removeprefix("feature_projection.")
        elif key.startswith("feature_projection.projection."):
            new = key.replace("feature_projection.projection", "post_extract_proj")
        elif key.startswith("encoder.pos_conv_embed.conv."):
            leaf = key.removeprefix("encoder.pos_conv_embed.conv.")
            leaf = {"parametrizations.weight.original0": "weight_g",
                    "parametrizations.weight.original1": "weight_v"}.get(leaf, leaf)
            new = f"encoder.pos_conv.0.{leaf}"
        elif key.startswith("encoder.layers."):
            for old, hf in _LAYER_MAP:
                if f".{hf}." in key:
                    new = key.replace(f".{hf}.", f".{old}.")
                    break
        elif key == "masked_spec_embed":
            new = "mask_emb"
        out[new] = value
    return out


def _load_hf_folder(folder: Path) -> ContentEncoder:
    source = f"content encoder {folder}"
    try:
        hf = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{source}: cannot read config.json: {exc}") from None
    if hf.get("feat_extract_norm", "group") != "group" or hf.get("do_stable_layer_norm", False):
        raise ModelLoadError(f"{source}: only the base layout (group norm, post-LN) is supported")
    if hf.get("conv_bias", False):
        raise ModelLoadError(f"{source}: conv_bias=True is not supported")
    if (folder / "model.safetensors").is_file():
        try:
            from safetensors.torch import load_file
            raw = load_file(str(folder / "model.safetensors"))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ModelLoadError(f"{source}: model.safetensors is corrupt: {exc}") from None
    elif (folder / "pytorch_model.bin").is_file():
        raw = load_torch_file(folder / "pytorch_model.bin", what="content encoder")
    else:
        raise ModelLoadError(f"{source}: no model.safetensors or pytorch_model.bin")
    weights = hf_to_fairseq(raw)
    final = weights.get("final_proj.weight")
    cfg = HubertConfig(
        embed_dim=int(hf.get("hidden_size", 768)), layers=int(hf.get("num_hidden_layers", 12)),
        heads=int(hf.get("num_attention_heads", 12)), ffn_dim=int(hf.get("intermediate_size", 3072)),
        conv_layers=tuple(zip(hf.get("conv_dim", [512] * 7), hf.get("conv_kernel", [10, 3, 3, 3, 3, 2, 2]),
                              hf.get("conv_stride", [5, 2, 2, 2, 2, 2, 2]), strict=True)),
        conv_pos=int(hf.get("num_conv_pos_embeddings", 128)),
        conv_pos_groups=int(hf.get("num_conv_pos_embedding_groups", 16)),
        final_dim=int(final.shape[0]) if final is not None else 0,
        layer_norm_eps=float(hf.get("layer_norm_eps", 1e-5)),
    )
    return _load_strict(cfg, weights, source)


def load_content_encoder(path: str | Path) -> ContentEncoder:
    """Load ``hubert_base.pt`` / ``checkpoint_best_legacy_500.pt`` (fairseq) or an HF folder."""
    path = Path(path)
    if path.is_dir():
        return _load_hf_folder(path)
    ckpt = load_torch_file(path, what="content encoder")
    source = f"content encoder {path}"
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ModelLoadError(f"{source} is not a fairseq checkpoint (needs a 'model' state dict)")
    weights = ckpt["model"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise ModelLoadError(f"{source}: 'model' must map parameter names to tensors")
    cfg = _config_from(_model_settings(ckpt), weights, source)
    return _load_strict(cfg, weights, source)
