"""ONNX synthesizer files in the formats RVC users have, exported from rtvc's own synthesizer (tests, benchmarks).

Each writer reproduces one real exporter's graph interface -- input names, dtypes, ranks,
dynamic axes, opset, output shape, metadata -- around :class:`Synthesizer` with whatever
weights it holds (random ones in tests). The networks inside are rtvc's; only the
signature and the noise handling follow the real exporters:

``rvc``      RVC WebUI ``infer/modules/onnx/export.py``: ``phone [1,T,C]`` f32, ``phone_lengths [1]``
             i64, ``pitch [1,T]`` i64, ``pitchf [1,T]`` f32, ``ds [1]`` i64, ``rnd [1,192,T]`` f32 (the
             prior noise, already scaled) -> ``audio [1,1,T*hop]``; no-pitch models drop pitch/pitchf.
             The NSF excitation noise is drawn inside the graph (``RandomNormalLike``).
``wokada``   w-okada ``export2onnx.py``: ``feats``, ``p_len``, ``pitch``, ``pitchf``, ``sid`` (no-pitch:
             ``feats``, ``p_len``, ``sid``), all noise inside the graph, output ``audio`` = ``clip(o[0,0])``
             ``[T*hop]`` for metadata version "2.1" (older files: ``[1,1,T*hop]`` plus extra outputs),
             JSON in ``metadata_props["metadata"]``.
``deiteris`` the w-okada inputs plus scalar ``skip_head``, ``return_length``, ``formant_length`` (trimmed
             render, RVC's realtime ``infer``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rtvc.voices.rvc.synthesizer import FLOW_CONTEXT_FRAMES, NOISE_SCALE, Synthesizer

__all__ = ["wokada_metadata", "write_deiteris_onnx", "write_rvc_onnx", "write_wokada_onnx"]

_EXAMPLE_FRAMES = 64


def _source_noise(pitchf: torch.Tensor, hop: int) -> torch.Tensor:
    """In-graph standard-normal NSF noise, ``[B, T, hop]`` (flat order = RVC's ``[B, T*hop, 1]``)."""
    return torch.randn_like(pitchf[:, :, None].expand(-1, -1, hop))


def _render(synth: Synthesizer, phone, lengths, pitch, pitchf, sid, prior_scaled, source):  # noqa: ANN001, ANN202
    """The whole-window render with explicit (scaled) prior noise: RVC's ``SynthesizerTrnMsNSFsidM.forward``."""
    g = synth.emb_g(sid).unsqueeze(-1)
    m, logs, mask = synth.enc_p(phone, pitch if synth.f0 else None, lengths)
    z = synth.flow.reverse((m + torch.exp(logs) * prior_scaled) * mask, mask, g)
    return synth.dec(z * mask, g, pitchf if synth.f0 else None, source)


class _RvcGraph(nn.Module):
    def __init__(self, synth: Synthesizer) -> None:
        super().__init__()
        self.synth = synth

    def forward(self, phone, phone_lengths, *rest):  # noqa: ANN001
        s = self.synth
        pitch, pitchf, ds, rnd = rest if s.f0 else (None, None, *rest)
        source = _source_noise(pitchf, s.hop) if s.f0 else None
        return _render(s, phone, phone_lengths, pitch, pitchf, ds, rnd, source)


class _WokadaGraph(nn.Module):
    def __init__(self, synth: Synthesizer, legacy: bool) -> None:
        super().__init__()
        self.synth, self.legacy = synth, legacy

    def forward(self, feats, p_len, *rest):  # noqa: ANN001
        s = self.synth
        pitch, pitchf, sid = rest if s.f0 else (None, None, *rest)
        shape_like = feats[:, :1, :1].transpose(1, 2).expand(-1, s.config.inter_channels, feats.shape[1])
        prior = torch.randn_like(shape_like) * NOISE_SCALE
        source = _source_noise(pitchf, s.hop) if s.f0 else None
        o = _render(s, feats, p_len, pitch, pitchf, sid, prior, source)
        if self.legacy:  # pre-2.1 exports returned the raw decoder output and more
            return o, torch.ones_like(o[:, :, :1])
        return torch.clip(o[0, 0], -1.0, 1.0)


class _DeiterisGraph(nn.Module):
    """RVC's trimmed realtime render with the trim points as scalar inputs (formant stretch included)."""

    def __init__(self, synth: Synthesizer) -> None:
        super().__init__()
        self.synth = synth

    def forward(self, feats, p_len, *rest):  # noqa: ANN001
        s = self.synth
        pitch, pitchf, sid, skip_head, return_length, formant_length = rest if s.f0 else (None, None, *rest)
        g = s.emb_g(sid).unsqueeze(-1)
        flow_head = torch.clamp(skip_head - FLOW_CONTEXT_FRAMES, min=0)
        dec_head = skip_head - flow_head
        m, logs, mask = s.enc_p(feats, pitch, p_len)
        keep = torch.arange(flow_head, feats.shape[1], device=feats.device)
        m, logs, mask = m.index_select(2, keep), logs.index_select(2, keep), mask.index_select(2, keep)
        z_p = (m + torch.exp(logs) * torch.randn_like(m) * NOISE_SCALE) * mask
        z = s.flow.reverse(z_p, mask, g)
        span = torch.arange(dec_head, dec_head + return_length, device=feats.device)
        z = (z * mask).index_select(2, span)
        z = F.interpolate(z, size=formant_length, mode="linear")  # formant stretch (identity when equal)
        f0 = source = None
        if s.f0:
            f0 = pitchf.index_select(1, torch.arange(skip_head, skip_head + formant_length, device=feats.device))
            source = _source_noise(f0, s.hop)
        return torch.clip(s.dec(z, g, f0, source)[0, 0], -1.0, 1.0)


def _export(module: nn.Module, args: tuple, path: Path, names: list[str], outputs: list[str], dynamic: dict,
            opset: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=names, output_names=outputs, dynamic_axes=dynamic,
                          opset_version=opset, dynamo=False, do_constant_folding=False)


def _examples(synth: Synthesizer, batch: int = 1) -> dict[str, torch.Tensor]:
    t = _EXAMPLE_FRAMES
    return {"phone": torch.randn(batch, t, synth.content_dim), "lengths": torch.full((batch,), t, dtype=torch.long),
            "pitch": torch.randint(1, 255, (batch, t)), "pitchf": torch.rand(batch, t) * 200 + 80,
            "sid": torch.zeros(batch, dtype=torch.long)}


@torch.no_grad()
def write_rvc_onnx(path: str | Path, synth: Synthesizer, *, opset: int = 17, dynamic_batch: bool = False) -> Path:
    """RVC WebUI's export signature (``dynamic_batch`` adds a batch axis, which the WebUI's files lack)."""
    synth = synth.float().cpu().eval()
    e = _examples(synth, 2 if dynamic_batch else 1)
    rnd = torch.randn(e["phone"].shape[0], synth.config.inter_channels, _EXAMPLE_FRAMES)
    if synth.f0:
        names, args = ["phone", "phone_lengths", "pitch", "pitchf", "ds", "rnd"], (
            e["phone"], e["lengths"], e["pitch"], e["pitchf"], e["sid"], rnd)
    else:
        names, args = ["phone", "phone_lengths", "ds", "rnd"], (e["phone"], e["lengths"], e["sid"], rnd)
    time_axis = {"phone": 1, "pitch": 1, "pitchf": 1, "rnd": 2}
    dynamic: dict = {n: ({0: "batch", time_axis[n]: "t"} if dynamic_batch else [time_axis[n]])
                     for n in names if n in time_axis}
    if dynamic_batch:
        dynamic.update({"phone_lengths": {0: "batch"}, "ds": {0: "batch"}, "audio": {0: "batch", 2: "n"}})
    path = Path(path)
    _export(_RvcGraph(synth), args, path, names, ["audio"], dynamic, opset)
    return path


def wokada_metadata(synth: Synthesizer, **overrides: object) -> dict:
    """The JSON w-okada writes into ``metadata_props["metadata"]`` (``overrides`` replace fields)."""
    v1 = synth.content_dim == 256
    model_type = ("pyTorchRVC" if v1 else "pyTorchRVCv2") + ("" if synth.f0 else "Nono")
    meta = {"application": "VC_CLIENT", "version": "2.1", "modelType": model_type,
            "samplingRate": synth.config.sample_rate, "f0": synth.f0, "embChannels": synth.content_dim,
            "embedder": "hubert_base", "embOutputLayer": 9 if v1 else 12, "useFinalProj": v1}
    meta.update(overrides)
    return meta


def _add_metadata(path: Path, metadata: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "metadata", json.dumps(metadata)
    onnx.save(model, str(path))


@torch.no_grad()
def write_wokada_onnx(path: str | Path, synth: Synthesizer, *, legacy: bool = False, opset: int = 17,
                      **metadata: object) -> Path:
    """w-okada's export: in-graph noise, clipped 1-D output (``legacy``: pre-2.1 outputs), metadata JSON."""
    synth = synth.float().cpu().eval()
    e = _examples(synth)
    if synth.f0:
        names, args = ["feats", "p_len", "pitch", "pitchf", "sid"], (
            e["phone"], e["lengths"], e["pitch"], e["pitchf"], e["sid"])
    else:
        names, args = ["feats", "p_len", "sid"], (e["phone"], e["lengths"], e["sid"])
    outputs = ["audio", "x_mask"] if legacy else ["audio"]
    dynamic = {n: [1] for n in ("feats", "pitch", "pitchf") if n in names}
    path = Path(path)
    _export(_WokadaGraph(synth, legacy), args, path, names, outputs, dynamic, opset)
    meta = wokada_metadata(synth, **({"version": "2.0"} if legacy else {}))
    meta.update(metadata)
    _add_metadata(path, meta)
    return path


@torch.no_grad()
def write_deiteris_onnx(path: str | Path, synth: Synthesizer, *, opset: int = 17, **metadata: object) -> Path:
    """deiteris' export: w-okada's inputs plus ``skip_head``/``return_length``/``formant_length`` scalars."""
    synth = synth.float().cpu().eval()
    e = _examples(synth)
    trims = (torch.tensor(30), torch.tensor(20), torch.tensor(20))
    if synth.f0:
        names, args = ["feats", "p_len", "pitch", "pitchf", "sid"], (
            e["phone"], e["lengths"], e["pitch"], e["pitchf"], e["sid"], *trims)
    else:
        names, args = ["feats", "p_len", "sid"], (e["phone"], e["lengths"], e["sid"], *trims)
    names += ["skip_head", "return_length", "formant_length"]
    dynamic = {n: [1] for n in ("feats", "pitch", "pitchf") if n in names}
    dynamic["audio"] = [0]
    path = Path(path)
    _export(_DeiterisGraph(synth), args, path, names, ["audio"], dynamic, opset)
    meta = wokada_metadata(synth, version="2.2")
    meta.update(metadata)
    _add_metadata(path, meta)
    return path
