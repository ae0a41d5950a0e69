"""Users' ONNX synthesizer exports (RVC WebUI, w-okada, deiteris): inspection, import, and bad files refused."""

from __future__ import annotations

import argparse
import json

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rtvc.cli.voices_import import register_import  # noqa: E402
from rtvc.errors import ModelLoadError  # noqa: E402
from rtvc.voices.rvc.checkpoint import load_synthesizer, read_rvc_model  # noqa: E402
from rtvc.voices.rvc.library import voice_from_record  # noqa: E402
from rtvc.voices.rvc.onnx_inspect import read_onnx_export  # noqa: E402
from rtvc.voices.rvc.onnx_synth import load_onnx_export  # noqa: E402
from rtvc.voices.rvc.onnx_synthetic import write_deiteris_onnx, write_rvc_onnx, write_wokada_onnx  # noqa: E402
from rtvc.voices.store import VoiceStore  # noqa: E402


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="rtvc voices")
    register_import(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def exports(rvc_files, tmp_path_factory):
    """The v2 40k pitch model as RVC WebUI / w-okada / deiteris exports, and the v2 48k no-pitch one (w-okada)."""
    root = tmp_path_factory.mktemp("onnx_import")
    v2 = load_synthesizer(read_rvc_model(rvc_files["v2"]))
    nono = load_synthesizer(read_rvc_model(rvc_files["v2_nono"]))
    return {"rvc": write_rvc_onnx(root / "model.onnx", v2, opset=16),
            "wokada": write_wokada_onnx(root / "model_simple.onnx", v2),
            "deiteris": write_deiteris_onnx(root / "deiteris.onnx", v2),
            "wokada_nono": write_wokada_onnx(root / "nono_simple.onnx", nono), "root": root}


def _edited(src, dst, edit):
    model = onnx.load(str(src))
    edit(model)
    onnx.save(model, str(dst))
    return dst


def _rename_input(model, old, new):
    next(i for i in model.graph.input if i.name == old).name = new
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]


def _set_metadata(model, **fields):
    props = {p.key: p for p in model.metadata_props}
    meta = json.loads(props["metadata"].value)
    meta.update(fields)
    props["metadata"].value = json.dumps(meta)


@pytest.mark.parametrize("fmt,f0,rate", [("rvc", True, 40000), ("wokada", True, 40000), ("deiteris", True, 40000),
                                         ("wokada_nono", False, 48000)])
def test_each_format_is_recognised(exports, fmt, f0, rate):
    export = read_onnx_export(exports[fmt], sample_rate=40000 if fmt == "rvc" else None)
    assert (export.format, export.version, export.f0, export.sample_rate) == (fmt.split("_")[0], "v2", f0, rate)
    assert set(export.inputs) >= {"phone", "lengths", "sid"} and ("pitchf" in export.inputs) == f0
    assert not export.batch_axis  # the real exporters fix the batch at 1
    assert export.describe()["formant"] is False


def test_rvc_webui_export_needs_the_sample_rate(exports):
    with pytest.raises(ModelLoadError, match="--sample-rate"):
        read_onnx_export(exports["rvc"])
    with pytest.raises(ModelLoadError, match="samples per 10 ms frame"):  # the graph renders 400 per frame, not 480
        load_onnx_export(exports["rvc"], sample_rate=48000)
    with pytest.raises(ModelLoadError, match="declares 40000 Hz"):
        read_onnx_export(exports["wokada"], sample_rate=32000)


