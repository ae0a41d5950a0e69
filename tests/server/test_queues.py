"""Bounded session queues: drop-oldest accounting, timeline skips, output merging."""

import numpy as np
import pytest

from rtvc.engine.load import LoadMeter, predicted_load
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
