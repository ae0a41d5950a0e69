"""FCPE pitch from the weights the ``torchfcpe`` wheel ships, without importing torchfcpe (it imports torchaudio).

Install the wheel without its dependencies (``pip install --no-deps torchfcpe==0.0.4``); only its
data file ``torchfcpe/assets/fcpe_c_v001.pt`` is read, found with :func:`importlib.util.find_spec`
(which locates a top-level package without running its ``__init__``). The checkpoint is a plain
dict (``model`` state dict + ``config_dict``) and loads with ``weights_only=True``; the config is
checked against what :mod:`~rtvc.voices.rvc.fcpe_net` implements and every tensor's shape is
checked before a strict load.

RVC's realtime GUI calls it as ``spawn_bundled_infer_model().infer(x, sr=16000,
decoder_mode="local_argmax", threshold=0.006)`` on the new block plus 50 ms, with no rounding
of the segment length (unlike RMVPE). Since every f0 value depends on the whole segment (see
``fcpe_net``), the streaming f0 is RVC's per-segment f0 with its cache rule, not a one-shot track.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.fcpe_net import FcpeMel, FcpeNet
from rtvc.voices.rvc.safeload import check_state_dict, load_torch_file

__all__ = ["FCPE_INSTALL", "FCPE_THRESHOLD", "FcpeModel", "FcpeTracker", "bundled_fcpe_path", "load_fcpe"]

FCPE_THRESHOLD = 0.006  # RVC realtime's threshold for local_argmax
FCPE_INSTALL = "pip install --no-deps torchfcpe==0.0.4"
_BUNDLED = ("assets", "fcpe_c_v001.pt")


def bundled_fcpe_path() -> Path | None:
    """The installed torchfcpe wheel's ``fcpe_c_v001.pt``, or None (the package is never imported)."""
    try:
        spec = importlib.util.find_spec("torchfcpe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*_BUNDLED)
        if path.is_file():
            return path
    return None


class FcpeModel(torch.nn.Module):
    """Mel front end + network: ``[B, N] at 16 kHz -> f0 Hz [B, N // 160 + 1]``."""

    def __init__(self, mel: FcpeMel, net: FcpeNet, threshold: float = FCPE_THRESHOLD) -> None:
        super().__init__()
        self.mel, self.net, self.threshold = mel, net, threshold

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.mel(audio).to(self.net.cent_table.dtype)
        return self.net.decode(self.net(mel), self.threshold)


def _require(cond: bool, source: str, problem: str) -> None:
    if not cond:
        raise ModelLoadError(f"{source}: {problem}")


def load_fcpe(path: str | Path) -> FcpeModel:
    """Load a torchfcpe ``CFNaiveMelPE`` checkpoint (``conv_only`` models) strictly, checking every shape."""
    path = Path(path)
    source = f"FCPE model {path}"
    ckpt = load_torch_file(path, what="FCPE model")
    _require(isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict)
             and isinstance(ckpt.get("config_dict"), dict), source, "not a torchfcpe checkpoint "
             "(needs 'model' and 'config_dict')")
    model_cfg, mel_cfg = ckpt["config_dict"].get("model"), ckpt["config_dict"].get("mel")
    _require(isinstance(model_cfg, dict) and isinstance(mel_cfg, dict), source, "config_dict lacks model/mel")
    _require(model_cfg.get("type") == "CFNaiveMelPE", source, f"model type {model_cfg.get('type')!r} "
             "is not CFNaiveMelPE")
    _require(bool(model_cfg.get("conv_only", False)), source, "only conv_only models (the bundled one) are "
             "supported; this one has attention layers")
    _require(not model_cfg.get("use_harmonic_emb", False), source, "harmonic embeddings are not supported")
    _require(int(mel_cfg.get("sr", 16000)) == 16000 and int(mel_cfg.get("hop_size", 160)) == 160, source,
             "RVC needs a 16 kHz model with a 160-sample hop")
    _require(str(mel_cfg.get("type", "default")).lower() in ("default", "none"), source,
             f"mel type {mel_cfg.get('type')!r} is not supported")
    try:
        mel = FcpeMel(n_mels=int(mel_cfg["num_mels"]), n_fft=int(mel_cfg["n_fft"]), win=int(mel_cfg["win_size"]),
                      fmin=float(mel_cfg.get("fmin") or 0.0), fmax=float(mel_cfg.get("fmax") or 8000.0))
        net = FcpeNet(n_mels=int(mel_cfg["num_mels"]), out_dims=int(model_cfg["out_dims"]),
                      hidden=int(model_cfg["hidden_dims"]), n_layers=int(model_cfg["n_layers"]),
                      f0_min=float(model_cfg["f0_min"]), f0_max=float(model_cfg["f0_max"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{source}: bad config value: {exc!r}") from None
    state = ckpt["model"]
    _require(all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()), source,
             "'model' must map parameter names to tensors")
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    check_state_dict(state, expected, source=source, what="the FCPE network")
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return FcpeModel(mel, net).eval()


class FcpeTracker:
    """Batched FCPE f0 (:class:`~rtvc.voices.rvc.pitch.PitchTracker`); the network loads on first use.

    Parameters
    ----------
    load : callable returning FcpeModel
        Called once, on the first block that asks for FCPE (most sessions never do).
    """

    name = "fcpe"
    segment_quantum = 1  # any length: RVC feeds it the block plus 50 ms as is

    def __init__(self, load: Callable[[], FcpeModel]) -> None:
        self._load = load
        self._model: FcpeModel | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> FcpeModel:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        model = self.model
        return model(audio.to(model.net.cent_table.device))
