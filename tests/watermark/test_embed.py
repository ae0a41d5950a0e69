from __future__ import annotations

import numpy as np
import pytest
import soxr

from rtvc.watermark import SUPPORTED_RATES, Watermarker, WatermarkError, WatermarkKey
from tests.watermark.conftest import TOKEN


def _chunked(wm: Watermarker, x: np.ndarray, sizes) -> np.ndarray:
    out, i = [], 0
    for size in sizes:
        out.append(wm.process(x[i : i + size]))
        i += size
    assert i >= len(x)
    return np.concatenate(out)


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_output_is_identical_for_any_chunking(key, speech16k, rate):
    x = soxr.resample(speech16k[8000:16000], 16000, rate).astype(np.float32)  # 0.5 s of speech
    whole = Watermarker(key, TOKEN, rate).process(x)
    assert whole.dtype == np.float32 and whole.shape == x.shape
    assert not np.array_equal(whole, x)
    rng = np.random.default_rng(rate)
    for sizes in ([1] * len(x), rng.integers(1, 700, len(x)), rng.integers(0, 3, len(x)) * 97 + 1):
        assert np.array_equal(_chunked(Watermarker(key, TOKEN, rate), x, sizes), whole)


def test_no_look_ahead(key, speech16k):
    rate = 44100
    x = soxr.resample(speech16k[:8000], 16000, rate).astype(np.float32)
    wm = Watermarker(key, TOKEN, rate)
    assert wm.delay() == 0
    base = wm.process(x)
    rng = np.random.default_rng(3)
    for k in (0, 1, 881, 882, 883, 5000, len(x) - 2):  # incl. frame edges (882 samples) and update edges
        changed = x.copy()
        changed[k + 1 :] = rng.uniform(-1, 1, len(x) - k - 1)
        out = Watermarker(key, TOKEN, rate).process(changed)
        assert np.array_equal(out[: k + 1], base[: k + 1])
        assert not np.array_equal(out[k + 1 :], base[k + 1 :])


def test_mark_is_quiet_and_follows_the_host(key, speech48k, marked48k):
    host = speech48k.astype(np.float64)
    mark = marked48k - host
    snr = 10 * np.log10(np.sum(host**2) / np.sum(mark**2))
    assert 24.5 < snr < 28.0
    # digital silence stays silent
    silence = np.zeros(4800, np.float32)
    assert np.array_equal(Watermarker(key, TOKEN, 48000).process(silence), silence)
    # the token and the key change the mark
    other = Watermarker(key, TOKEN + 1, 48000).process(speech48k[:48000])
    assert not np.array_equal(other, marked48k[:48000])


@pytest.mark.parametrize("rate", SUPPORTED_RATES)
def test_every_output_rate_is_supported(key, speech16k, rate):
    x = soxr.resample(speech16k[:16000], 16000, rate).astype(np.float32)
    y = Watermarker(key, TOKEN, rate).process(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 0 < np.max(np.abs(y - x)) < 0.2 * np.max(np.abs(x))


def test_fails_closed_on_bad_input_and_stays_failed(key, speech16k):
    wm = Watermarker(key, TOKEN, 16000)
    first = wm.process(speech16k[:1600])
    assert first.shape == (1600,)
    bad = speech16k[1600:3200].copy()
    bad[100] = np.nan
    with pytest.raises(WatermarkError, match="NaN"):
        wm.process(bad)
    with pytest.raises(WatermarkError, match="failed earlier"):  # no unmarked audio afterwards either
        wm.process(speech16k[1600:3200])
    with pytest.raises(WatermarkError, match="mono"):
        Watermarker(key, TOKEN, 16000).process(np.zeros((10, 2), np.float32))


def test_fails_closed_on_an_internal_fault(key, speech16k):
    wm = Watermarker(key, TOKEN, 16000)
    wm.process(speech16k[:100])
    wm._carrier = wm._carrier[:, :3]  # corrupt state: the next mark cannot be built
    with pytest.raises(WatermarkError, match="embedding failed"):
        wm.process(speech16k[100:2000])
    with pytest.raises(WatermarkError):
        wm.process(speech16k[2000:2100])


@pytest.mark.parametrize("kwargs", [
    {"sample_rate": 11025}, {"sample_rate": 0}, {"token": -5}, {"token": 2**64}, {"key": b"x" * 32},
    {"strength_db": 0.0}, {"strength_db": float("nan")},
])
def test_cannot_initialise_with_bad_settings(key, kwargs):
    args = {"key": key, "token": TOKEN, "sample_rate": 16000, **kwargs}
    extra = {k: args.pop(k) for k in list(args) if k not in ("key", "token", "sample_rate")}
    with pytest.raises(WatermarkError):
        Watermarker(args["key"], args["token"], args["sample_rate"], **extra)


def test_stream_ends_after_last(key, speech16k):
    wm = Watermarker(key, TOKEN, 16000)
    wm.process(speech16k[:320], last=True)
    with pytest.raises(WatermarkError, match="ended"):
        wm.process(speech16k[320:640])
    wm.reset()
    assert np.array_equal(wm.process(speech16k[:320]), Watermarker(key, TOKEN, 16000).process(speech16k[:320]))


def test_different_key_makes_a_different_mark(speech16k):
    a = Watermarker(WatermarkKey(bytes(32)), TOKEN, 16000).process(speech16k[:16000])
    b = Watermarker(WatermarkKey(bytes(31) + b"\1"), TOKEN, 16000).process(speech16k[:16000])
    assert not np.array_equal(a, b)
