"""One WebRTC peer connection bound to one session: media in, paced media out, the ``rtvc`` data channel.

Lifecycle: :meth:`PeerSession.answer` negotiates (Opus only) and starts the tasks; the session ends when the
client asks (``session.end`` on the data channel, or HTTP DELETE), when the connection fails or never
connects, or when the server ends the session. :meth:`close` is idempotent and always ends the session,
so a vanished client frees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack

from rtvc.errors import RtvcError
from rtvc.protocol import ProtocolError, check_size, error_message, handle_control, parse_text
from rtvc.transport.tracks import InputReader, PacedOutputTrack

__all__ = ["CONTROL_CHANNEL", "PeerSession"]

log = logging.getLogger(__name__)

CONTROL_CHANNEL = "rtvc"
GRACEFUL_REASONS = frozenset({"client", "ended"})  # the client asked: flush the tail before hanging up


class PeerSession:
    """Drive ``session`` over a new RTCPeerConnection.

    Parameters
    ----------
    session : rtvc.session.Session
        Already opened (48 kHz mono pcm_s16le in and out).
    configuration : RTCConfiguration
        ICE servers (none by default: no STUN is ever contacted unless configured).
    connect_timeout_s : float
        A peer that has not connected by then is closed and its session ended.
    max_message_bytes : int
        Largest control message accepted on the data channel (``message_too_big`` beyond).
    stats_interval_s : float
        Period of the ``stats`` message on the data channel.
    close_grace_s : float
        After ``session.ended`` is sent, how long the client has to hang up before the server closes.
    max_input_queue_frames, output_max_buffer_ms : int, float
        Queue bounds of the input reader and the paced output track.
    jitter_prefetch_frames : int
        Frames aiortc's receive jitter buffer holds back before releasing audio (its own default is 4, i.e.
        about 80 ms). The session's input queue and the paced output already absorb jitter, so 1 is enough.
    on_closed : callable, optional
        Called with this object once it is fully closed (the registry forgets it).
    """

    def __init__(self, session, *, configuration: RTCConfiguration, connect_timeout_s: float = 15.0,
                 stats_interval_s: float = 1.0, close_grace_s: float = 2.0, max_input_queue_frames: int = 5,
                 output_max_buffer_ms: float | None = None, jitter_prefetch_frames: int = 1,
                 max_message_bytes: int = 262144,
                 on_closed: Callable[[PeerSession], None] | None = None) -> None:
        self.session = session
        self.pc = RTCPeerConnection(configuration=configuration)
        block_ms = float(session.started.get("block_ms", 20.0))
        # Room for one whole block plus two frames of jitter; anything beyond that is latency creep.
        self.output = PacedOutputTrack(max_buffer_ms=output_max_buffer_ms or max(120.0, block_ms + 60.0))
        self.reader: InputReader | None = None
        self.channel = None
        self.connect_timeout_s = connect_timeout_s
        self.stats_interval_s = stats_interval_s
        self.close_grace_s = close_grace_s
        self.max_input_queue_frames = max_input_queue_frames
        self.jitter_prefetch_frames = jitter_prefetch_frames
        self.max_message_bytes = max_message_bytes
        self._input_finished = False
        self.totals: dict | None = None
        self._on_closed = on_closed
        self._tasks: list[asyncio.Task] = []
        self._stats_task: asyncio.Task | None = None
        self._closing: asyncio.Task | None = None
        self._closed = asyncio.Event()
        self._connected = asyncio.Event()

    @property
    def id(self) -> str:
        return self.session.id

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Negotiate; raises ProtocolError (``bad_message``) for an offer we cannot answer."""
        transceiver = self.pc.addTransceiver("audio", direction="sendrecv")
        opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() == "audio/opus"]
        transceiver.setCodecPreferences(opus)
        transceiver.sender.replaceTrack(self.output)
        _set_jitter_prefetch(transceiver.receiver, self.jitter_prefetch_frames)
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)
        try:
            await self.pc.setRemoteDescription(offer)
            if not any(t.kind == "audio" and t.receiver.track is not None for t in self.pc.getTransceivers()):
                raise ProtocolError("the offer has no audio to receive (add a microphone track, sendrecv)")
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except ProtocolError:
            raise
        except Exception as exc:  # aiortc raises ValueError/OperationError/InvalidStateError on bad SDP
            raise ProtocolError(f"cannot answer this offer (it must offer Opus audio): {exc}") from None
        self._stats_task = asyncio.create_task(self._push_stats(), name=f"webrtc-stats-{self.id}")
        self._tasks += [
            self._stats_task,
            asyncio.create_task(self._pump_output(), name=f"webrtc-out-{self.id}"),
            asyncio.create_task(self._watch(), name=f"webrtc-watch-{self.id}"),
        ]
        return self.pc.localDescription

    def stats(self) -> dict:
        """The session's stats plus this transport's own: its drops, underruns and output buffer depth."""
        stats = dict(self.session.stats())
        stats["dropped_in"] = stats.get("dropped_in", 0) + (self.reader.dropped_samples if self.reader else 0)
        stats["dropped_out"] = stats.get("dropped_out", 0) + self.output.dropped_samples
        stats["underruns"] = self.output.underruns
        stats["output_buffer_ms"] = round(self.output.buffered_ms, 1)
        return stats

    # --- media -----------------------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or self.reader is not None:
            return
        self.reader = InputReader(track, self._submit, max_queued_frames=self.max_input_queue_frames)
        self._tasks.append(asyncio.create_task(self.reader.run(), name=f"webrtc-in-{self.id}"))

    def _submit(self, pcm: bytes, discontinuity: bool) -> None:
        if self._input_finished:
            return  # after session.end the microphone may go on; its audio has nowhere to go
        try:
            self.session.submit(pcm, discontinuity=discontinuity)
        except RtvcError as exc:  # the session stopped taking input (ended, or its input is finished)
            self._input_finished = True
            log.debug("webrtc %s: input closed: %s", self.id, exc)

    async def _pump_output(self) -> None:
        """Session output -> paced track; at the end, send the final message and hang up after a grace."""
        while (frame := await self.session.next_output()) is not None:
            self.output.push(frame.pcm)
        self.output.finish()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.output.drained(), timeout=2.0)
        self._stats_task.cancel()  # nothing follows the final message
        self._send(self._final_message())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=self.close_grace_s)
        self.close_soon("ended")

    def _final_message(self) -> dict:
        message = dict(self.session.final_message())  # session.ended with totals, or the error that ended it
        if message.get("type") == "session.ended":
            stats = self.stats()
            message.update({k: stats[k] for k in ("dropped_in", "dropped_out", "underruns")})
        return message

    # --- control ---------------------------------------------------------------------------------------

    def _on_datachannel(self, channel) -> None:
        if channel.label != CONTROL_CHANNEL:
            channel.close()  # only `rtvc` has a meaning here
            return
        self.channel = channel
        channel.on("message", self._on_message)

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._send(error_message("bad_message", "the rtvc channel carries JSON text; audio goes on the track"))
            return
        try:
            check_size(len(message.encode("utf-8")), self.max_message_bytes)
            replies = handle_control(self.session, parse_text(message))
        except ProtocolError as exc:
            replies = [error_message(exc.code, str(exc))]
        for reply in replies:
            self._send(reply)

    def _send(self, message: dict) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(message))

    async def _push_stats(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval_s)
            self._send({"type": "stats", "session_id": self.id, **self.stats()})

    # --- lifecycle -------------------------------------------------------------------------------------

    def _on_connection_state(self) -> None:
        if self.pc.connectionState == "connected":
            self._connected.set()
        elif self.pc.connectionState in ("failed", "closed"):
            self.close_soon("disconnect")

    async def _watch(self) -> None:
        """Close when the peer never connects, or when the server ends the session (revocation, error)."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout=self.connect_timeout_s)
        except TimeoutError:
            self.close_soon("connect_timeout")
            return
        await self.session.closed.wait()
        # The output pump sends the final message once the output runs dry; give it that long.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=self.close_grace_s + 2.5)
        self.close_soon(self.session.end_reason or "ended")

    def close_soon(self, reason: str) -> asyncio.Task:
        """Start closing (idempotent); returns the task that completes when everything is released."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(reason), name=f"webrtc-close-{self.id}")
        return self._closing

    async def close(self, reason: str = "client") -> dict:
        """End the session (flushing what is buffered), hang up, and return the session totals."""
        await asyncio.shield(self.close_soon(reason))
        return self.totals or {}

    async def _close(self, reason: str) -> None:
        try:
            if not self.session.closed.is_set():
                if reason in GRACEFUL_REASONS:
                    self.totals = await self.session.end(reason=reason)  # flush: the pump still reads the tail
                else:
                    self.session.close(reason=reason)  # the peer is gone or broken: nothing left to deliver
            self.totals = self.totals or self._final_message()
        except RtvcError as exc:
            log.warning("webrtc %s: ending the session failed: %s", self.id, exc)
        finally:
            current = asyncio.current_task()
            for task in self._tasks:
                if task is not current:
                    task.cancel()
            self.output.stop()
            await self.pc.close()
            self._closed.set()
            if self._on_closed is not None:
                self._on_closed(self)


def _set_jitter_prefetch(receiver, frames: int) -> None:
    """Replace aiortc's audio jitter buffer (capacity 16, prefetch 4, fixed in its constructor) before any RTP
    arrives. aiortc offers no setting for it; if its internals change, keep its default and say so."""
    attribute = "_RTCRtpReceiver__jitter_buffer"
    old = getattr(receiver, attribute, None)
    if not isinstance(old, JitterBuffer):
        log.warning("aiortc internals changed: cannot set the jitter buffer prefetch; keeping its default")
        return
    setattr(receiver, attribute, JitterBuffer(capacity=old.capacity, prefetch=frames))
