"""The engine's pass: blocks of voices that do not batch leave as they finish, not at the end of the pass."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rtvc.config import load_config
from rtvc.engine import Engine, EngineSettings, PassReport
from rtvc.session.build import build_stream, default_registry
from rtvc.session.limits import Limits
from rtvc.session.request import StartRequest
from rtvc.voices.base import Voice

RATE = 16000
FMT = {"encoding": "pcm_s16le", "sample_rate": RATE, "channels": 1}


def _streams(tmp_path: Path, voice: str, count: int):
    config = load_config(overrides={"server": {"data_dir": str(tmp_path)}})
    registry = default_registry(config, tmp_path)
    rng = np.random.default_rng(1)
    streams = []
    for _ in range(count):
        request = StartRequest.from_json({"type": "session.start", "voice": voice, "purpose": "research",
                                          "input": FMT, "output": FMT, "params": {}, "block_ms": 10.0})
        stream, _ = build_stream(registry.get(voice), request, config=config, limits=Limits(), data_dir=tmp_path,
                                 watermark_token=None)
        stream.push((0.1 * rng.standard_normal(RATE // 50)).astype(np.float32), time.perf_counter() - 1.0)
        streams.append(stream)
    return streams


def test_a_long_pass_hands_out_finished_blocks_early_and_each_once(tmp_path):
    engine = Engine(EngineSettings(mode="thread", workers=1, handoff_ms=1e-6))
    streams = _streams(tmp_path, "feminine", 6)
    handles = [engine.add(s, key=i) for i, s in enumerate(streams)]
    partials: list[tuple[float, PassReport]] = []
    report, _ = engine.step(handoff=lambda r: partials.append((time.perf_counter(), r)))
    assert report is not None and not report.partial
    assert len(partials) >= 5 and all(r.partial for _, r in partials)
    assert all(at <= report.end for at, _ in partials)
    delivered = [(h.key, f.start_sample) for _, r in partials for h, f in r.outputs] + \
                [(h.key, f.start_sample) for h, f in report.outputs]
    assert len(delivered) == len(set(delivered)) == 12  # two 10 ms blocks of each session, each once
    for handle in handles:
        starts = [s for key, s in delivered if key == handle.key]
        assert starts == sorted(starts) and len(starts) == 2
    assert report.voice_blocks == 12  # the pass's own report still counts every block


def test_without_a_handoff_the_pass_reports_everything_at_its_end(tmp_path):
    engine = Engine(EngineSettings(mode="thread", workers=1))
    for i, stream in enumerate(_streams(tmp_path, "robot", 3)):
        engine.add(stream, key=i)
    report, _ = engine.step()
    assert report is not None and len(report.outputs) == 6


def test_voices_batch_only_when_they_override_run():
    class Batched(Voice):
        name, description = "b", ""

        def open(self, *, sample_rate, block, params):  # noqa: ANN001, ANN202
            raise NotImplementedError

        def run(self, streams, windows):  # noqa: ANN001, ANN202
            return []

    class Single(Batched):
        run = Voice.run

    assert Batched().batches and not Single().batches
    config = load_config()
    registry = default_registry(config)
    assert not registry.get("feminine").batches
