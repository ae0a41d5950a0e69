"""The parts of the DSP voices: pitch tracker, grain interpolation, effects."""

import numpy as np
import pytest
from scipy.signal import lfilter

from rtvc.voices.dsp.effects import BandPass, MetallicComb, Saturation
from rtvc.voices.dsp.grains import interpolate_cubic
from rtvc.voices.dsp.pitch import PitchTracker
from tests.voices.signals import vowel


def _track(x, rate, block):
    tracker = PitchTracker(rate)
    for i in range(0, len(x) - block + 1, block):
        tracker.push(x[i : i + block])
    return np.array(tracker.periods)


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("f0", [80.0, 140.0, 310.0, 620.0])
def test_tracker_finds_the_period_to_a_few_cents(rate, f0):
    x = vowel(f0, rate, 0.5)
    periods = _track(x, rate, rate // 100)[10:-10]
    assert np.all(periods > 0), "a steady vowel is voiced throughout"
    cents = 1200 * np.log2(rate / periods / f0)
    assert np.median(np.abs(cents)) < 3.0 and np.abs(cents).max() < 15.0


def test_tracker_is_unvoiced_on_silence_and_mostly_on_noise():
    rate = 16000
    assert not np.any(_track(np.zeros(rate, np.float32), rate, 160))
    noise = (0.1 * np.random.default_rng(0).standard_normal(rate)).astype(np.float32)
    assert np.mean(_track(noise, rate, 160) > 0) < 0.2


def test_tracker_frames_do_not_depend_on_block_size():
    rate = 22050
    x = vowel(180.0, rate, 0.4, vibrato=0.05)
    np.testing.assert_array_equal(_track(x, rate, 220), _track(x, rate, 37)[: len(_track(x, rate, 220))])


def test_cubic_interpolation_is_exact_at_integers_and_close_between():
    t = np.arange(200)
    data = np.sin(2 * np.pi * 0.01 * t)
    np.testing.assert_array_equal(interpolate_cubic(data, np.arange(1.0, 196.0)), data[1:196])
    between = np.arange(1.0, 196.0) + 0.37
    np.testing.assert_allclose(interpolate_cubic(data, between), np.sin(2 * np.pi * 0.01 * between), atol=1e-4)


def test_comb_matches_a_direct_filter_and_is_chunk_invariant():
    rate = 16000
    x = np.random.default_rng(3).standard_normal(3000)
    comb = MetallicComb(rate, delay_s=0.0035, feedback=0.45)
    d = round(0.0035 * rate)
    a = np.zeros(d + 1)
    a[0], a[d] = 1.0, -0.45
    expected = lfilter([1.0], a, x) * np.sqrt(1 - 0.45**2)
    got = np.concatenate([comb.process(x[i : i + 13]) for i in range(0, 3000, 13)])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    with pytest.raises(ValueError):
        MetallicComb(rate, feedback=1.0)


def test_radio_band_and_saturation():
    rate = 16000
    t = np.arange(rate) / rate
    band = BandPass(rate)

    def gain(freq):
        y = np.concatenate([band.process(np.sin(2 * np.pi * freq * t[i : i + 160])) for i in range(0, rate, 160)])
        return np.sqrt(np.mean(y[rate // 2 :] ** 2) / 0.5)

    assert gain(1000.0) > 0.9 and gain(80.0) < 0.15 and gain(7000.0) < 0.1
    sat = Saturation()
    small = np.linspace(-0.01, 0.01, 11)
    np.testing.assert_allclose(sat.process(small), 1.6 * small, rtol=1e-3)
    assert np.abs(sat.process(np.array([-10.0, 10.0]))).max() <= 0.5
