"""Read and validate a user's ONNX synthesizer export (RVC WebUI, w-okada or deiteris) without running it.

The file is parsed as a protobuf and checked against the interfaces those exporters write
(see :mod:`rtvc.voices.rvc.onnx_synthetic` for the exact signatures): input names, dtypes
and ranks, the content dimension (256 -> v1, 768 -> v2), pitch inputs (f0 model or not),
opset, and w-okada's metadata JSON, which must agree with the graph. Nothing in the file
is executed here; :mod:`rtvc.voices.rvc.onnx_synth` later runs it with onnxruntime only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtvc.errors import ModelLoadError

__all__ = ["FORMATS", "OnnxExportFile", "is_onnx_file", "read_onnx_export"]

MAX_MODEL_BYTES = 1 << 30  # real v2 synthesizers are ~110 MB (fp32); protobuf itself stops at 2 GiB
OPSETS = range(13, 22)  # RVC exported with 13, 16 and 18; w-okada and deiteris with 17
SAMPLE_RATES = (32000, 40000, 48000)
CONTENT_VERSIONS = {256: "v1", 768: "v2"}
EMBEDDERS = ("hubert_base", "contentvec", "hubert-base-japanese")  # HuBERT-family encoders rtvc can load
_FLOAT = (1, 10)  # TensorProto.FLOAT, FLOAT16
_INT64 = (7,)

# role -> (rank, allowed element types); names per format, in the exporters' order
_SPECS = {"phone": (3, _FLOAT), "lengths": (1, _INT64), "pitch": (2, _INT64), "pitchf": (2, _FLOAT),
          "sid": (1, _INT64), "rnd": (3, _FLOAT), "skip_head": (0, _INT64), "return_length": (0, _INT64),
          "formant_length": (0, _INT64)}
FORMATS: dict[str, dict[str, str]] = {
    "rvc": {"phone": "phone", "lengths": "phone_lengths", "pitch": "pitch", "pitchf": "pitchf", "sid": "ds",
            "rnd": "rnd"},
    "wokada": {"phone": "feats", "lengths": "p_len", "pitch": "pitch", "pitchf": "pitchf", "sid": "sid"},
    "deiteris": {"phone": "feats", "lengths": "p_len", "pitch": "pitch", "pitchf": "pitchf", "sid": "sid",
                 "skip_head": "skip_head", "return_length": "return_length", "formant_length": "formant_length"},
}
_PITCH_ROLES = ("pitch", "pitchf")


@dataclass(slots=True)
class OnnxExportFile:
    """A validated export: what the graph takes, plus the facts a ``.pth`` would declare."""

    path: Path
    format: str  # "rvc" | "wokada" | "deiteris"
    version: str  # "v1" | "v2" (from the content dimension)
    f0: bool
    sample_rate: int
    inter_channels: int | None  # prior noise channels (192 in RVC's configs); None: learnt at the first run
    opset: int
    inputs: dict[str, str]  # role -> input name
    batch_axis: bool  # the graph takes a batch larger than 1
    metadata: dict[str, Any] | None = None
    model: Any = field(default=None, repr=False)  # onnx.ModelProto

    @property
    def content_dim(self) -> int:
        return 256 if self.version == "v1" else 768

    @property
    def info(self) -> str:
        label = {"rvc": "RVC WebUI", "wokada": "w-okada", "deiteris": "deiteris"}[self.format]
        version = f" {self.metadata.get('version')}" if self.metadata and "version" in self.metadata else ""
        return f"ONNX export ({label}{version}, opset {self.opset})"

    def describe(self) -> dict:
        return {"version": self.version, "f0": self.f0, "sample_rate": self.sample_rate, "info": self.info,
                "onnx_format": self.format, "formant": False}


def is_onnx_file(path: str | Path) -> bool:
    """``.onnx`` by name, or a protobuf whose first field is ``ir_version`` (torch files start ``PK`` / ``\\x80``)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(1) == b"\x08"
    except OSError:
        return False


