import numpy as np
import pytest

from rtvc.pipeline.ring import RingBuffer


def test_fifo_order_across_wraparound():
    ring = RingBuffer(10)
    ring.write(np.arange(7, dtype=np.float32))
    assert ring.read(5).tolist() == [0, 1, 2, 3, 4]
    ring.write(np.arange(7, 14, dtype=np.float32))
    assert ring.read(9).tolist() == list(range(5, 14))
    assert len(ring) == 0


def test_overflow_drops_oldest_and_counts():
    ring = RingBuffer(8)
    assert ring.write(np.arange(6, dtype=np.float32)) == 0
    assert ring.write(np.arange(6, 10, dtype=np.float32)) == 2
    assert ring.read(8).tolist() == list(range(2, 10))
    assert ring.write(np.arange(20, dtype=np.float32)) == 12
    assert ring.read(8).tolist() == list(range(12, 20))


def test_read_more_than_buffered_raises():
    ring = RingBuffer(4)
    ring.write(np.ones(2, np.float32))
    with pytest.raises(ValueError):
        ring.read(3)
