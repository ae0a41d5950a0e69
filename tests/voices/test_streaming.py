"""Streaming behaviour of every built-in voice: lengths, delay, determinism, joins, silence."""

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfiltfilt

from rtvc.audio.pcm import SUPPORTED_RATES
from rtvc.voices.registry import builtin_voices
from tests.voices.signals import render, vowel

VOICES = {voice.name: voice for voice in builtin_voices()}
SHIFTING = [name for name in VOICES if name != "passthrough"]


@pytest.fixture(scope="module")
def speech_2s(speech_paths):
    x, rate = sf.read(str(speech_paths[12]), dtype="float32")  # a female VCTK speaker
    return x[int(0.5 * rate) : int(2.5 * rate)], rate


@pytest.mark.parametrize("rate", SUPPORTED_RATES)
def test_every_voice_runs_at_every_rate_with_a_fixed_small_delay(rate):
    x = vowel(160.0, rate, 0.25, vibrato=0.03) + 0.01 * np.random.default_rng(1).standard_normal(rate // 4)
    x = x.astype(np.float32)
    for voice in VOICES.values():
        for block in (rate // 100, 7 * rate // 1000 + 1):  # 10 ms and an odd length
            stream = voice.open(sample_rate=rate, block=block, params=voice.check_params({}))
            delay = stream.layout.delay
            assert stream.layout.context == stream.layout.crossfade == stream.layout.search == 0
            assert delay == voice.delay(rate) and 1000 * delay / rate <= 27.0, (voice.name, rate, delay)
            for i in range(0, len(x) - block + 1, block):
                y = stream.process(x[i : i + block])
                assert y.shape == (block,) and y.dtype == np.float32 and np.all(np.isfinite(y))


def test_the_delay_does_not_depend_on_parameters():
    voice = VOICES["higher"]
    delays = {voice.open(sample_rate=22050, block=220, params=voice.check_params(p)).layout.delay
              for p in ({"pitch": -12, "formant": 0.7}, {"pitch": 12, "formant": 1.4}, {})}
    assert len(delays) == 1


@pytest.mark.parametrize("name", list(VOICES))
def test_a_click_comes_out_at_the_reported_delay(name):
    rate = 16000
    x = np.zeros(rate // 2, np.float32)
    x[5000:5016] = np.hanning(16) * 0.8  # a 1 ms click in silence
    y, delay = render(VOICES[name], x, rate, block=160, params={"pitch": 7.0} if name != "passthrough" else {})
    peak = int(np.argmax(np.abs(y)))
    assert abs(peak - 5008) <= rate // 1000, (name, peak)
    assert np.abs(y).max() > 0.2


@pytest.mark.parametrize("name", list(VOICES))
def test_silence_in_gives_silence_out(name):
    y, _ = render(VOICES[name], np.zeros(8000, np.float32), 16000, block=160)
    assert not np.any(y)


def test_identical_block_sequences_give_identical_bytes(speech_2s):
    x, rate = speech_2s
    for name in SHIFTING:
        a, _ = render(VOICES[name], x, rate, block=160, params={"pitch": 3.0, "formant": 1.1})
        b, _ = render(VOICES[name], x, rate, block=160, params={"pitch": 3.0, "formant": 1.1})
        assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("name", SHIFTING)
def test_block_joins_leave_no_trace(name, speech_2s):
    """Output does not depend on where blocks start: the jumps at one block size's joins are
    the same samples another block size renders inside its blocks (so no join can click)."""
    x, rate = speech_2s
    reference, _ = render(VOICES[name], x, rate, block=160)
    for block in (37, 441):
        other, _ = render(VOICES[name], x, rate, block=block)
        np.testing.assert_array_equal(other, reference)
    jumps = np.abs(np.diff(reference))
    assert np.abs(reference).max() > 0.1 and jumps.max() < 1.0


@pytest.mark.parametrize("name", SHIFTING)
def test_changing_parameters_every_block_makes_no_clicks(name):
    """A band-limited vowel keeps the output free of energy above 5 kHz; a click would put some there."""
    rate = 16000
    x = vowel(140.0, rate, 2.0, top_hz=2000.0, vibrato=0.02)
    low, high = {"pitch": -12.0, "formant": 0.7}, {"pitch": 12.0, "formant": 1.4}
    changes = {k: (low if k % 2 else high) for k in range(1, 250)}
    switched, _ = render(VOICES[name], x, rate, block=160, params=low, changes=changes)
    steady = [render(VOICES[name], x, rate, block=160, params=p)[0] for p in (low, high)]
    highpass = butter(6, 5000, "highpass", fs=rate, output="sos")

    def hf_peak(y):
        return np.abs(sosfiltfilt(highpass, y.astype(np.float64)))[400:-400].max()

    assert np.abs(switched).max() > 0.1
    assert hf_peak(switched) <= max(hf_peak(y) for y in steady) + 0.002
    # and the change took effect: output differs from a steady render after the first block
    assert not np.allclose(switched[4000:], steady[0][4000:], atol=1e-3)


def test_a_parameter_change_applies_from_the_next_block_only():
    voice, rate, block = VOICES["higher"], 16000, 160
    x = vowel(150.0, rate, 0.6)
    a, delay = render(voice, x, rate, block, params={"pitch": 0.0})
    b, _ = render(voice, x, rate, block, params={"pitch": 0.0}, changes={40: {"pitch": 9.0}})
    # blocks before the change are untouched (output lags input by `delay`)
    untouched = 40 * block - delay
    np.testing.assert_array_equal(a[:untouched], b[:untouched])
    assert not np.allclose(a[untouched + 2 * delay :], b[untouched + 2 * delay :], atol=1e-3)
