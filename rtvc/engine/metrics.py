"""Minimal thread-safe Prometheus metrics: counters, gauges, histograms, text exposition 0.0.4.

Hand-written (a few dozen lines) rather than a dependency: the engine thread and
the event loop both record, ``/metrics`` renders.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable

__all__ = ["Counter", "Gauge", "Histogram", "MetricsRegistry"]

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items()) or [((), 0.0)]
        return self.header() + [f"{self.name}{_fmt_labels(k)} {_fmt_value(v)}" for k, v in items]


class Gauge(_Metric):
    """A value read at render time from ``source`` (or set explicitly)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, source: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text)
        self._source = source
        self._value = 0.0

    def set(self, value: float) -> None:
        self._value = float(value)

    def set_source(self, source: Callable[[], float]) -> None:
        self._source = source

    def value(self) -> float:
        return float(self._source()) if self._source is not None else self._value

    def render(self) -> list[str]:
        return self.header() + [f"{self.name} {_fmt_value(self.value())}"]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value
            self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def render(self) -> list[str]:
        with self._lock:
            counts, total, n = list(self._counts), self._sum, self._count
        lines, cumulative = self.header(), 0
        for bound, c in zip(self.buckets, counts, strict=False):
            cumulative += c
            lines.append(f"{self.name}_bucket{_fmt_labels((), (('le', _fmt_value(bound)),))} {cumulative}")
        lines.append(f'{self.name}_bucket{{le="+Inf"}} {n}')
        lines += [f"{self.name}_sum {_fmt_value(total)}", f"{self.name}_count {n}"]
        return lines


class MetricsRegistry:
    """Holds metrics in registration order and renders the exposition text."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def add(self, metric: _Metric) -> _Metric:
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics:
            lines += metric.render()  # type: ignore[attr-defined]
        return "\n".join(lines) + "\n"
