"""`rtvc convert` and `rtvc voices` as a user runs them: a real subprocess."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf


def rtvc(*args, tmp_path):
    env_args = ["--data-dir", str(tmp_path / "data")] if args and args[0] in ("voices", "convert") else []
    return subprocess.run([sys.executable, "-m", "rtvc.cli", *args, *env_args], capture_output=True, text=True,
                          timeout=120)


def test_voices_lists_builtins_as_text_and_json(tmp_path):
    text = rtvc("voices", tmp_path=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "passthrough" in text.stdout and "pitch" in text.stdout
    data = json.loads(rtvc("voices", "--json", tmp_path=tmp_path).stdout)
    ids = {v["id"] for v in data["voices"]}
    assert len(ids) >= 7 and "passthrough" in ids
    for voice in data["voices"]:
        for spec in voice["params"]:
            assert spec["minimum"] <= spec["default"] <= spec["maximum"]


def test_convert_streams_a_real_file(tmp_path, speech_paths):
    out = tmp_path / "out.wav"
    result = rtvc("convert", str(speech_paths[0]), str(out), "--voice", "feminine", "--chunk-ms", "7",
                  tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "algorithmic latency" in result.stdout and "RTF" in result.stdout
    x, rate = sf.read(str(speech_paths[0]))
    y, out_rate = sf.read(str(out))
    assert out_rate == rate and len(y) == len(x)  # aligned, same length
    assert np.std(y) > 0.01 and not np.allclose(y, x, atol=0.05)


def test_convert_out_rate_and_chunking_do_not_change_the_result(tmp_path, speech_paths):
    outs = []
    for chunk in ("20", "331"):
        out = tmp_path / f"out{chunk}.wav"
        if chunk == "331":  # a fresh ledger (tokens are unique per conversion) with the same watermark key
            (tmp_path / "331" / "data").mkdir(parents=True)
            shutil.copy(tmp_path / "20" / "data" / "watermark.key", tmp_path / "331" / "data" / "watermark.key")
        result = rtvc("convert", str(speech_paths[1]), str(out), "--voice", "robot", "--chunk-ms", chunk,
                      "--out-rate", "48000", "--token", "1", tmp_path=tmp_path / chunk)
        assert result.returncode == 0, result.stderr
        outs.append(sf.read(str(out))[0])
    assert sf.info(str(tmp_path / "out20.wav")).samplerate == 48000
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--voice", "nobody"], "unknown voice 'nobody'"),
        (["--voice", "higher", "--pitch", "30"], "outside -12..12"),
        (["--voice", "higher", "--formant", "2"], "formant"),
        (["--voice", "higher", "--out-rate", "11025"], "unsupported sample rate"),
        (["--voice", "higher", "--chunk-ms", "0"], "chunk-ms"),
    ],
)
def test_convert_errors_are_one_line_and_nonzero(tmp_path, speech_paths, args, message):
    result = rtvc("convert", str(speech_paths[0]), str(tmp_path / "o.wav"), *args, tmp_path=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.wav").exists()


def test_convert_unreadable_input(tmp_path):
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"this is not audio")
    result = rtvc("convert", str(bogus), str(tmp_path / "o.wav"), "--voice", "higher", tmp_path=tmp_path)
    assert result.returncode != 0 and "cannot read" in result.stderr
    result = rtvc("convert", str(tmp_path / "missing.wav"), str(tmp_path / "o.wav"), "--voice", "higher",
                  tmp_path=tmp_path)
    assert result.returncode != 0 and "cannot read" in result.stderr


def test_convert_watermarks_with_the_given_token_reproducibly(tmp_path, speech_paths):
    from rtvc.watermark import WatermarkKey, detect

    files = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for i, out in enumerate(files):
        result = rtvc("convert", str(speech_paths[3]), str(out), "--voice", "higher", "--token", "00c0ffee12345678",
                      tmp_path=tmp_path / str(i))
        assert result.returncode == 0, result.stderr
        assert "watermark token 00c0ffee12345678" in result.stdout
        if i == 0:  # the second data dir gets the same server key: same key and token, same output
            (tmp_path / "1" / "data").mkdir(parents=True)
            shutil.copy(tmp_path / "0" / "data" / "watermark.key", tmp_path / "1" / "data" / "watermark.key")
    assert files[0].read_bytes() == files[1].read_bytes()
    again = rtvc("convert", str(speech_paths[3]), str(files[0]), "--voice", "higher", "--token", "00c0ffee12345678",
                 tmp_path=tmp_path / "0")
    assert again.returncode != 0 and "already in use" in again.stderr  # a token names one conversion
    y, rate = sf.read(str(files[0]), dtype="float32")
    report = detect(y, rate, WatermarkKey.load_or_create(tmp_path / "0" / "data")).to_json()
    assert 0x00C0FFEE12345678 in [int(t["token"], 16) for t in report["tokens"]]
    bad = rtvc("convert", str(speech_paths[3]), str(files[0]), "--voice", "higher", "--token", "xyz", tmp_path=tmp_path)
    assert bad.returncode != 0 and "--token" in bad.stderr
