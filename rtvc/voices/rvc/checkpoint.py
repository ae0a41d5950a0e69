"""The RVC WebUI inference ``.pth``: read, validate against its config, load strictly; write (for tests).

File format (``process_ckpt.savee``): ``torch.save`` of an OrderedDict with ``weight``
(generator state dict in float16, no ``enc_q.*``, weight-normed layers stored as
``weight_g``/``weight_v``), ``config`` (18 entries), ``info``, ``sr`` ("40k"), ``f0``
(1/0) and ``version`` ("v1"/"v2"; absent means v1).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.config import SAMPLE_RATES, SynthConfig
from rtvc.voices.rvc.safeload import check_state_dict, load_torch_file
from rtvc.voices.rvc.synthesizer import Synthesizer

__all__ = ["RvcModelFile", "expected_file_shapes", "load_synthesizer", "read_rvc_model", "save_webui_pth"]

CONTENT_DIMS = {"v1": 256, "v2": 768}


@dataclass(slots=True)
class RvcModelFile:
    """A validated ``.pth``: its declared metadata and raw weights."""

    path: Path
    config: SynthConfig
    version: str
    f0: bool
    info: str
    weights: dict[str, torch.Tensor]

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def content_dim(self) -> int:
        return CONTENT_DIMS[self.version]

    def describe(self) -> dict:
        return {"version": self.version, "f0": self.f0, "sample_rate": self.sample_rate, "info": self.info,
                "speakers": self.config.spk_embed_dim}


def _weight_norm_prefixes(model: Synthesizer) -> set[str]:
    """Modules RVC wraps in weight norm: flow WaveNet convs, decoder upsamplers and resblock convs."""
    prefixes = set()
    for name, _module in model.named_modules():
        parts = name.split(".")
        if name.startswith("flow.flows.") and ".enc." in name and parts[-1].isdigit() and parts[-2] in (
                "in_layers", "res_skip_layers"):
            prefixes.add(name)
        elif name.startswith("flow.flows.") and name.endswith(".enc.cond_layer"):
            prefixes.add(name)
        elif name.startswith("dec.ups.") and parts[-1].isdigit():
            prefixes.add(name)
        elif name.startswith("dec.resblocks.") and parts[-2] in ("convs1", "convs2", "convs"):
            prefixes.add(name)
    return prefixes


def expected_file_shapes(model: Synthesizer) -> dict[str, tuple[int, ...]]:
    """The keys and shapes a WebUI ``.pth`` holds for ``model`` (weight norm as ``weight_g``/``weight_v``)."""
    wn = _weight_norm_prefixes(model)
    shapes: dict[str, tuple[int, ...]] = {}
    for key, tensor in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in wn and leaf == "weight":
            shapes[f"{prefix}.weight_g"] = (tensor.shape[0],) + (1,) * (tensor.dim() - 1)
            shapes[f"{prefix}.weight_v"] = tuple(tensor.shape)
        else:
            shapes[key] = tuple(tensor.shape)
    return shapes


def _normalise_weight_norm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept the newer parametrization key names too, as ``weight_g``/``weight_v``."""
    out = {}
    for key, tensor in weights.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        out[key] = tensor
    return out


def _fold_weight_norm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, tensor in weights.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            prefix = key[: -len(".weight_v")]
            g = weights[f"{prefix}.weight_g"].float()
            v = tensor.float()
            out[f"{prefix}.weight"] = torch._weight_norm(v, g, 0)
        else:
            out[key] = tensor.float() if tensor.is_floating_point() else tensor
    return out


