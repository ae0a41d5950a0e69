from __future__ import annotations

import argparse
import json

import av
import numpy as np
import pytest
import soundfile as sf

from rtvc.cli import detect as detect_cli
from rtvc.watermark import Watermarker, WatermarkKey
from tests.watermark.conftest import TOKEN


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rtvc")
    detect_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["detect", *argv])
    return args.func(args)


def _write_opus(path, audio: np.ndarray, rate: int, kbps: int) -> None:
    with av.open(str(path), "w", format="ogg") as box:
        stream = box.add_stream("libopus", rate=rate, layout="mono")
        stream.bit_rate = kbps * 1000
        frame = av.AudioFrame.from_ndarray(audio[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            box.mux(packet)


@pytest.fixture()
def data_dir(tmp_path, speech48k):
    key = WatermarkKey.load_or_create(tmp_path / "data")
    marked = Watermarker(key, TOKEN, 48000).process(speech48k)
    sf.write(str(tmp_path / "marked.wav"), marked, 48000, subtype="PCM_16")
    _write_opus(tmp_path / "marked.ogg", marked, 48000, kbps=32)
    sf.write(str(tmp_path / "plain.flac"), speech48k, 48000)
    return tmp_path


def test_detect_cli_json_on_wav_opus_and_unmarked(data_dir, capsys):
    files = [str(data_dir / name) for name in ("marked.wav", "marked.ogg", "plain.flac")]
    assert _run([*files, "--json", "--data-dir", str(data_dir / "data")]) == 0
    out = json.loads(capsys.readouterr().out)
    wav, ogg, plain = out["files"]
    for marked in (wav, ogg):
        assert marked["present"] and [t["token"] for t in marked["tokens"]] == [f"{TOKEN:016x}"]
    assert ogg["sample_rate"] == 48000
    assert not plain["present"] and plain["tokens"] == []


def test_detect_cli_text_and_errors(data_dir, capsys):
    (data_dir / "junk.mp3").write_bytes(b"not audio at all")
    code = _run([str(data_dir / "marked.wav"), str(data_dir / "junk.mp3"), "--data-dir", str(data_dir / "data")])
    text = capsys.readouterr().out
    assert code == 2  # one file could not be read; the other is still reported
    assert f"token {TOKEN:016x}" in text and "WATERMARKED" in text
    assert "junk.mp3: error: cannot decode" in text


def test_detect_cli_needs_the_servers_key(data_dir, tmp_path):
    from rtvc.watermark import WatermarkError

    with pytest.raises(WatermarkError, match="no watermark key"):
        _run([str(data_dir / "marked.wav"), "--data-dir", str(tmp_path / "empty")])
