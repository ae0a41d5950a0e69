"""Channel attacks for the watermark benchmark: real codecs (PyAV's libopus and LAME), filters, noise.

Each attack takes float32 mono audio at ``rate`` and returns ``(audio, rate)``, possibly at another rate.
Opus decoding goes through the libopus that PyAV bundles, called directly so that lost packets get the
decoder's real packet-loss concealment (FFmpeg's decoder API cannot signal a lost packet).
"""

from __future__ import annotations

import ctypes
import glob
import io
import os
from collections.abc import Callable

import av
import numpy as np
import soxr
from scipy.signal import butter, sosfilt

__all__ = ["ATTACKS", "DESCRIPTIONS", "mp3", "opus", "telephone"]

Attack = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, int]]


def _libopus() -> ctypes.CDLL:
    libs = os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs")
    found = sorted(glob.glob(os.path.join(libs, "libopus*.so*"))) or ["libopus.so.0"]
    lib = ctypes.CDLL(found[0])
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                      ctypes.POINTER(ctypes.c_float), ctypes.c_int, ctypes.c_int]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    return lib


_LIBOPUS = None


def opus(x: np.ndarray, rate: int, rng: np.random.Generator, *, kbps: int, loss: float = 0.0) -> tuple[np.ndarray, int]:
    """Opus at ``kbps`` with 20 ms frames (VoIP mode) through PyAV's libopus; ``loss`` = packet loss with PLC."""
    global _LIBOPUS
    if rate != 48000:
        x, rate = soxr.resample(x, rate, 48000).astype(np.float32), 48000
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = rate, "mono", "flt", kbps * 1000
    enc.options = {"frame_duration": "20", "application": "voip"}
    enc.open()
    packets = []
    for start in range(0, len(x), 960):
        chunk = np.zeros((1, 960), np.float32)
        piece = x[start : start + 960]
        chunk[0, : len(piece)] = piece
        frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        packets += [bytes(p) for p in enc.encode(frame)]
    packets += [bytes(p) for p in enc.encode(None)]
    _LIBOPUS = _LIBOPUS or _libopus()
    err = ctypes.c_int()
    dec = _LIBOPUS.opus_decoder_create(rate, 1, ctypes.byref(err))
    out = np.zeros(960 * len(packets), np.float32)
    buf = (ctypes.c_float * 5760)()
    lost = rng.random(len(packets)) < loss
    pos = 0
    try:
        for packet, gone in zip(packets, lost, strict=True):
            data, size = (None, 0) if gone else (packet, len(packet))
            n = _LIBOPUS.opus_decode_float(dec, data, size, buf, 960, 0)
            if n < 0:
                raise RuntimeError(f"opus_decode_float failed: {n}")
            out[pos : pos + n] = np.frombuffer(buf, np.float32, n)
            pos += n
    finally:
        _LIBOPUS.opus_decoder_destroy(dec)
    return out[:pos], rate


