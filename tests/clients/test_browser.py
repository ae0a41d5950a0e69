"""The page at / in real headless Chromium, with a fake microphone playing shared speech, over WebRTC and WebSocket.

Needs Debian's Chromium (``apt-get install -y chromium``); skipped with that reason when it is absent.
"""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest
import soundfile as sf

from rtvc.transport.webrtc import use_host_addresses
from tests.clients.chromium import Chromium, find_chromium
from tests.clients.support import PITCH_VOICE, active_seconds, median_f0, speech_at, start_server

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")

STREAM_S = 4.0
PITCH_ST = 4.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    use_host_addresses(["127.0.0.1"])  # Chromium reaches the server's loopback candidate
    running = start_server(tmp_path_factory.mktemp("browser-data"))
    yield running
    running.stop()
    use_host_addresses([])


@pytest.fixture(scope="module")
def microphone(tmp_path_factory):
    """Speech then a short pause, at 48 kHz: what Chromium's fake capture device plays (looping)."""
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    speech = speech_at(48000, STREAM_S - 0.5)
    sf.write(path, np.r_[speech, np.zeros(24000, np.float32)], 48000, subtype="PCM_16")
    return path


def decode(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), "<f4")


@pytest.mark.parametrize("transport", ["webrtc", "websocket"])
def test_page_streams_the_microphone_and_plays_converted_speech(server, microphone, tmp_path, transport):
    async def run():
        async with Chromium(CHROMIUM, tmp_path / "profile", fake_audio=microphone) as browser:
            page = await browser.open(f"{server.http}/?key={server.key}&voice={PITCH_VOICE}&transport={transport}")
            await page.wait_for("window.rtvcApp && document.getElementById('voice').options.length > 1")
            await page.evaluate(f"""(() => {{
                const pitch = document.querySelector('#param-list input[name=pitch]');
                pitch.value = {PITCH_ST}; return pitch.value; }})()""")
            phase = await page.evaluate("rtvcApp.start({record: true})")
            assert phase == "streaming", await page.evaluate("rtvcApp.state.error")
            await asyncio.sleep(STREAM_S)
            latency_text = await page.evaluate("document.getElementById('latency').textContent")
            ended = await page.evaluate("rtvcApp.stop()", timeout_s=20)
            recording = await page.evaluate("rtvcApp.recording()")
            return latency_text, ended, recording

    latency_text, ended, recording = asyncio.run(run())
    rate = recording["rate"]
    sent, out = decode(recording["input"]), decode(recording["output"])
    assert ended and ended["type"] == "session.ended" and ended["frames_in"] > 0, ended
    assert latency_text.startswith("latency ≈")
    assert rate == 48000 and len(sent) >= STREAM_S * rate * 0.8
    # The page played back converted speech: about as much voiced audio as the microphone gave, pitched up.
    assert active_seconds(out, rate) > 1.0
    assert active_seconds(out, rate) == pytest.approx(active_seconds(sent, rate), rel=0.35)
    ratio = median_f0(out, rate) / median_f0(sent, rate)
    assert ratio == pytest.approx(2 ** (PITCH_ST / 12), rel=0.1)
    assert len(server.ctx.manager) == 0 or asyncio.run(_wait_empty(server))


async def _wait_empty(server, timeout_s: float = 10.0) -> bool:
    async with asyncio.timeout(timeout_s):
        while len(server.ctx.manager):  # noqa: ASYNC110 - state on the server's thread
            await asyncio.sleep(0.05)
    return True
