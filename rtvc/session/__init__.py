"""Sessions, transport-agnostic: what the WebSocket and WebRTC transports drive.

::

    request = StartRequest.from_json(msg)                 # ProtocolError / AudioFormatError with .code
    session = await manager.open(request, client=key, transport="ws")
    session.started                                       # the session.started payload
    session.submit(pcm, start_sample=None, discontinuity=False, last=False)   # non-blocking, bounded
    frame = await session.next_output()                   # OutputFrame(pcm, seq, start_sample, last,
                                                          #   discontinuity, samples) or None at the end
    replies = handle_control(session, msg)                # rtvc.protocol: update / ping / session.end
    session.stats()                                       # for the ~1/s stats message (stats_message())
    totals = await session.end(reason="client")           # graceful: flush, wait for delivery, session.ended
    session.close(reason="disconnect")                    # immediate: the peer is gone; frees everything
    session.final_message()                               # once next_output() returned None: session.ended
                                                          #   or the error that ended it
    session.closed, session.end_reason, session.error

Transport loop, in short: a reader task turns messages into ``submit`` /
``handle_control``; a writer task sends ``next_output()`` frames until None,
then sends ``final_message()`` and closes (1000 after session.ended, else the
close code of the error, see :func:`rtvc.protocol.close_code_for`); on
disconnect call ``close()``.
"""

from __future__ import annotations

from rtvc.session.backend import make_backend
from rtvc.session.limits import DEFAULT_LIMITS, Limits
from rtvc.session.manager import SessionManager
from rtvc.session.queues import OutFrame
from rtvc.session.request import StartRequest
from rtvc.session.session import OutputFrame, Session
from rtvc.session.watermark import WatermarkFailed

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "OutFrame",
    "OutputFrame",
    "Session",
    "SessionManager",
    "StartRequest",
    "WatermarkFailed",
    "make_backend",
]