def test_import_stores_the_export_and_the_voice_has_no_formant(tmp_path, exports, rvc_files, capsys):
    data = str(tmp_path / "data")
    assert _cli("import", "olga", "--data-dir", data, "--model", str(exports["wokada"]),
                "--content", str(rvc_files["hubert_v2"])) == 0
    assert "ONNX export (w-okada 2.1" in capsys.readouterr().out
    assert _cli("import", "wendy", "--data-dir", data, "--model", str(exports["rvc"]), "--sample-rate", "40000") == 0
    store = VoiceStore(data)
    olga, wendy = store.get("olga"), store.get("wendy")
    assert olga.facts["onnx_format"] == "wokada" and wendy.facts["onnx_format"] == "rvc"
    assert wendy.facts["sample_rate"] == 40000 and wendy.facts["version"] == "v2" and wendy.facts["f0"] is True
    assert wendy.path("model").read_bytes() == exports["rvc"].read_bytes()
    store.verify("wendy")
    voice = voice_from_record(wendy, device="cpu")
    assert voice.sample_rate == 40000 and "formant" not in {p.name for p in voice.params}
    assert type(voice.model.synth).__name__ == "OnnxExportSynth"  # loads from the store without --sample-rate
    with pytest.raises(ModelLoadError, match="--sample-rate"):
        _cli("import", "xavier", "--data-dir", data, "--model", str(exports["rvc"]))
    with pytest.raises(ModelLoadError, match="768-d"):  # a v2 export needs 768-d features
        _cli("import", "yann", "--data-dir", data, "--model", str(exports["wokada"]),
             "--content", str(rvc_files["hubert_v1"]))
    assert store.names() == ["olga", "wendy"]
    for name in ("olga", "wendy"):  # wendy's rate is only in the store: the check must not need to load the model
        with pytest.raises(ModelLoadError, match="ONNX export already"):
            _cli("export-onnx", name, "--data-dir", data)


def test_bad_files_get_clear_errors_naming_file_and_problem(exports):
    root, src = exports["root"], exports["wokada"]
    truncated = root / "truncated.onnx"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    text = root / "notes.onnx"
    text.write_text("this is not a model\n")
    cases = [
        (truncated, "truncated.onnx.*(not an ONNX model|truncated)"),
        (text, "notes.onnx.*not an ONNX model"),
        (_edited(src, root / "renamed.onnx", lambda m: _rename_input(m, "feats", "hubert")),
         "renamed.onnx.*match no RVC synthesizer export"),
        (_edited(src, root / "old_opset.onnx", lambda m: setattr(m.opset_import[0], "version", 9)),
         "old_opset.onnx.*opset 9"),
        (_edited(src, root / "dims.onnx", lambda m: _set_metadata(m, embChannels=256)), "dims.onnx.*embChannels"),
        (_edited(src, root / "f0.onnx", lambda m: _set_metadata(m, f0=False)), "f0.onnx.*f0"),
        (_edited(src, root / "whisper.onnx", lambda m: _set_metadata(m, embedder="whisper")), "'whisper'"),
        (_edited(src, root / "layer.onnx", lambda m: _set_metadata(m, embOutputLayer=9)), "layer.onnx.*layer 9"),
        (_edited(src, root / "badjson.onnx",
                 lambda m: setattr(m.metadata_props[0], "value", "{not json")), "badjson.onnx.*not JSON"),
        (_edited(src, root / "int_phone.onnx",
                 lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type", onnx.TensorProto.INT64)),
         "int_phone.onnx.*'feats' must be float32/float16 of rank 3"),
    ]
    for path, message in cases:
        with pytest.raises(ModelLoadError, match=message):
            load_onnx_export(path)
    with pytest.raises(ModelLoadError, match="samples per 10 ms frame"):  # metadata lies about the rate
        load_onnx_export(_edited(src, root / "rate.onnx", lambda m: _set_metadata(m, samplingRate=48000)))
    with pytest.raises(ModelLoadError, match="limit is"):
        read_onnx_export(src, max_bytes=100_000)


def test_external_data_is_refused(exports):
    model = onnx.load(str(exports["wokada"]))
    path = exports["root"] / "external" / "split.onnx"
    path.parent.mkdir()
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="split.data",
              size_threshold=1024)
    with pytest.raises(ModelLoadError, match="split.onnx.*external data"):
        read_onnx_export(path)