def mp3(x: np.ndarray, rate: int, rng: np.random.Generator, *, kbps: int = 64) -> tuple[np.ndarray, int]:
    """MP3 (LAME) at ``kbps`` in an MP3 file written and read back with PyAV."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as box:
        stream = box.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = kbps * 1000
        frame = av.AudioFrame.from_ndarray(x[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    buf.seek(0)
    with av.open(buf, "r") as box:
        pieces = [f.to_ndarray().reshape(-1) for f in box.decode(audio=0)]
    return np.concatenate(pieces).astype(np.float32), rate


def telephone(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """300–3400 Hz band-pass, 8 kHz, G.711 mu-law (8-bit)."""
    y = soxr.resample(x, rate, 8000)
    y = sosfilt(butter(4, [300, 3400], "bandpass", fs=8000, output="sos"), y)
    mu = 255.0
    y = np.clip(y, -1.0, 1.0)
    code = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127.0)
    y = np.sign(code) * np.expm1(np.abs(code) / 127.0 * np.log1p(mu)) / mu
    return y.astype(np.float32), 8000


def lowpass(x: np.ndarray, rate: int, rng: np.random.Generator, *, hz: float = 3500.0) -> tuple[np.ndarray, int]:
    return sosfilt(butter(8, hz, "lowpass", fs=rate, output="sos"), x).astype(np.float32), rate


def noise(x: np.ndarray, rate: int, rng: np.random.Generator, *, snr_db: float = 20.0) -> tuple[np.ndarray, int]:
    power = float(np.mean(np.asarray(x, np.float64) ** 2))
    return (x + rng.normal(0.0, np.sqrt(power * 10 ** (-snr_db / 10)), len(x))).astype(np.float32), rate


def speed(x: np.ndarray, rate: int, rng: np.random.Generator, *, factor: float) -> tuple[np.ndarray, int]:
    """Play ``factor`` times faster (pitch and tempo together), as a resampled clock would."""
    return soxr.resample(x, rate * factor, rate).astype(np.float32), rate


def splice(x: np.ndarray, rate: int, rng: np.random.Generator, *, cuts_per_s: float = 1.0,
           cut_s: float = 0.02) -> tuple[np.ndarray, int]:
    """Cut ``cut_s`` of audio out at ``cuts_per_s`` random places (desynchronises the excerpt)."""
    n_cuts = max(1, round(len(x) / rate * cuts_per_s))
    width = round(cut_s * rate)
    keep = np.ones(len(x), bool)
    for start in rng.integers(0, max(1, len(x) - width), n_cuts):
        keep[start : start + width] = False
    return x[keep], rate


ATTACKS: dict[str, Attack] = {
    "clean": lambda x, r, g: (x, r),
    "opus16": lambda x, r, g: opus(x, r, g, kbps=16),
    "opus24": lambda x, r, g: opus(x, r, g, kbps=24),
    "opus32": lambda x, r, g: opus(x, r, g, kbps=32),
    "opus16_loss5": lambda x, r, g: opus(x, r, g, kbps=16, loss=0.05),
    "opus24_loss5": lambda x, r, g: opus(x, r, g, kbps=24, loss=0.05),
    "opus32_loss5": lambda x, r, g: opus(x, r, g, kbps=32, loss=0.05),
    "mp3_64": lambda x, r, g: mp3(x, r, g, kbps=64),
    "resample_16k": lambda x, r, g: (soxr.resample(soxr.resample(x, r, 16000), 16000, r).astype(np.float32), r),
    "telephone": telephone,
    "lowpass_3k5": lowpass,
    "noise_20db": noise,
    "gain_0.3": lambda x, r, g: ((0.3 * x).astype(np.float32), r),
    "gain_3_clip": lambda x, r, g: (np.clip(3.0 * x, -1.0, 1.0).astype(np.float32), r),
    "polarity": lambda x, r, g: (-x, r),
    "speed_+2%": lambda x, r, g: speed(x, r, g, factor=1.02),
    "speed_-2%": lambda x, r, g: speed(x, r, g, factor=0.98),
    "cuts": splice,
}

DESCRIPTIONS = {
    "clean": "none",
    "opus16": "Opus 16 kbps, 20 ms frames, VoIP (PyAV libopus)",
    "opus24": "Opus 24 kbps, 20 ms frames, VoIP",
    "opus32": "Opus 32 kbps, 20 ms frames, VoIP",
    "opus16_loss5": "Opus 16 kbps + 5 % random packet loss, decoder PLC",
    "opus24_loss5": "Opus 24 kbps + 5 % random packet loss, decoder PLC",
    "opus32_loss5": "Opus 32 kbps + 5 % random packet loss, decoder PLC",
    "mp3_64": "MP3 64 kbps (LAME)",
    "resample_16k": "resample 48 -> 16 -> 48 kHz",
    "telephone": "300-3400 Hz band-pass, 8 kHz, G.711 mu-law",
    "lowpass_3k5": "low-pass 3.5 kHz (8th-order Butterworth)",
    "noise_20db": "white noise at 20 dB SNR",
    "gain_0.3": "gain x0.3",
    "gain_3_clip": "gain x3, clipped to [-1, 1]",
    "polarity": "polarity inversion",
    "speed_+2%": "2 % faster (pitch and tempo)",
    "speed_-2%": "2 % slower (pitch and tempo)",
    "cuts": "one 20 ms cut per second (desynchronising)",
}
