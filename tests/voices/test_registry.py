"""The built-in voice catalogue, its parameters and their validation."""

import json
import math

import numpy as np
import pytest

from rtvc.errors import AudioFormatError, AudioValueError, ConfigError, ParamError, UnknownVoice
from rtvc.voices.registry import VoiceRegistry, builtin_voices

REQUIRED = {"passthrough", "higher", "lower", "feminine", "masculine", "robot", "giant", "critter", "radio"}


def test_catalogue_has_the_required_voices_with_descriptions():
    voices = builtin_voices()
    names = [v.name for v in voices]
    assert REQUIRED <= set(names)
    assert len(names) == len(set(names))
    for voice in voices:
        assert voice.description and len(voice.description) > 10
        assert voice.kind == "dsp" and voice.sample_rate is None and voice.keeps_timing
        json.dumps(voice.describe())  # JSON-ready for `rtvc voices --json`


def test_parameters_and_ranges():
    for voice in builtin_voices():
        specs = {p.name: p for p in voice.params}
        if voice.name == "passthrough":
            assert specs == {}
            continue
        assert (specs["pitch"].minimum, specs["pitch"].maximum, specs["pitch"].unit) == (-12.0, 12.0, "semitones")
        assert (specs["formant"].minimum, specs["formant"].maximum) == (0.7, 1.4)
    defaults = {v.name: v.check_params({}) for v in builtin_voices() if v.params}
    assert defaults["higher"]["pitch"] == 5.0 and defaults["lower"]["pitch"] == -5.0
    assert defaults["feminine"]["pitch"] > 0 and defaults["feminine"]["formant"] > 1
    assert defaults["masculine"]["pitch"] < 0 and defaults["masculine"]["formant"] < 1
    assert defaults["giant"]["pitch"] < defaults["masculine"]["pitch"] and defaults["giant"]["formant"] < 0.85
    assert defaults["critter"]["pitch"] > defaults["feminine"]["pitch"] and defaults["critter"]["formant"] > 1.18


@pytest.mark.parametrize("params, fragment", [
    ({"pitch": 12.5}, "outside -12..12"),
    ({"pitch": -13}, "outside -12..12"),
    ({"formant": 0.5}, "outside 0.7..1.4"),
    ({"formant": 1.41}, "outside 0.7..1.4"),
    ({"pitch": math.nan}, "outside"),
    ({"pitch": math.inf}, "outside"),
    ({"pitch": "5"}, "must be a number"),
    ({"pitch": True}, "must be a number"),
    ({"speed": 2.0}, "no parameter speed"),
])
def test_bad_parameters_are_rejected_with_a_clear_message(params, fragment):
    voice = VoiceRegistry().get("higher")
    with pytest.raises(ParamError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        voice.check_params(params)


def test_passthrough_takes_no_parameters():
    with pytest.raises(ParamError, match="no parameter pitch"):
        VoiceRegistry().get("passthrough").check_params({"pitch": 1.0})


def test_registry_lookup_and_errors():
    registry = VoiceRegistry()
    assert registry.names()[0] == "passthrough" and len(registry) >= 9 and "robot" in registry
    with pytest.raises(UnknownVoice, match="unknown voice 'alien'.*known voices: .*robot"):
        registry.get("alien")
    with pytest.raises(ConfigError, match="two voices are named 'radio'"):
        registry.add(registry.get("radio"))
    empty = VoiceRegistry([])
    assert len(empty) == 0 and empty.describe() == []


@pytest.mark.parametrize("rate, block", [(4000, 40), (192000, 100), (16000, 0), (16000, -5), (16000.0, 160)])
def test_open_rejects_unsupported_rates_and_blocks(rate, block):
    voice = VoiceRegistry().get("giant")
    with pytest.raises(AudioFormatError):
        voice.open(sample_rate=rate, block=block, params=voice.check_params({}))


def test_process_rejects_a_block_of_the_wrong_shape():
    for name in ("passthrough", "radio"):
        voice = VoiceRegistry().get(name)
        stream = voice.open(sample_rate=16000, block=160, params=voice.check_params({}))
        with pytest.raises(AudioFormatError, match=r"shape \(160,\)"):
            stream.process(np.zeros(159, np.float32))
        with pytest.raises(AudioFormatError):
            stream.process(np.zeros((160, 2), np.float32))


def test_non_finite_samples_are_rejected_and_the_stream_stays_usable():
    voice = VoiceRegistry().get("lower")
    stream = voice.open(sample_rate=16000, block=160, params=voice.check_params({}))
    bad = np.zeros(160, np.float32)
    bad[3] = np.nan
    with pytest.raises(AudioValueError, match="NaN"):
        stream.process(bad)
    assert not np.any(stream.process(np.zeros(160, np.float32)))
