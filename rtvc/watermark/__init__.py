"""The rolling watermark: every returned frame carries a keyed mark that leads back to the session.

Embedding (:class:`Watermarker`) is a zero-look-ahead streaming stage; detection (:func:`detect`,
:func:`detect_file`) finds the mark at any cut point, localises it per second and decodes the
64-bit session token. See ``docs/watermark.md``.
"""

from __future__ import annotations

from rtvc.watermark.detection import decode_file, detect, detect_file
from rtvc.watermark.embed import SUPPORTED_RATES, Watermarker
from rtvc.watermark.errors import WatermarkError
from rtvc.watermark.key import WatermarkKey, key_from_config
from rtvc.watermark.report import DetectionReport, SecondScore, Span, TokenSpan

__all__ = [
    "SUPPORTED_RATES",
    "DetectionReport",
    "SecondScore",
    "Span",
    "TokenSpan",
    "WatermarkError",
    "WatermarkKey",
    "Watermarker",
    "decode_file",
    "detect",
    "detect_file",
    "key_from_config",
]
