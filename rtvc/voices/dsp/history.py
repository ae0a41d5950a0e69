"""A growing sample buffer addressed by absolute sample index."""

from __future__ import annotations

import numpy as np

__all__ = ["History"]


class History:
    """Samples ``[start, end)`` of a stream, appended at the end and trimmed at the front.

    ``data[i - start]`` is sample ``i``. Trimming copies only once the dropped
    part is larger than what is kept, so appends stay amortised O(block).
    """

    def __init__(self, start: int, data: np.ndarray) -> None:
        self.start = start
        self.data = np.ascontiguousarray(data, dtype=np.float64)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, x: np.ndarray) -> None:
        self.data = np.concatenate([self.data, x])

    def trim(self, keep_from: int) -> None:
        """Forget samples before ``keep_from`` (lazily)."""
        drop = keep_from - self.start
        if drop > 0 and drop > len(self.data) - drop:
            self.data = self.data[drop:].copy()
            self.start = keep_from
