"""Detection: is the mark there, where, and which session token does it carry.

The input is searched in 2 s windows (1 s apart). A window is *detected* when its pilot
z-score passes the presence threshold. Each distinct embedding found (a segment grid,
pilot phase and polarity) then scores every second of the input at that one alignment
(no search, so an unmarked second scores like N(0, 1)); seconds scoring >= 3 are marked.
Tokens are decoded from each run of marked seconds (soft-combining all the blocks it
covers) and from its 8 s pieces; then every marked second is attributed to the decoded
token whose codeword its data cells match, so splices of sessions come apart.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np

from rtvc.errors import AudioFormatError, AudioValueError
from rtvc.watermark.code import encode_token
from rtvc.watermark.key import WatermarkKey
from rtvc.watermark.report import DetectionReport, SecondScore, Span, TokenSpan
from rtvc.watermark.scheme import FRAMES_PER_S, Layout
from rtvc.watermark.sync import (
    Alignment,
    Analysis,
    read_token,
    scan_pilot,
    score_at,
    to_detect_rate,
    token_score,
)

__all__ = ["PRESENCE_Z", "SECOND_Z", "decode_file", "detect", "detect_file", "presence_threshold"]

WINDOW_FRAMES = 2 * FRAMES_PER_S
STRIDE_FRAMES = FRAMES_PER_S
MIN_FRAMES = 45  # ~0.92 s: shorter inputs are not searched
# One window: the best of ~4000 alignments. By Rice's formula for the maximum of the (band-pass, high-frequency
# weighted) correlation over the lag range, P(false alarm) ~ 3300 exp(-z^2 / 2): ~3e-4 at 5.7 (measured:
# benchmarks/results/watermark.md), falling a decade per ~0.4 of z.
PRESENCE_Z = 5.7
SECOND_Z = 3.0  # one second at a known alignment: one-sided p ~ 1.3e-3
TOKEN_MIN_FRAMES = 2 * FRAMES_PER_S  # shortest span a token is decoded from
TOKEN_PIECE_S, TOKEN_STEP_S = 8, 4  # long spans are also decoded in 8 s pieces every 4 s (splices)
_Z_PER_DECADE = 0.45  # threshold rise per tenfold more windows searched (slightly above the ~0.4 above)


def presence_threshold(windows: int) -> float:
    """Threshold for the best of ``windows`` windows, keeping the whole-input false-positive rate ~constant."""
    return PRESENCE_Z + _Z_PER_DECADE * math.log10(max(1, windows))


def _windows(frames: int) -> np.ndarray:
    length = min(WINDOW_FRAMES, frames)
    starts = list(range(0, frames - length + 1, STRIDE_FRAMES))
    if starts[-1] + length < frames:  # cover the end too
        starts.append(frames - length)
    return np.array([[s, s + length] for s in starts])


def detect(samples: np.ndarray, sample_rate: int, key: WatermarkKey, *, max_seconds: float = 600.0) -> DetectionReport:
    """Look for the mark made with ``key`` in float audio ``(n,)`` or ``(n, channels)`` at ``sample_rate`` Hz.

    Raises
    ------
    AudioValueError
        Empty, non-finite or too long input.
    AudioFormatError
        A sample rate outside 8..192 kHz.
    """
    samples = np.asarray(samples)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or not 8000 <= sample_rate <= 192000:
        raise AudioFormatError(f"detection takes sample rates from 8000 to 192000 Hz, got {sample_rate!r}")
    if samples.ndim not in (1, 2) or samples.size == 0 or not np.issubdtype(samples.dtype, np.number):
        raise AudioValueError(f"detection takes non-empty numeric audio (n,) or (n, channels), got {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise AudioValueError("audio contains NaN or infinity")
    duration = samples.shape[0] / sample_rate
    if duration > max_seconds:
        raise AudioValueError(f"audio is {duration:.0f} s long; detection takes at most {max_seconds:.0f} s")
    analysis = Analysis(to_detect_rate(samples, int(sample_rate)))
    report = dict(duration_s=duration, sample_rate=int(sample_rate), key_id=key.key_id)
    real_frames = analysis.real_frames
    if real_frames < MIN_FRAMES:
        return DetectionReport(**report, score=0.0, threshold=PRESENCE_Z, present=False)
    layout = Layout.from_key(key)
    windows = _windows(analysis.frames)
    found = scan_pilot(analysis, layout, windows)
    threshold = presence_threshold(len(windows))
    score = max(abs(a.z) for a in found)
    if score < threshold:
        return DetectionReport(**report, score=score, threshold=threshold, present=False)
    # Once the mark is known to be there, further embeddings (splices) count from the one-window threshold.
    marks = _distinct([a for a in found if abs(a.z) >= PRESENCE_Z])
    seconds, spans, tokens = _localise(analysis, layout, key, marks, real_frames, duration)
    return DetectionReport(**report, score=score, threshold=threshold, present=True, seconds=seconds,
                           spans=spans, tokens=tokens)


def _distinct(aligns: list[Alignment]) -> list[Alignment]:
    """One alignment per embedding grid found, the strongest first."""
    out: list[Alignment] = []
    for a in sorted(aligns, key=lambda a: -abs(a.z)):
        if not any(a.same_grid(b) for b in out):
            out.append(a)
    return out


def _runs(labels: list[int | None]) -> list[tuple[int, int, int]]:
    """Maximal runs ``(label, first, stop)`` of equal, non-None labels."""
    runs, first = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[first]:
            if labels[first] is not None:
                runs.append((labels[first], first, i))
            first = i
    return runs


def _pieces(first: int, stop: int) -> list[tuple[int, int]]:
    """A stretch of seconds to decode: whole, and if long, also in 8 s pieces every 4 s."""
    pieces = [(first, stop)]
    if stop - first > TOKEN_PIECE_S + TOKEN_STEP_S:
        pieces += [(a, a + TOKEN_PIECE_S) for a in range(first, stop - TOKEN_PIECE_S + 1, TOKEN_STEP_S)]
    return pieces


def _localise(analysis: Analysis, layout: Layout, key: WatermarkKey, marks: list[Alignment], real_frames: int,
              duration: float) -> tuple[list[SecondScore], list[Span], list[TokenSpan]]:
    slots = [(f, min(f + FRAMES_PER_S, real_frames)) for f in range(0, real_frames, FRAMES_PER_S)]
    pilot = np.array([[score_at(analysis, layout, a, f0, f1) for f0, f1 in slots] for a in marks])
    best = np.argmax(pilot, axis=0)
    owner = [int(best[i]) if pilot[best[i], i] >= SECOND_Z else None for i in range(len(slots))]
    # Decode each run of seconds that one alignment marks, and long runs also in 8 s pieces (a splice of
    # sessions can share one grid); then attribute every marked second to the token it matches best.
    candidates: dict[tuple[int, int], int] = {}  # (token, mark) -> block phase
    for m, first, stop in _runs(owner):
        for a, b in _pieces(first, stop):
            if slots[b - 1][1] - slots[a][0] >= TOKEN_MIN_FRAMES:
                found = read_token(analysis, layout, key, marks[m], slots[a][0], slots[b - 1][1])
                if found is not None:
                    candidates.setdefault((found[0], m), found[1])
    tokens_of = _attribute(analysis, layout, key, marks, owner, slots, candidates)
    seconds = [SecondScore(i * 1.0, min(duration, i + 1.0), float(pilot[best[i], i]), owner[i] is not None,
                           tokens_of[i]) for i in range(len(slots))]
    spans = [Span(first * 1.0, min(duration, stop * 1.0)) for _, first, stop in _runs(
        [0 if m is not None else None for m in owner])]
    tokens = [TokenSpan(token, first * 1.0, min(duration, stop * 1.0)) for token, first, stop in _runs(tokens_of)]
    return seconds, spans, tokens


def _attribute(analysis: Analysis, layout: Layout, key: WatermarkKey, marks: list[Alignment],
               owner: list[int | None], slots: list[tuple[int, int]],
               candidates: dict[tuple[int, int], int]) -> list[int | None]:
    """Each marked second goes to the decoded token whose codeword its data cells match best (if z >= 3)."""
    coded = {token: encode_token(token, key) for token, _ in candidates}
    out: list[int | None] = [None] * len(slots)
    for i, m in enumerate(owner):
        if m is None:
            continue
        scores = {token: token_score(analysis, layout, marks[m], phase, coded[token], *slots[i])
                  for (token, mark), phase in candidates.items() if mark == m}
        if scores:
            token = max(scores, key=scores.get)
            out[i] = token if scores[token] >= SECOND_Z else None
    return out


def decode_file(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode any audio file PyAV reads to float32 mono and its sample rate."""
    path = Path(path)
    try:
        with av.open(str(path)) as box:
            if not box.streams.audio:
                raise AudioFormatError(f"{path} has no audio stream")
            stream = box.streams.audio[0]
            rate = stream.codec_context.sample_rate or stream.rate
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
            pieces = []
            for frame in box.decode(stream):
                pieces += [f.to_ndarray().reshape(-1) for f in to_mono.resample(frame)]
            pieces += [f.to_ndarray().reshape(-1) for f in to_mono.resample(None)]
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise AudioFormatError(f"cannot decode {path}: {exc}") from None
    if not pieces:
        raise AudioValueError(f"{path} contains no audio")
    return np.concatenate(pieces).astype(np.float32), int(rate)


def detect_file(path: str | Path, key: WatermarkKey, **kwargs) -> DetectionReport:
    """:func:`detect` on a file in any format PyAV reads (wav, flac, mp3, ogg/opus, m4a, ...)."""
    samples, rate = decode_file(path)
    return detect(samples, rate, key, **kwargs)
