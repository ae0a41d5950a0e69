"""Bounded session queues: drop-oldest accounting, timeline skips, output merging."""

import time

import numpy as np
import pytest

from rtvc.engine.load import Admission, AudioMeter, LoadMeter, predicted_load
from rtvc.errors import Overloaded
from rtvc.session.queues import InputQueue, OutFrame, OutputQueue


def ramp(start, n):
    return np.arange(start, start + n, dtype=np.float32)


def test_input_queue_fifo_and_partial_pop():
    q = InputQueue(100)
    q.push(ramp(0, 30), 1.0)
    q.push(ramp(30, 30), 2.0)
    assert q.pop(70) is None
    block = q.pop(40)
    np.testing.assert_array_equal(block.samples, ramp(0, 40))
    assert block.arrival == 2.0 and block.skipped == 0 and not block.discontinuity
    rest = q.pop(40, partial=True)
    np.testing.assert_array_equal(rest.samples, ramp(40, 20))
    assert len(q) == 0


def test_input_queue_drops_oldest_and_flags_the_gap():
    q = InputQueue(100)
    for i in range(5):
        q.push(ramp(i * 30, 30), float(i))
    assert len(q) == 100 and q.dropped == 50
    block = q.pop(100)
    np.testing.assert_array_equal(block.samples, ramp(50, 100))  # the newest 100 samples survive
    assert block.skipped == 50 and block.discontinuity


def test_input_queue_oversize_push_keeps_the_newest():
    q = InputQueue(64)
    assert q.push(ramp(0, 100), 0.0) == 36
    block = q.pop(64)
    np.testing.assert_array_equal(block.samples, ramp(36, 64))
    assert block.skipped == 36 and block.discontinuity


def test_input_queue_sender_skip_is_reported_once():
    q = InputQueue(100)
    q.push(ramp(0, 10), 0.0)
    q.push(ramp(500, 10), 0.0, skipped=490)
    first, second = q.pop(10), q.pop(10)
    assert (first.skipped, first.discontinuity) == (0, False)
    assert (second.skipped, second.discontinuity) == (490, True)


def frame(start, n, **kw):
    return OutFrame(bytes(2 * n), n, start, **kw)


def test_output_queue_is_bounded_and_flags_after_drop():
    q = OutputQueue(capacity=480)
    for i in range(10):
        q.push(frame(i * 160, 160))
    assert len(q) <= 480 and q.dropped == 7 * 160
    out = q.pop(max_samples=10_000)
    assert out.start_sample == 7 * 160 and out.discontinuity  # the gap is visible in start_sample and the flag
    assert out.samples == 480


def test_output_queue_never_drops_the_last_frame():
    q = OutputQueue(capacity=160)
    q.push(frame(0, 160, last=True))
    q.push(frame(160, 160))
    assert q.pop(160).last


def test_output_merge_stops_at_gaps_and_size():
    q = OutputQueue(capacity=10_000)
    for start in (0, 160, 320, 800):
        q.push(frame(start, 160))
    merged = q.pop(max_samples=320)
    assert (merged.start_sample, merged.samples, len(merged.pcm)) == (0, 320, 640)
    assert q.pop(max_samples=10_000).samples == 160  # 320..480 then a gap at 800
    assert q.pop(max_samples=10_000).start_sample == 800


def test_load_meter_and_prediction():
    meter = LoadMeter(window_s=1.0)
    meter.add(10.0, 10.25)
    meter.add(10.5, 10.75)
    assert meter.busy_fraction(now=11.0) == pytest.approx(0.5)
    assert meter.busy_fraction(now=12.5) == 0.0
    assert predicted_load(0.4, sessions=4, measured=4) == pytest.approx(0.5)
    assert predicted_load(0.4, sessions=4, measured=0) == 0.4


def _busy_meter(fraction: float, until: float, window_s: float = 2.0, since: float | None = None) -> LoadMeter:
    meter = LoadMeter(window_s)
    step = 0.01
    t = until - window_s if since is None else since
    while t < until - 1e-9:  # busy `fraction` of every 10 ms from `since` (default: the whole window)
        meter.add(t, t + step * fraction)
        t += step
    return meter


def test_admission_prices_a_burst_of_new_sessions_from_their_first_seconds():
    admission = Admission(max_load=0.8, window_s=2.0)
    now = time.perf_counter()
    # 10 sessions opened 0.5 s ago keep a worker fully busy: 5 s of audio in 0.5 s of work, so 0.1 each
    ten = _busy_meter(1.0, now, since=now - 0.5)
    admission.converted(5.0)
    with pytest.raises(Overloaded, match="one more would reach about 110%"):
        admission.check([ten], 10)
    admission.check([ten], 6)  # 7 x 10 % = 70 %: admitted


def test_admission_is_not_fooled_by_a_session_sending_faster_than_real_time():
    admission = Admission(max_load=0.8, window_s=2.0)
    now = time.perf_counter()
    busy = _busy_meter(0.5, now)  # one file converted as fast as allowed: 1 s of work for 20 s of audio
    admission.converted(20.0)
    admission.check([busy], 1)  # a real-time session costs 5 %: room for more
    with pytest.raises(Overloaded):
        admission.check([busy], 16)  # 17 x 5 % = 85 %


def test_admission_remembers_the_cost_for_the_next_burst():
    admission = Admission(max_load=0.8, window_s=2.0)
    now = time.perf_counter()
    admission.audio.add(16.0, at=now - 1.9)  # 8 real-time sessions over the window at 20 % load: 2.5 % each
    admission.check([_busy_meter(0.2, now)], 8)
    time.sleep(0.15)  # that audio leaves the window
    idle = LoadMeter(2.0)  # later: nothing running, nothing converted lately, a burst arrives
    admission.check([idle], 30)  # 31 x 2.5 % = 78 %
    with pytest.raises(Overloaded):
        admission.check([idle], 32)


def test_audio_meter_stays_bounded_without_readers():
    meter = AudioMeter(window_s=1.0)
    for i in range(5000):  # 50 s of 10 ms blocks, never read
        meter.add(0.01, at=100.0 + i * 0.01)
    assert len(meter._items) <= 101
    assert meter.seconds(now=150.0) == pytest.approx(1.0, abs=0.02)
