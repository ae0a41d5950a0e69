"""The Python client: its wire codec against the server's, its playout buffer, and file mode against a real server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clients.python import PlayoutBuffer, ServerError, pack_frame, stream_samples, unpack_frame
from clients.python.client import stream_url
from clients.python.protocol import ProtocolViolation
from rtvc.protocol import FrameHeader, parse_frame
from rtvc.protocol import pack_frame as server_pack_frame
from tests.clients.support import PITCH_VOICE, active_seconds, median_f0, speech_at, start_server

REPO = Path(__file__).resolve().parents[2]
RATE = 16000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("client-data"))
    yield running
    running.stop()


def test_client_frames_parse_on_the_server_and_back():
    pcm = np.arange(-5, 5, dtype="<i2").tobytes()
    header, payload = parse_frame(pack_frame(pcm, seq=2**32 + 7, start_sample=2**40 + 3, last=True))
    assert (header.seq, header.start_sample, header.last, header.discontinuity) == (7, 2**40 + 3, True, False)
    assert bytes(payload) == pcm
    chunk = unpack_frame(server_pack_frame(FrameHeader(9, 123, discontinuity=True), pcm), arrival=1.5)
    assert (chunk.seq, chunk.start_sample, chunk.last, chunk.discontinuity, chunk.pcm, chunk.arrival) == (
        9, 123, False, True, pcm, 1.5)
    with pytest.raises(ProtocolViolation, match="version"):
        unpack_frame(b"\x02" + bytes(15))
    with pytest.raises(ProtocolViolation, match="shorter"):
        unpack_frame(b"\x01\x00")


def test_stream_url_accepts_a_bare_host():
    assert stream_url("ws://127.0.0.1:9000") == "ws://127.0.0.1:9000/v1/stream"
    assert stream_url("https://example.org/") == "wss://example.org/v1/stream"
    assert stream_url("ws://h:1/custom?x=1") == "ws://h:1/custom?x=1"
    with pytest.raises(ValueError, match="ws://"):
        stream_url("ftp://h/")


def test_playout_buffer_caps_latency_and_pads_underruns():
    buffer = PlayoutBuffer(sample_rate=1000, frame_bytes=2, max_ms=10.0)  # 10 samples
    buffer.push(np.arange(25, dtype="<i2").tobytes())
    assert buffer.depth_ms == pytest.approx(10.0) and buffer.dropped_samples == 15
    out = np.frombuffer(buffer.pull(24), "<i2")
    assert np.array_equal(out, np.r_[np.arange(15, 25), np.zeros(2)])
    assert buffer.underruns == 1
    with pytest.raises(ValueError, match="whole number"):
        buffer.push(b"\x00")


def test_file_mode_library_in_real_time_returns_aligned_converted_speech(server):
    speech = speech_at(RATE, 2.0)
    report = asyncio.run(stream_samples(server.ws_url, server.key, speech, RATE, voice=PITCH_VOICE,
                                        params={"pitch": 4.0}, realtime=True))
    assert report.sample_rate == RATE
    assert abs(len(report.audio) - len(speech)) <= RATE * 0.05  # aligned: the latency prefix is removed
    assert report.gap_samples == 0 and report.errors == []
    assert report.ended["type"] == "session.ended" and report.ended["samples_in"] == len(speech)
    assert report.added_latency_ms and min(report.added_latency_ms) >= 0.0
    summary = report.summary()
    assert summary["algorithmic_latency_ms"] == report.started["latency_ms"]
    assert summary["added_latency_ms"]["p50"] is not None
    out = report.audio[:, 0]
    assert median_f0(out, RATE) / median_f0(speech, RATE) == pytest.approx(2 ** (4 / 12), rel=0.1)


def test_file_mode_cli_converts_a_wav_as_fast_as_allowed(server, tmp_path):
    speech = speech_at(RATE, 4.0)
    source, converted = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(source, speech, RATE, subtype="PCM_16")
    result = subprocess.run(
        [sys.executable, "-m", "clients.python", "file", str(source), str(converted), "--url", server.ws_url,
         "--key", server.key, "--voice", PITCH_VOICE, "--param", "pitch=-3", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dropped_in"] == 0 and summary["dropped_out"] == 0 and summary["gap_samples"] == 0
    out, rate = sf.read(converted, dtype="float32")
    assert rate == RATE and abs(len(out) - len(speech)) <= RATE * 0.05
    assert active_seconds(out, RATE) == pytest.approx(active_seconds(speech, RATE), rel=0.2)
    assert median_f0(out, RATE) / median_f0(speech, RATE) == pytest.approx(2 ** (-3 / 12), rel=0.1)
    assert summary["wall_s"] < len(speech) / RATE  # faster than real time: nothing paced it


def test_file_mode_cli_reports_refusals_clearly(server, tmp_path):
    source = tmp_path / "in.wav"
    sf.write(source, speech_at(RATE, 0.5), RATE)
    common = [sys.executable, "-m", "clients.python", "file", str(source), str(tmp_path / "out.wav"),
              "--url", server.ws_url]
    bad_key = subprocess.run([*common, "--key", "rtvc_nope_nope", "--voice", PITCH_VOICE], cwd=REPO,
                             capture_output=True, text=True, timeout=30)
    bad_voice = subprocess.run([*common, "--key", server.key, "--voice", "nobody"], cwd=REPO,
                               capture_output=True, text=True, timeout=30)
    missing = subprocess.run([*common[:4], str(tmp_path / "absent.wav"), "x.wav", "--key", "k", "--voice", "v"],
                             cwd=REPO, capture_output=True, text=True, timeout=30)
    assert bad_key.returncode == 2 and "unauthorized" in bad_key.stderr
    assert bad_voice.returncode == 2 and "unknown_voice" in bad_voice.stderr
    assert missing.returncode == 2 and "absent.wav" in missing.stderr
    assert not (tmp_path / "out.wav").exists()


def test_library_raises_server_error_with_the_code(server):
    with pytest.raises(ServerError) as refused:
        asyncio.run(stream_samples(server.ws_url, server.key, np.zeros(160, np.float32), RATE, voice=PITCH_VOICE,
                                   params={"pitch": 1000.0}))
    assert refused.value.code == "bad_params"
