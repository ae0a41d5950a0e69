"""Mic mode: sound card in -> server -> sound card out, with a live latency line.

sounddevice (and PortAudio) are imported only here and only when mic mode runs. The PortAudio callbacks
never block: capture hands bytes to the event loop (a bounded queue that drops its oldest frame when the
network falls behind), playback copies from a bounded :class:`PlayoutBuffer` and pads with silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from clients.python.client import RtvcClient
from clients.python.playout import PlayoutBuffer
from clients.python.protocol import AudioChunk

__all__ = ["AudioDeviceError", "list_devices", "run_mic", "sounddevice_module"]

REPORT_INTERVAL_S = 0.5


class AudioDeviceError(OSError):
    """A sound device could not be found or opened with the asked format."""


def sounddevice_module():
    try:
        import sounddevice
    except (ImportError, OSError) as exc:  # OSError: the module is there but PortAudio is not
        raise SystemExit(f"mic mode needs the sounddevice package and PortAudio ({exc}); "
                         "install with: pip install sounddevice (and apt-get install libportaudio2)") from None
    return sounddevice


def list_devices() -> str:
    return str(sounddevice_module().query_devices())


def _device(spec: str | None) -> int | str | None:
    """A device index when the spec is a number, else a (sub)name sounddevice matches itself."""
    if spec is None or spec == "":
        return None
    return int(spec) if spec.isdigit() else spec


def latency_line(*, algorithmic_ms: float, fill_ms: float, rtt_ms: float | None, playout_ms: float,
                 device_ms: float, underruns: int, mic_dropped: int, playout_dropped: int, xruns: int) -> str:
    """The one-line live report: the mouth-to-ear estimate and what it is made of (all in ms).

    ``fill_ms`` is the wait for audio to fill a mic frame and a server block (they overlap: the longer one).
    """
    rtt = math.nan if rtt_ms is None else rtt_ms
    total = algorithmic_ms + fill_ms + playout_ms + device_ms + (0.0 if rtt_ms is None else rtt_ms)
    return (f"latency ~{total:6.1f} ms = algorithmic {algorithmic_ms:.1f} + fill {fill_ms:.1f} "
            f"+ network rtt {rtt:.1f} + playout {playout_ms:5.1f} + devices {device_ms:.1f} | underruns {underruns} "
            f"dropped mic {mic_dropped} playout {playout_dropped} xruns {xruns}")


async def run_mic(
    url: str,
    key: str,
    *,
    voice: str,
    purpose: str = "live_streaming",
    params: Mapping[str, float] | None = None,
    input_device: str | None = None,
    output_device: str | None = None,
    sample_rate: int = 48000,
    frame_ms: float = 20.0,
    playout_max_ms: float = 200.0,
    playout_prime_ms: float = 20.0,
    max_queued_frames: int = 10,
    device_latency: str | float = "low",
    duration_s: float | None = None,
    report_to: TextIO | None = None,
) -> dict:
    """Run until Ctrl-C (or ``duration_s`` seconds, then end the session and play its tail).

    ``device_latency`` is PortAudio's suggested latency for both devices: "low", "high" or seconds.
    Returns the session.ended totals (or {} if none came). Raises AudioDeviceError when a device cannot be
    opened (before the server is contacted) and ServerError when the server refuses the session.
    """
    sd = sounddevice_module()
    report_to = sys.stderr if report_to is None else report_to
    loop = asyncio.get_running_loop()
    frame = round(sample_rate * frame_ms / 1000.0)
    playout = PlayoutBuffer(sample_rate=sample_rate, frame_bytes=2, max_ms=playout_max_ms, prime_ms=playout_prime_ms)
    captured: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max_queued_frames)
    counters = {"mic_dropped": 0, "xruns": 0}
    sending = [True]  # False once session.end is sent: later capture has nowhere to go

    def enqueue(pcm: bytes) -> None:  # on the loop: a full queue loses its oldest frame, never blocks the card
        if not sending[0]:
            return
        if captured.full():
            captured.get_nowait()
            counters["mic_dropped"] += 1
        captured.put_nowait(pcm)

    def on_input(indata, frames, time_info, status) -> None:  # PortAudio thread: copy and hand over, no waiting
        if status:
            counters["xruns"] += 1
        with contextlib.suppress(RuntimeError):  # the loop is closing: the frame has nowhere to go
            loop.call_soon_threadsafe(enqueue, bytes(indata))

    def on_output(outdata, frames, time_info, status) -> None:  # PortAudio thread
        if status:
            counters["xruns"] += 1
        outdata[:] = playout.pull(len(outdata))

    # Open the devices first: a wrong device name then costs the server nothing.
    try:
        mic = sd.RawInputStream(samplerate=sample_rate, blocksize=frame, channels=1, dtype="int16",
                                device=_device(input_device), latency=device_latency, callback=on_input)
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioDeviceError(f"cannot open input device {input_device or '(default)'}: {exc}") from None
    try:
        speaker = sd.RawOutputStream(samplerate=sample_rate, blocksize=frame, channels=1, dtype="int16",
                                     device=_device(output_device), latency=device_latency, callback=on_output)
    except (sd.PortAudioError, ValueError) as exc:
        mic.close()
        raise AudioDeviceError(f"cannot open output device {output_device or '(default)'}: {exc}") from None

    fmt = {"encoding": "pcm_s16le", "sample_rate": sample_rate, "channels": 1}
    try:
        client = await RtvcClient.connect(url, key=key, voice=voice, purpose=purpose, input=fmt, output=fmt,
                                          params=params)
    except BaseException:
        mic.close()
        speaker.close()
        raise
    device_ms = 1000.0 * (mic.latency + speaker.latency)
    fill_ms = max(frame_ms, float(client.started.get("block_ms", 0.0)))
    rtt_ms: float | None = None

    async def pump_mic() -> None:
        while True:
            await client.send_audio(await captured.get())

    async def report() -> None:
        while True:
            await client.ping()
            await asyncio.sleep(REPORT_INTERVAL_S)
            line = latency_line(algorithmic_ms=client.latency_ms, fill_ms=fill_ms, rtt_ms=rtt_ms,
                                playout_ms=playout.depth_ms, device_ms=device_ms, underruns=playout.underruns,
                                mic_dropped=counters["mic_dropped"], playout_dropped=playout.dropped_samples,
                                xruns=counters["xruns"])
            report_to.write(f"\r{line}   ")
            report_to.flush()

    async def end_after(seconds: float, pump: asyncio.Task) -> None:
        await asyncio.sleep(seconds)
        sending[0] = False
        pump.cancel()  # the server refuses audio after session.end
        await asyncio.gather(pump, return_exceptions=True)
        await client.end()  # the server flushes the tail, answers session.ended and closes

    ended: dict = {}
    tasks: list[asyncio.Task] = []
    try:
        with _running(sd, mic, speaker):
            pump = asyncio.create_task(pump_mic())
            tasks = [pump, asyncio.create_task(report())]
            if duration_s is not None:
                tasks.append(asyncio.create_task(end_after(duration_s, pump)))
            while (message := await client.receive()) is not None:
                if isinstance(message, AudioChunk):
                    playout.push(message.pcm)
                elif message["type"] == "pong":
                    rtt_ms = time.monotonic() * 1000.0 - float(message.get("t", 0.0))
                elif message["type"] == "error":
                    report_to.write(f"\nserver error {message.get('code')}: {message.get('message')}\n")
                elif message["type"] == "session.ended":
                    ended = message
            await _drain(playout, timeout_s=playout_max_ms / 1000.0 + 0.5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # a closed socket ends them; nothing to report
        await client.close()
        report_to.write("\n")
    return ended


@contextlib.contextmanager
def _running(sd, *streams):
    """Start the streams; on the way out stop them (which plays what PortAudio still holds) and close them."""
    try:
        for stream in streams:
            stream.start()
    except sd.PortAudioError as exc:
        for stream in streams:
            stream.close()
        raise AudioDeviceError(f"cannot start the sound devices: {exc}") from None
    try:
        yield
    finally:
        for stream in streams:
            stream.stop()
            stream.close()


async def _drain(playout: PlayoutBuffer, *, timeout_s: float) -> None:
    """Let the card play what the playout buffer still holds (the session's tail); it drains in real time."""
    playout.flush()
    await asyncio.sleep(min(playout.depth_ms / 1000.0, timeout_s))
