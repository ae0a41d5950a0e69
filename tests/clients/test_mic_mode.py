"""Mic mode end to end through real PortAudio and ALSA devices that need no sound card.

The "microphone" is an ALSA ``file`` PCM that replaces what it captures with a raw file of shared speech; the
"speaker" is an ALSA ``file`` PCM that writes what it is given to a raw file. Both sit on the ALSA ``jack``
plugin over a JACK server with its ``dummy`` driver, which runs the clock (ALSA's ``null`` PCM has none, and
PortAudio would then capture and play as fast as the CPU allows). The client CLI runs in a subprocess so that
PortAudio starts with this ALSA configuration (a temporary HOME with ``.asoundrc``).

Needs libportaudio2, libasound2-plugins and jackd2 (Debian) and the sounddevice package; skipped without them.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from clients.python.playout import PlayoutBuffer
from rtvc.watermark import WatermarkKey, detect
from tests.clients.support import PITCH_VOICE, active_seconds, median_f0, speech_at, start_server

REPO = Path(__file__).resolve().parents[2]
RATE = 48000
JACK_PERIOD = 512  # the ALSA jack plugin wants a power of two; 10.7 ms at 48 kHz
SPEECH_S = 4.0
DURATION_S = 3.0
PITCH = 4.0
ALSA_PLUGIN_DIRS = ("/usr/lib/*", "/usr/lib", "/usr/lib64", "/usr/local/lib")  # Debian puts them under the triplet

ASOUNDRC = """\
pcm.rtvc_clock_in {{ type plug; slave.pcm {{ type jack; capture_ports {{ 0 system:capture_1 }} }} }}
pcm.rtvc_clock_out {{ type plug; slave.pcm {{ type jack; playback_ports {{ 0 system:playback_1 }} }} }}
pcm.rtvc_mic {{
    type file
    slave.pcm "rtvc_clock_in"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
pcm.rtvc_speaker {{
    type file
    slave.pcm "rtvc_clock_out"
    file "{outfile}"
    format "raw"
}}
"""


def _missing_audio_stack() -> str | None:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"sounddevice/PortAudio not usable ({exc}); pip install sounddevice, apt-get install libportaudio2"
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        return "jackd/jack_wait not found: apt-get install jackd2"
    if not any(glob.glob(f"{lib}/alsa-lib/libasound_module_pcm_jack.so") for lib in ALSA_PLUGIN_DIRS):
        return "the ALSA jack plugin is missing: apt-get install libasound2-plugins"
    return None


@pytest.fixture(scope="module")
def sound_env(tmp_path_factory):
    """Environment for subprocesses whose PortAudio sees rtvc_mic (speech in) and rtvc_speaker (file out)."""
    if (reason := _missing_audio_stack()) is not None:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("alsa-home")
    speech = speech_at(RATE, SPEECH_S)
    infile, outfile = home / "mic.raw", home / "speaker.raw"
    infile.write_bytes(np.round(speech * 32767).astype("<i2").tobytes())
    (home / ".asoundrc").write_text(ASOUNDRC.format(infile=infile, outfile=outfile))
    env = {**os.environ, "HOME": str(home), "JACK_DEFAULT_SERVER": f"rtvc-test-{uuid.uuid4().hex[:8]}",
           "JACK_NO_AUDIO_RESERVATION": "1", "JACK_NO_START_SERVER": "1"}
    log = home / "jackd.log"
    with log.open("wb") as log_file:  # a file, not a pipe: nobody reads jackd's output while it runs
        jackd = subprocess.Popen(["jackd", "--no-realtime", "-d", "dummy", "-r", str(RATE), "-p", str(JACK_PERIOD),
                                  "-C", "1", "-P", "1"], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        waited = subprocess.run(["jack_wait", "--wait", "--timeout", "10"], env=env, capture_output=True, timeout=15)
        if waited.returncode != 0:
            pytest.fail(f"jackd did not start: {log.read_text(errors='replace')}")
        yield env, speech, outfile
    finally:
        jackd.terminate()
        jackd.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("mic-data"))
    yield running
    running.stop()


def _mic_cli(env: dict, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clients.python", "mic", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_list_devices_shows_the_alsa_mic_and_speaker(sound_env):
    env, _, _ = sound_env
    listed = _mic_cli(env, "--list-devices")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"rtvc_mic, ALSA \([1-9]\d* in, 0 out\)", listed.stdout), listed.stdout
    assert re.search(r"rtvc_speaker, ALSA \(0 in, [1-9]\d* out\)", listed.stdout), listed.stdout


def test_mic_mode_plays_converted_marked_speech_from_the_mic(sound_env, server):
    env, speech, outfile = sound_env
    run = _mic_cli(env, "--url", server.ws_url, "--key", server.key, "--voice", PITCH_VOICE,
                   "--param", f"pitch={PITCH}", "--input-device", "rtvc_mic", "--output-device", "rtvc_speaker",
                   "--rate", str(RATE), "--duration", str(DURATION_S))
    assert run.returncode == 0, run.stderr
    ended = json.loads(run.stdout.strip().splitlines()[-1])
    assert ended["type"] == "session.ended" and ended["reason"] == "client"
    assert ended["dropped_in"] == 0 and ended["dropped_out"] == 0
    sent = ended["samples_in"]
    assert 0.8 * DURATION_S * RATE <= sent <= 1.1 * DURATION_S * RATE  # the card's clock, not the CPU's
    assert ended["samples_out"] >= sent  # the tail was flushed too

    lines = [line for line in re.split(r"[\r\n]", run.stderr) if line.startswith("latency ~")]
    assert lines, run.stderr
    terms = r"algorithmic \d+\.\d \+ fill \d+\.\d \+ network rtt \d+\.\d \+ playout +\d+\.\d \+ devices \d+\.\d"
    assert re.search(terms, lines[-1]), lines[-1]  # every term a number: the rtt came back from a pong

    played = np.frombuffer(outfile.read_bytes(), "<i2").astype(np.float32) / 32768.0
    said = speech[:sent]
    # The speaker ran from before the session started until its tail had played.
    assert DURATION_S <= len(played) / RATE <= DURATION_S + 3.0
    assert active_seconds(played, RATE) == pytest.approx(active_seconds(said, RATE), rel=0.25)
    assert median_f0(played, RATE) / median_f0(said, RATE) == pytest.approx(2 ** (PITCH / 12), rel=0.1)
    mark = detect(played, RATE, WatermarkKey.load_or_create(server.ctx.data_dir))
    assert mark.present, mark.to_json()


def test_mic_mode_names_a_missing_device_before_contacting_the_server(sound_env, server):
    env, _, _ = sound_env
    opened = server.ctx.metrics.sessions_opened.value(transport="ws")
    run = _mic_cli(env, "--url", server.ws_url, "--key", server.key, "--voice", PITCH_VOICE,
                   "--input-device", "no_such_mic", "--output-device", "rtvc_speaker", "--duration", "1")
    assert run.returncode == 2
    assert "cannot open input device no_such_mic" in run.stderr, run.stderr
    assert server.ctx.metrics.sessions_opened.value(transport="ws") == opened


def test_playout_buffer_primes_and_flushes():
    buffer = PlayoutBuffer(sample_rate=1000, frame_bytes=2, max_ms=100.0, prime_ms=10.0)  # prime: 10 samples
    buffer.push(np.arange(1, 6, dtype="<i2").tobytes())
    assert buffer.pull(4) == bytes(4) and buffer.underruns == 0  # still priming: silence, not an underrun
    buffer.push(np.arange(6, 11, dtype="<i2").tobytes())
    assert np.array_equal(np.frombuffer(buffer.pull(16), "<i2"), np.arange(1, 9))
    assert np.array_equal(np.frombuffer(buffer.pull(8), "<i2"), [9, 10, 0, 0]) and buffer.underruns == 1
    buffer.push(np.arange(1, 4, dtype="<i2").tobytes())
    assert buffer.pull(2) == bytes(2)  # primes again after running dry
    buffer.flush()
    assert np.array_equal(np.frombuffer(buffer.pull(8), "<i2"), [1, 2, 3, 0]) and buffer.underruns == 1
    with pytest.raises(ValueError, match="prime_ms"):
        PlayoutBuffer(sample_rate=1000, frame_bytes=2, max_ms=10.0, prime_ms=10.0)
