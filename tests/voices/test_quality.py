"""Pitch and formant accuracy on real speech, measured with Praat (the benchmark's measures)."""

import numpy as np
import pytest
import soundfile as sf

from benchmarks.quality import formant_ratios, pitch_errors, render_stream
from rtvc.voices.registry import VoiceRegistry

# a low male reader (the hardest case), a male and a female VCTK speaker
PITCH_FILES = {"librispeech_dev-clean/652-129742-0000.wav": "M", "vctk/p226_011.wav": "M", "vctk/p225_016.wav": "F"}
FORMANT_FILES = {"vctk/p227_003.wav": "M", "vctk/p228_011.wav": "F"}


def _load(speech_paths, name):
    path = next(p for p in speech_paths if p.as_posix().endswith(name))
    return sf.read(str(path), dtype="float32")


@pytest.fixture(scope="module")
def shifter():
    return VoiceRegistry().get("higher")


@pytest.mark.parametrize("name", list(PITCH_FILES))
@pytest.mark.parametrize("shift", [-12.0, -5.0, 5.0, 12.0])
def test_output_pitch_is_the_input_pitch_times_the_ratio(speech_paths, shifter, name, shift):
    x, rate = _load(speech_paths, name)
    y = render_stream(shifter, x, rate, {"pitch": shift, "formant": 1.0})
    coverage = {}
    cents = pitch_errors(x, y, rate, shift, PITCH_FILES[name], coverage)
    # the output stays voiced where the input was (lowest: -12 st on the 75-110 Hz reader, ~40 %)
    assert coverage["both_voiced"] >= 0.35 * coverage["input_voiced"], coverage
    assert np.median(np.abs(cents)) <= 15.0, np.median(np.abs(cents))


@pytest.mark.parametrize("name", list(FORMANT_FILES))
@pytest.mark.parametrize("shift, factor", [(0.0, 0.85), (0.0, 1.2), (5.0, 1.0)])
def test_formants_move_by_the_formant_factor(speech_paths, shifter, name, shift, factor):
    x, rate = _load(speech_paths, name)
    y = render_stream(shifter, x, rate, {"pitch": shift, "formant": factor})
    f1, f2 = formant_ratios(x, y, rate, factor, FORMANT_FILES[name])
    assert abs(f1 - 1.0) <= 0.08 and abs(f2 - 1.0) <= 0.08, (f1, f2)


def test_the_robot_is_monotone(speech_paths):
    import parselmouth

    x, rate = _load(speech_paths, "vctk/p226_011.wav")
    robot = VoiceRegistry().get("robot")
    for pitch, target in ((0.0, 110.0), (7.0, 110.0 * 2 ** (7 / 12))):
        y = render_stream(robot, x, rate, {"pitch": pitch})
        f0 = parselmouth.Sound(y.astype(np.float64), rate).to_pitch_ac(
            time_step=0.01, pitch_floor=60.0, pitch_ceiling=400.0).selected_array["frequency"]
        voiced = f0[f0 > 0]
        cents = 1200 * np.log2(voiced / target)
        assert len(voiced) > 100 and np.median(np.abs(cents)) < 10.0
        assert np.percentile(np.abs(cents), 75) < 30.0  # flat, unlike the input's intonation


def test_level_is_kept_within_a_few_db(speech_paths, shifter):
    x, rate = _load(speech_paths, "vctk/p225_016.wav")
    for params in ({"pitch": -12.0}, {"pitch": 12.0}, {"formant": 1.4}, {"formant": 0.7}):
        y = render_stream(shifter, x, rate, params)
        gain_db = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(x.astype(np.float64) ** 2))
        assert -3.0 < gain_db < 2.0, (params, gain_db)
