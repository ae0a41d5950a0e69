"""A small Python client for the rtvc.v1 streaming protocol: a library and a CLI (``python -m clients.python``).

Library use::

    from clients.python import stream_samples
    report = asyncio.run(stream_samples("ws://127.0.0.1:8080/v1/stream", key, samples, 16000, voice="feminine"))
    report.audio, report.summary()
"""

from __future__ import annotations

from clients.python.client import DEFAULT_URL, RtvcClient, ServerError
from clients.python.filemode import StreamReport, stream_samples
from clients.python.playout import PlayoutBuffer
from clients.python.protocol import AudioChunk, pack_frame, unpack_frame

__all__ = [
    "DEFAULT_URL",
    "AudioChunk",
    "PlayoutBuffer",
    "RtvcClient",
    "ServerError",
    "StreamReport",
    "pack_frame",
    "stream_samples",
    "unpack_frame",
]
