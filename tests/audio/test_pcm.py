import numpy as np
import pytest

from rtvc.audio.pcm import AudioFormat, to_mono
from rtvc.errors import AudioFormatError, AudioValueError


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 32000, 44100, 48000])
def test_supported_rates_accepted(rate):
    assert AudioFormat("pcm_s16le", rate, 1).sample_rate == rate


@pytest.mark.parametrize("rate", [0, 11025, 96000, -1, True, "48000"])
def test_unsupported_rate_rejected(rate):
    with pytest.raises(AudioFormatError, match="sample rate"):
        AudioFormat("pcm_s16le", rate, 1)


def test_bad_encoding_and_channels():
    with pytest.raises(AudioFormatError, match="encoding"):
        AudioFormat("pcm_u8", 16000, 1)
    with pytest.raises(AudioFormatError, match="channel"):
        AudioFormat("pcm_s16le", 16000, 3)


def test_s16_round_trip_is_exact():
    fmt = AudioFormat("pcm_s16le", 16000, 2)
    raw = np.arange(-32768, 32767, 7, dtype="<i2")[: 2 * 4000]
    assert fmt.encode(fmt.decode(raw.tobytes())) == raw.tobytes()


def test_f32_round_trip_is_exact():
    fmt = AudioFormat("pcm_f32le", 48000, 1)
    x = np.linspace(-1, 1, 999, dtype=np.float32)
    assert np.array_equal(fmt.decode(fmt.encode(x))[:, 0], x)


def test_odd_byte_count_rejected():
    with pytest.raises(AudioFormatError, match="whole number"):
        AudioFormat("pcm_s16le", 16000, 1).decode(b"\x00\x01\x02")
    with pytest.raises(AudioFormatError, match="4-byte frames"):
        AudioFormat("pcm_s16le", 16000, 2).decode(b"\x00" * 6)


def test_nan_and_inf_rejected():
    fmt = AudioFormat("pcm_f32le", 16000, 1)
    for bad in (np.nan, np.inf, -np.inf):
        data = np.array([0.1, bad, 0.2], dtype="<f4").tobytes()
        with pytest.raises(AudioValueError, match="NaN/inf"):
            fmt.decode(data)


def test_encode_clips_and_downmixes():
    fmt = AudioFormat("pcm_s16le", 16000, 1)
    out = np.frombuffer(fmt.encode(np.array([[2.0, 2.0], [-0.5, 0.5]], np.float32)), "<i2")
    assert out.tolist() == [32767, 0]
    assert to_mono(np.array([[1.0, 0.0]], np.float32)).tolist() == [0.5]
