import numpy as np

from rtvc.pipeline.gate import NoiseGate
from rtvc.pipeline.sola import Sola


def test_gate_mutes_quiet_noise_and_passes_speech_onset_untouched():
    rate, block = 16000, 160
    gate = NoiseGate(rate, block=block, threshold_db=-40.0, hold_ms=20, release_ms=20)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(rate).astype(np.float32) * 1e-3  # -60 dBFS
    loud = np.zeros(rate, np.float32)
    loud[5000:] = 0.5 * np.sin(np.arange(rate - 5000) * 0.1)
    x = noise + loud
    y = np.concatenate([gate.process(x[i : i + block]) for i in range(0, rate, block)])
    assert np.max(np.abs(y[:4800])) == 0.0  # muted before the onset
    first = np.argmax(np.abs(x) >= 10 ** (-40 / 20))
    assert np.array_equal(y[first:], x[first:])  # from the first loud sample on, untouched


def test_gate_release_is_smooth():
    rate, block = 16000, 160
    gate = NoiseGate(rate, block=block, threshold_db=-30.0, hold_ms=10, release_ms=50)
    x = np.full(rate, 0.2, np.float32)
    x[8000:] = 0.01  # falls below threshold: fade, no step
    y = np.concatenate([gate.process(x[i : i + block]) for i in range(0, rate, block)])
    assert np.max(np.abs(np.diff(y[8000:]))) < 0.001
    assert y[-1] == 0.0


def test_gate_disabled_is_identity():
    gate = NoiseGate(48000, block=480, threshold_db=None)
    x = np.random.default_rng(1).standard_normal(480).astype(np.float32) * 1e-6
    assert np.array_equal(gate.process(x), x)


def test_sola_finds_the_matching_offset_and_joins_smoothly():
    block, xfade, search = 400, 80, 40
    sola = Sola(block=block, crossfade=xfade, search=search)
    signal = np.sin(2 * np.pi * np.arange(20000) / 97.0).astype(np.float32)
    out, pos = [], search
    for k in range(10):
        lag = (k * 13) % (search + 1)  # each render starts `lag` samples early
        rendered = signal[pos - lag : pos - lag + block + xfade + search]
        out.append(sola.process(rendered))
        if k:
            assert sola.last_offset == lag
        pos += block
    y = np.concatenate(out)[block:]
    assert np.allclose(y, signal[search + block : search + block + len(y)], atol=1e-5)


def test_sola_passthrough_without_crossfade():
    sola = Sola(block=4, crossfade=0, search=0)
    assert sola.process(np.arange(4, dtype=np.float32)).tolist() == [0, 1, 2, 3]
