"""Mic mode: sound card in -> server -> sound card out, with a live latency line.

sounddevice (and PortAudio) are imported only here and only when mic mode runs.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping

from clients.python.client import RtvcClient
from clients.python.playout import PlayoutBuffer
from clients.python.protocol import AudioChunk

__all__ = ["list_devices", "run_mic", "sounddevice_module"]


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
    max_queued_frames: int = 10,
    duration_s: float | None = None,
) -> dict:
    """Run until Ctrl-C (or ``duration_s``); returns the session.ended totals (or {} if none came)."""
    sd = sounddevice_module()
    loop = asyncio.get_running_loop()
    fmt = {"encoding": "pcm_s16le", "sample_rate": sample_rate, "channels": 1}
    client = await RtvcClient.connect(url, key=key, voice=voice, purpose=purpose, input=fmt, output=fmt,
                                      params=params)
    frame = round(sample_rate * frame_ms / 1000.0)
    playout = PlayoutBuffer(sample_rate=sample_rate, frame_bytes=2, max_ms=playout_max_ms)
    captured: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max_queued_frames)
    counters = {"mic_dropped": 0, "rtt_ms": None}

    def enqueue(pcm: bytes) -> None:  # on the loop: a full queue loses its oldest frame, never blocks the card
        if captured.full():
            captured.get_nowait()
            counters["mic_dropped"] += 1
        captured.put_nowait(pcm)

    def on_input(indata, frames, time_info, status) -> None:  # PortAudio thread
        loop.call_soon_threadsafe(enqueue, bytes(indata))

    def on_output(outdata, frames, time_info, status) -> None:  # PortAudio thread
        outdata[:] = playout.pull(len(outdata))

    async def pump_mic() -> None:
        while True:
            await client.send_audio(await captured.get())

    async def ping_and_report() -> None:
        while True:
            await client.ping()
            await asyncio.sleep(0.5)
            rtt = counters["rtt_ms"]
            total = client.latency_ms + playout.depth_ms + (rtt or 0.0)
            line = (f"\rlatency ~{total:6.1f} ms = algorithmic {client.latency_ms:.1f} + network rtt "
                    f"{rtt if rtt is not None else float('nan'):.1f} + playout {playout.depth_ms:5.1f} | "
                    f"underruns {playout.underruns} dropped mic {counters['mic_dropped']} "
                    f"playout {playout.dropped_samples}   ")
            sys.stderr.write(line)
            sys.stderr.flush()

    async def end_after(seconds: float) -> None:
        await asyncio.sleep(seconds)
        await client.end()  # the server flushes the tail, answers session.ended and closes

    ended: dict = {}
    tasks: list[asyncio.Task] = []
    with sd.RawInputStream(samplerate=sample_rate, blocksize=frame, channels=1, dtype="int16",
                           device=_device(input_device), callback=on_input), \
         sd.RawOutputStream(samplerate=sample_rate, blocksize=frame, channels=1, dtype="int16",
                            device=_device(output_device), callback=on_output):
        tasks = [asyncio.create_task(pump_mic()), asyncio.create_task(ping_and_report())]
        if duration_s is not None:
            tasks.append(asyncio.create_task(end_after(duration_s)))
        try:
            while (message := await client.receive()) is not None:
                if isinstance(message, AudioChunk):
                    playout.push(message.pcm)
                elif message["type"] == "pong":
                    counters["rtt_ms"] = time.monotonic() * 1000.0 - float(message.get("t", 0.0))
                elif message["type"] == "error":
                    sys.stderr.write(f"\nserver error {message.get('code')}: {message.get('message')}\n")
                elif message["type"] == "session.ended":
                    ended = message
        finally:
            for task in tasks:
                task.cancel()
            await client.close()
    sys.stderr.write("\n")
    return ended