def _dims(value_info: Any) -> list[int | str | None]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def _load(path: Path, max_bytes: int) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ModelLoadError(f"ONNX model {path} not found")
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelLoadError(f"ONNX model {path} is {size / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(f"{path} is not an ONNX model or is truncated ({str(exc)[:120]})") from None
    if not model.graph.node or not model.graph.input:
        raise ModelLoadError(f"{path} is not an ONNX model (no graph); is it truncated?")
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ModelLoadError(f"ONNX model {path} keeps {len(external)} weights in external data files "
                             f"({', '.join(external[:3])}); export it as one self-contained .onnx file")
    return model


def _check_wellformed(model: Any, path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelLoadError(f"ONNX model {path} is malformed: {str(exc).splitlines()[0][:200]}") from None


def _opset(model: Any, path: Path) -> int:
    domains = {o.domain: o.version for o in model.opset_import}
    opset = domains.get("", domains.get("ai.onnx"))
    if opset is None or opset not in OPSETS:
        raise ModelLoadError(f"ONNX model {path} uses opset {opset}; supported are {OPSETS.start}-{OPSETS.stop - 1}")
    custom = sorted({n.domain for n in model.graph.node} - {"", "ai.onnx", "com.microsoft"})
    if custom:
        raise ModelLoadError(f"ONNX model {path} needs custom operators from {', '.join(custom)}; not supported")
    return opset


def _detect_format(names: set[str], path: Path) -> tuple[str, dict[str, str]]:
    for fmt, roles in FORMATS.items():
        for f0 in (True, False):
            wanted = {name for role, name in roles.items() if f0 or role not in _PITCH_ROLES}
            if names == wanted:
                return fmt, {role: name for role, name in roles.items() if name in names}
    expected = "; ".join(f"{fmt}: {', '.join(roles.values())}" for fmt, roles in FORMATS.items())
    raise ModelLoadError(f"ONNX model {path} has inputs {', '.join(sorted(names))}, which match no RVC synthesizer "
                         f"export (expected {expected}; no-pitch models omit pitch and pitchf)")


def _check_inputs(model: Any, inputs: dict[str, str], path: Path) -> tuple[int, bool]:
    """Dtypes and ranks of every input; returns (content dim, whether the batch axis is free)."""
    by_name = {i.name: i for i in model.graph.input}
    for role, name in inputs.items():
        rank, types = _SPECS[role]
        vi = by_name[name]
        elem, dims = vi.type.tensor_type.elem_type, _dims(vi)
        if elem not in types or len(dims) != rank:
            want = "int64" if types == _INT64 else "float32/float16"
            raise ModelLoadError(f"ONNX model {path}: input {name!r} must be {want} of rank {rank}, "
                                 f"got element type {elem} with shape {dims}")
    phone_dims = _dims(by_name[inputs["phone"]])
    dim = phone_dims[2]
    if dim not in CONTENT_VERSIONS:
        raise ModelLoadError(f"ONNX model {path}: input {inputs['phone']!r} has {dim} content channels; "
                             "RVC takes 256 (v1) or 768 (v2)")
    batch = phone_dims[0]
    if isinstance(batch, int) and batch != 1:
        raise ModelLoadError(f"ONNX model {path}: input {inputs['phone']!r} has a fixed batch of {batch}; expected 1")
    out = model.graph.output[0]
    out_dims = _dims(out)
    if out.type.tensor_type.elem_type not in _FLOAT or len(out_dims) not in (1, 3):
        raise ModelLoadError(f"ONNX model {path}: first output {out.name!r} must be float audio [N] or [B, 1, N], "
                             f"got shape {out_dims}")
    free = lambda d: not isinstance(d, int)  # noqa: E731
    batch_axis = free(batch) and len(out_dims) == 3 and free(out_dims[0]) and all(
        free(_dims(by_name[name])[0]) for role, name in inputs.items() if _SPECS[role][0] >= 1)
    return dim, batch_axis


def _read_metadata(model: Any, path: Path) -> dict | None:
    props = {p.key: p.value for p in model.metadata_props}
    if "metadata" not in props:
        return None
    try:
        meta = json.loads(props["metadata"])
    except ValueError:
        raise ModelLoadError(f"ONNX model {path}: metadata_props['metadata'] is not JSON") from None
    if not isinstance(meta, dict):
        raise ModelLoadError(f"ONNX model {path}: metadata_props['metadata'] must be a JSON object")
    return meta


def _check_metadata(meta: dict, path: Path, *, dim: int, f0: bool) -> int | None:
    """Cross-check w-okada's metadata with the graph; returns its sample rate (if any)."""
    def lie(field_name: str, claim: object, truth: str) -> ModelLoadError:
        return ModelLoadError(f"ONNX model {path}: metadata {field_name}={claim!r} disagrees with the graph ({truth})")

    if "embChannels" in meta and meta["embChannels"] != dim:
        raise lie("embChannels", meta["embChannels"], f"content input has {dim} channels")
    if "f0" in meta and bool(meta["f0"]) != f0:
        raise lie("f0", meta["f0"], "the graph has pitch inputs" if f0 else "the graph has no pitch inputs")
    layer, project = (9, True) if dim == 256 else (12, False)
    if meta.get("embOutputLayer", layer) != layer or bool(meta.get("useFinalProj", project)) != project:
        raise ModelLoadError(f"ONNX model {path}: content features from layer {meta.get('embOutputLayer')} "
                             f"(final_proj {meta.get('useFinalProj')}) are not supported; rtvc feeds {dim}-d "
                             f"features from layer {layer}{' through final_proj' if project else ''}")
    embedder = meta.get("embedder", "hubert_base")
    if embedder not in EMBEDDERS:
        raise ModelLoadError(f"ONNX model {path} was made for the {embedder!r} content encoder; "
                             f"rtvc runs {', '.join(EMBEDDERS)}")
    rate = meta.get("samplingRate")
    if rate is not None and rate not in SAMPLE_RATES:
        raise ModelLoadError(f"ONNX model {path}: metadata samplingRate {rate!r} is not one of {SAMPLE_RATES}")
    return rate


def _inter_channels(model: Any, inputs: dict[str, str]) -> int | None:
    """Prior noise channels from ``rnd``'s second axis; None when the graph draws the prior itself."""
    if "rnd" in inputs:
        dims = _dims(next(i for i in model.graph.input if i.name == inputs["rnd"]))
        if isinstance(dims[1], int) and dims[1] > 0:
            return dims[1]
    return None


def read_onnx_export(path: str | Path, *, sample_rate: int | None = None,
                     max_bytes: int = MAX_MODEL_BYTES) -> OnnxExportFile:
    """Validate an ONNX synthesizer export; ModelLoadError names the file and the problem.

    ``sample_rate`` (Hz) is required for RVC WebUI exports, which do not record it; for
    w-okada/deiteris files it must agree with their metadata when given.
    """
    path = Path(path)
    model = _load(path, max_bytes)
    opset = _opset(model, path)
    _check_wellformed(model, path)
    initializers = {t.name for t in model.graph.initializer}
    names = {i.name for i in model.graph.input if i.name not in initializers}
    fmt, inputs = _detect_format(names, path)
    dim, batch_axis = _check_inputs(model, inputs, path)
    f0 = "pitch" in inputs
    meta = _read_metadata(model, path)
    rate = _check_metadata(meta, path, dim=dim, f0=f0) if meta is not None else None
    if sample_rate is not None and sample_rate not in SAMPLE_RATES:
        raise ModelLoadError(f"sample rate {sample_rate} is not an RVC rate ({', '.join(map(str, SAMPLE_RATES))})")
    if rate is not None and sample_rate is not None and rate != sample_rate:
        raise ModelLoadError(f"ONNX model {path} declares {rate} Hz in its metadata, not {sample_rate}")
    rate = rate or sample_rate
    if rate is None:
        raise ModelLoadError(f"ONNX model {path} does not record its sample rate (RVC WebUI exports never do); "
                             "pass --sample-rate 32000|40000|48000")
    return OnnxExportFile(path, fmt, CONTENT_VERSIONS[dim], f0, int(rate), _inter_channels(model, inputs), opset,
                          inputs, batch_axis, meta, model)
