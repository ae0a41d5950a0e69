from __future__ import annotations

import json

import numpy as np
import pytest
import soxr

from rtvc.errors import AudioFormatError, AudioValueError
from rtvc.watermark import Watermarker, WatermarkKey, detect
from tests.watermark.conftest import TOKEN


def test_round_trip_finds_presence_spans_and_token(key, marked48k):
    report = detect(marked48k, 48000, key)
    assert report.present and report.score > 2 * report.threshold
    assert [t.token for t in report.tokens] == [TOKEN]
    assert report.tokens[0].start_s == 0.0 and report.tokens[0].end_s > report.duration_s - 1.5
    assert sum(s.marked for s in report.seconds) >= len(report.seconds) - 1
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["present"] is True and doc["tokens"][0]["token"] == f"{TOKEN:016x}"
    assert doc["key_id"] == key.key_id


def test_token_from_an_excerpt_cut_at_an_arbitrary_sample(key, marked48k):
    excerpt = marked48k[12345 : 12345 + 8 * 48000]
    report = detect(excerpt, 48000, key)
    assert [t.token for t in report.tokens] == [TOKEN]


def test_round_trip_at_8k_telephone_band(key, speech16k):
    x8 = soxr.resample(speech16k, 16000, 8000).astype(np.float32)
    report = detect(Watermarker(key, TOKEN, 8000).process(x8), 8000, key)
    assert report.present and [t.token for t in report.tokens] == [TOKEN]


def test_polarity_and_gain_do_not_matter(key, marked48k):
    report = detect(-0.3 * marked48k[: 10 * 48000], 48000, key)
    assert [t.token for t in report.tokens] == [TOKEN]


def test_wrong_key_finds_nothing(marked48k):
    report = detect(marked48k, 48000, WatermarkKey(bytes(32)))
    assert not report.present and report.tokens == [] and report.spans == []


def test_unmarked_audio_is_not_flagged(key, speech48k):
    rng = np.random.default_rng(0)
    for audio in (speech48k, rng.normal(0, 0.1, 5 * 48000), np.zeros(3 * 48000)):
        report = detect(audio, 48000, key)
        assert not report.present and report.tokens == []
        assert report.score < report.threshold


def test_spliced_sessions_are_told_apart(key, speech48k, marked48k):
    other = Watermarker(key, TOKEN ^ 0xFFFF, 48000).process(speech48k[: 9 * 48000])
    spliced = np.concatenate([marked48k[: 9 * 48000 + 1234], speech48k[: 3 * 48000], other])
    report = detect(spliced, 48000, key)
    found = {t.token: (t.start_s, t.end_s) for t in report.tokens}
    assert set(found) == {TOKEN, TOKEN ^ 0xFFFF}
    assert found[TOKEN][1] <= 10.0 and found[TOKEN ^ 0xFFFF][0] >= 11.0  # the unmarked 3 s sit between
    assert not any(s.marked for s in report.seconds[10:12])


def test_too_short_input_is_not_searched(key, marked48k):
    report = detect(marked48k[:24000], 48000, key)
    assert not report.present and report.score == 0.0


@pytest.mark.parametrize(("audio", "rate", "error"), [
    (np.zeros(0), 16000, AudioValueError),
    (np.array([0.0, np.nan] * 8000), 16000, AudioValueError),
    (np.zeros((4, 4, 4)), 16000, AudioValueError),
    (np.zeros(16000), 0, AudioFormatError),
])
def test_bad_input_is_refused(key, audio, rate, error):
    with pytest.raises(error):
        detect(audio, rate, key)
