"""The watermark stage of a session, fail closed.

When the :mod:`rtvc.watermark` package is installed, every session's pipeline
gets a ``Watermarker`` as its postprocess stage, keyed by the server's key in the
data directory and carrying a random 64-bit token recorded with the session.
If it cannot be built, the session is refused; if it raises on a block, the
session ends with ``watermark_failed`` and that block's audio is never sent.
"""

from __future__ import annotations

import importlib
import importlib.util
import secrets
from pathlib import Path

import numpy as np

from rtvc.errors import RtvcError

__all__ = ["GuardedWatermark", "WatermarkFailed", "make_watermark", "new_token", "watermark_available"]


class WatermarkFailed(RtvcError):
    """The watermark could not be created or applied; no unmarked audio leaves the server."""

    code = "watermark_failed"


def watermark_available() -> bool:
    """True when the watermark package is part of this installation (then it is mandatory).

    A bare ``rtvc/watermark`` directory without ``__init__.py`` (a namespace
    package, i.e. not an installed package) does not count.
    """
    spec = importlib.util.find_spec("rtvc.watermark")
    return spec is not None and spec.origin is not None


class GuardedWatermark:
    """Wraps the watermarker so that any failure surfaces as :class:`WatermarkFailed`."""

    def __init__(self, marker: object) -> None:
        self._marker = marker

    def process(self, x: np.ndarray, *, last: bool = False) -> np.ndarray:
        try:
            y = self._marker.process(x, last=last)  # type: ignore[attr-defined]
        except Exception as exc:
            raise WatermarkFailed(f"watermark failed on an output block ({type(exc).__name__}: {exc})") from exc
        if len(y) != len(x):
            raise WatermarkFailed(f"watermark returned {len(y)} samples for {len(x)}")
        return y


def make_watermark(data_dir: Path, sample_rate: int, token: int) -> GuardedWatermark:
    """The postprocess stage for a new session carrying ``token`` (64-bit). Blocking (reads or creates the key).

    Raises
    ------
    WatermarkFailed
        The key or the watermarker could not be created.
    """
    try:
        module = importlib.import_module("rtvc.watermark")
        key = module.WatermarkKey.load_or_create(data_dir)
        marker = module.Watermarker(key, token, sample_rate)
    except Exception as exc:
        raise WatermarkFailed(f"cannot create the session watermark ({type(exc).__name__}: {exc})") from exc
    return GuardedWatermark(marker)


def new_token() -> int | None:
    """A random 64-bit watermark token for a new session, or None when rtvc.watermark is not installed."""
    return secrets.randbits(64) if watermark_available() else None
