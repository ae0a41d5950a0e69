"""The owner's recorded consent statement: checked to be real audio, stored privately beside the database."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import soundfile as sf

from rtvc.governance.errors import InvalidInput

__all__ = ["MAX_STATEMENT_AUDIO_BYTES", "STATEMENT_MEDIA_TYPES", "read_statement_audio", "store_statement_audio"]

MAX_STATEMENT_AUDIO_BYTES = 20 * 2**20  # minutes of speech even as 48 kHz WAV
STATEMENT_MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg"}


def read_statement_audio(source: Any, *, max_bytes: int) -> tuple[bytes, str]:
    """(bytes, file suffix) of a statement given as bytes or a file path; refuses non-audio and oversize input."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"statement audio {path} is not a file")
        if path.stat().st_size > max_bytes:
            raise InvalidInput(f"statement audio is over {max_bytes} bytes")
        data = path.read_bytes()
    else:
        raise InvalidInput(f"statement_audio must be bytes or a file path, got {type(source).__name__}")
    if not data or len(data) > max_bytes:
        raise InvalidInput(f"statement audio must be 1..{max_bytes} bytes, got {len(data)}")
    try:
        info = sf.info(io.BytesIO(data))
    except (RuntimeError, sf.LibsndfileError):
        raise InvalidInput("statement audio is not a readable audio file (WAV, FLAC or Ogg)") from None
    if info.frames <= 0:
        raise InvalidInput("statement audio holds no samples")
    return data, "." + info.format.lower()


def store_statement_audio(directory: Path, grant_id: str, data: bytes, suffix: str) -> Path:
    """Write ``directory/<grant_id><suffix>`` with mode 0600 (the directory 0700); never overwrites."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{grant_id}{suffix}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path
