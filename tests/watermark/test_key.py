from __future__ import annotations

import os
import stat

import pytest

from rtvc.errors import RtvcError
from rtvc.watermark import WatermarkError, WatermarkKey
from rtvc.watermark.key import KEY_FILENAME, key_from_config


def test_key_file_is_created_once_with_mode_0600(tmp_path):
    data_dir = tmp_path / "data"
    key = WatermarkKey.load_or_create(data_dir)
    path = data_dir / KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64
    assert WatermarkKey.load_or_create(data_dir) == key  # second start: same key
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILENAME]  # no temp files left behind
    assert WatermarkKey.generate() != key


def test_key_file_others_can_read_is_refused(tmp_path):
    WatermarkKey.load_or_create(tmp_path)
    os.chmod(tmp_path / KEY_FILENAME, 0o644)
    with pytest.raises(WatermarkError, match="chmod 600"):
        WatermarkKey.load_or_create(tmp_path)


@pytest.mark.parametrize("text", ["", "zz" * 32, "ab" * 31, "ab" * 33])
def test_malformed_key_is_refused(tmp_path, text):
    path = tmp_path / KEY_FILENAME
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(WatermarkError, match="malformed"):
        WatermarkKey.load(path)


def test_key_is_32_bytes_and_never_printed():
    with pytest.raises(WatermarkError):
        WatermarkKey(b"short")
    key = WatermarkKey(bytes(range(32)))
    assert WatermarkKey.from_hex(key.to_hex()) == key
    assert key.to_hex() not in repr(key) and len(key.key_id) == 8
    assert issubclass(WatermarkError, RtvcError) and WatermarkError.code == "watermark_failed"


def test_key_comes_from_the_data_dir_and_is_never_created_for_detection(tmp_path):
    configured = WatermarkKey.generate()  # a key in a config file is not a way in: the file is the only source
    assert key_from_config({"watermark": {"key": configured.to_hex()}}, tmp_path, create=True) != configured
    (tmp_path / "watermark.key").unlink()
    with pytest.raises(WatermarkError, match="no watermark key"):
        key_from_config({}, tmp_path, create=False)
    made = key_from_config({}, tmp_path, create=True)
    assert key_from_config({}, tmp_path, create=False) == made