def read_rvc_model(path: str | Path) -> RvcModelFile:
    """Read and validate a WebUI ``.pth`` (no network is built yet; see :func:`load_synthesizer`)."""
    path = Path(path)
    ckpt = load_torch_file(path, what="RVC model")
    source = f"RVC model {path}"
    if not isinstance(ckpt, dict) or "weight" not in ckpt or "config" not in ckpt:
        keys = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ModelLoadError(f"{source} is not a WebUI inference model (needs 'weight' and 'config'; has {keys}); "
                             "training checkpoints (G_*.pth) must be exported from the WebUI first")
    weights = ckpt["weight"]
    if not isinstance(weights, dict) or not weights or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise ModelLoadError(f"{source}: 'weight' must map parameter names to tensors")
    config_list = list(ckpt["config"]) if isinstance(ckpt["config"], (list, tuple)) else ckpt["config"]
    if isinstance(config_list, list) and len(config_list) == 18 and "emb_g.weight" in weights:
        config_list[15] = int(weights["emb_g.weight"].shape[0])  # loaders trust the embedding, not config[-3]
    config = SynthConfig.from_list(config_list, source=source)
    version = ckpt.get("version", "v1")
    if version not in CONTENT_DIMS:
        raise ModelLoadError(f"{source}: version must be 'v1' or 'v2', got {version!r}")
    f0 = ckpt.get("f0", 1)
    if f0 not in (0, 1) or isinstance(f0, bool):
        raise ModelLoadError(f"{source}: f0 must be 1 (pitch model) or 0 (no pitch), got {f0!r}")
    sr = ckpt.get("sr")
    if sr is not None and SAMPLE_RATES.get(sr, sr) != config.sample_rate:
        raise ModelLoadError(f"{source}: sr {sr!r} disagrees with config sample rate {config.sample_rate}")
    info = ckpt.get("info", "")
    weights = _normalise_weight_norm(weights)
    emb = weights.get("enc_p.emb_phone.weight")
    if emb is not None and emb.dim() == 2 and emb.shape[1] != CONTENT_DIMS[version]:
        raise ModelLoadError(f"{source}: version {version} takes {CONTENT_DIMS[version]}-d content features but "
                             f"enc_p.emb_phone.weight is {list(emb.shape)}")
    if not f0 and any(k.startswith(("enc_p.emb_pitch", "dec.m_source", "dec.noise_convs")) for k in weights):
        raise ModelLoadError(f"{source}: declared f0=0 (no pitch) but holds pitch weights")
    return RvcModelFile(path, config, version, bool(f0), str(info), dict(weights))


def load_synthesizer(model_file: RvcModelFile) -> Synthesizer:
    """Build the network the file declares and load its weights strictly (float32, eval mode)."""
    source = f"RVC model {model_file.path}"
    model = Synthesizer(model_file.config, content_dim=model_file.content_dim, f0=model_file.f0)
    expected = expected_file_shapes(model)
    weights = model_file.weights
    wn = {k[: -len(".weight")] for k in model.state_dict() if k.endswith(".weight")}
    # a layer may also arrive with weight norm already removed (plain .weight)
    for prefix in wn:
        if f"{prefix}.weight" in weights and f"{prefix}.weight_g" in expected:
            expected.pop(f"{prefix}.weight_g")
            expected[f"{prefix}.weight"] = expected.pop(f"{prefix}.weight_v")
    weights = {k: v for k, v in weights.items() if not k.startswith("enc_q.")}
    check_state_dict(weights, expected, source=source, what="its declared config")
    model.load_state_dict(_fold_weight_norm(weights), strict=True)
    return model.eval()


def save_webui_pth(path: str | Path, weights: dict[str, torch.Tensor], config: SynthConfig, *, version: str,
                   f0: bool, info: str = "200epoch", half: bool = True) -> None:
    """Write a ``.pth`` exactly as the WebUI's ``savee`` does (used by tests and the benchmark)."""
    opt: dict[str, Any] = OrderedDict()
    opt["weight"] = OrderedDict((k, v.half() if half else v) for k, v in weights.items() if "enc_q" not in k)
    opt["config"] = config.to_list()
    opt["info"] = info
    opt["sr"] = {v: k for k, v in SAMPLE_RATES.items()}[config.sample_rate]
    opt["f0"] = int(f0)
    opt["version"] = version
    torch.save(opt, str(path))
