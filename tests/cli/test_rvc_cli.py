"""An RVC voice from import to conversion, through the real `rtvc` command."""

import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from rtvc.voices.rvc.synthetic import (
    random_hubert_weights,
    tiny_hubert_config,
    write_fairseq_checkpoint,
    write_random_pth,
)
from tests.conftest import grant_dubbing


def rtvc(*args):
    return subprocess.run([sys.executable, "-m", "rtvc.cli", *args], capture_output=True, text=True, timeout=300)


def test_import_list_and_convert_an_rvc_voice(tmp_path, speech_paths):
    model, content = tmp_path / "alice.pth", tmp_path / "hubert_base.pt"
    write_random_pth(model, version="v2", sr="40k", seed=11)
    cfg = tiny_hubert_config("v2")
    write_fairseq_checkpoint(content, cfg, random_hubert_weights(cfg, seed=12))
    data = str(tmp_path / "data")

    imported = rtvc("voices", "import", "alice", "--data-dir", data, "--model", str(model), "--content", str(content))
    assert imported.returncode == 0, imported.stderr
    listed = json.loads(rtvc("voices", "--json", "--data-dir", data).stdout)
    alice = next(v for v in listed["voices"] if v["id"] == "alice")
    assert alice["kind"] == "rvc" and alice["sample_rate"] == 40000

    out = tmp_path / "out.wav"
    refused = rtvc("convert", str(speech_paths[2]), str(out), "--voice", "alice", "--data-dir", data)
    assert refused.returncode != 0 and "consent" in refused.stderr and not out.exists()

    client_key = grant_dubbing(data, "alice")
    wrong_purpose = rtvc("convert", str(speech_paths[2]), str(out), "--voice", "alice", "--data-dir", data,
                         "--key", client_key, "--purpose", "research")
    assert wrong_purpose.returncode != 0 and "research" in wrong_purpose.stderr
    converted = rtvc("convert", str(speech_paths[2]), str(out), "--voice", "alice", "--data-dir", data,
                     "--out-rate", "48000", "--key", client_key, "--purpose", "dubbing")
    assert converted.returncode == 0, converted.stderr
    assert "block 200" in converted.stdout  # the RVC voice's own default block, not the DSP default
    x, rate = sf.read(str(speech_paths[2]))
    y, out_rate = sf.read(str(out))
    assert out_rate == 48000 and len(y) == int(np.ceil(len(x) * 48000 / rate))
    assert np.isfinite(y).all() and np.std(y) > 0


def test_import_rejects_a_file_that_is_not_a_model(tmp_path):
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"\x80\x04not a checkpoint")
    content = tmp_path / "hubert_base.pt"
    cfg = tiny_hubert_config("v1")
    write_fairseq_checkpoint(content, cfg, random_hubert_weights(cfg, seed=1))
    result = rtvc("voices", "import", "eve", "--data-dir", str(tmp_path / "d"), "--model", str(bogus),
                  "--content", str(content))
    assert result.returncode != 0 and "bogus.pth" in result.stderr
