"""The watermark's own error: anything that stops marking or detection."""

from __future__ import annotations

from rtvc.errors import RtvcError

__all__ = ["WatermarkError"]


class WatermarkError(RtvcError):
    """The watermark cannot be embedded or read: bad key, bad input or an internal fault.

    The embedder raises it instead of ever returning unmarked audio (fail closed).
    """

    code = "watermark_failed"
