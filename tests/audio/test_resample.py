import numpy as np
import pytest

from rtvc.audio.resample import ResampleStream, resample

RATE_PAIRS = [(48000, 16000), (16000, 48000), (44100, 48000), (8000, 44100), (22050, 24000), (32000, 32000)]


def _chunked(stream, x, sizes):
    out, i = [], 0
    for n in sizes:
        out.append(stream.process(x[i : i + n]))
        i += n
    out.append(stream.process(x[i:], last=True))
    return np.concatenate(out)


@pytest.mark.parametrize(("a", "b"), RATE_PAIRS)
@pytest.mark.parametrize("chunk", [1, 17, 509, 48000])
def test_chunked_equals_one_shot_bit_exact(a, b, chunk):
    x = np.random.default_rng(a + b).standard_normal(9001).astype(np.float32) * 0.1
    one = ResampleStream(a, b).process(x, last=True)
    sizes = [chunk] * (len(x) // chunk)
    assert np.array_equal(_chunked(ResampleStream(a, b), x, sizes), one)


@pytest.mark.parametrize(("a", "b"), RATE_PAIRS)
def test_output_count_is_exact(a, b):
    stream = ResampleStream(a, b)
    n = 0
    for size in (1, 333, 4410, 2, 10000):
        stream.process(np.zeros(size, np.float32))
        n += size
        assert stream._j == -(-n * b // a)  # ceil(n * b / a) after every chunk: no drift
    total = len(stream.process(np.zeros(0, np.float32), last=True)) + stream._j - 0
    assert total >= stream.output_count(n)


@pytest.mark.parametrize(("a", "b"), RATE_PAIRS)
def test_tone_passes_with_stated_delay(a, b):
    t = np.arange(a) / a
    tone = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    stream = ResampleStream(a, b)
    y = stream.process(tone, last=True)
    ref = np.sin(2 * np.pi * 1000.0 * (np.arange(len(y)) - float(stream.delay())) / b)
    mid = slice(len(y) // 4, 3 * len(y) // 4)
    assert np.max(np.abs(y[mid] - ref[mid])) < 1e-3


def test_downsampling_rejects_aliases():
    a, b = 48000, 16000
    t = np.arange(a) / a
    tone = np.sin(2 * np.pi * 9500.0 * t).astype(np.float32)  # above the 8 kHz output Nyquist
    y = resample(tone, a, b)
    assert 20 * np.log10(np.std(y[2000:-2000]) / np.std(tone)) < -60


def test_one_shot_length():
    assert len(resample(np.zeros(16000, np.float32), 16000, 48000)) == 48000
    assert len(resample(np.zeros(44100, np.float32), 44100, 8000)) == 8000
