"""An engine process on its own (the process backend, no server): it finds a voice imported after it started,
drops a voice when told to (closing a stream still using it) and follows its voice store when asked."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import torch

from rtvc.config import load_config
from rtvc.engine import EngineSettings
from rtvc.session import Limits
from rtvc.session.procs import ProcessBackend
from rtvc.session.request import StartRequest
from rtvc.voices.registry import VoiceRegistry
from rtvc.voices.rvc.library import import_rvc
from rtvc.voices.rvc.synthetic import (
    random_hubert_weights,
    tiny_hubert_config,
    write_fairseq_checkpoint,
    write_random_pth,
)
from rtvc.voices.store import VoiceStore

torch.set_num_threads(1)


def test_an_engine_process_loads_a_voice_imported_after_it_started_and_unloads_it_on_request(tmp_path):
    data = tmp_path / "data"
    cfg = tiny_hubert_config("v2")
    write_fairseq_checkpoint(tmp_path / "hubert_base.pt", cfg, random_hubert_weights(cfg, seed=2))
    write_random_pth(tmp_path / "zed.pth", version="v2", sr="40k", seed=9)
    config = load_config(overrides={"server": {"data_dir": str(data)}})
    backend = ProcessBackend(EngineSettings.from_config(config, mode="process", workers=1), config=config,
                             limits=Limits.from_config(config), data_dir=data)
    request = StartRequest.from_json({"voice": "zed", "purpose": "research",
                                      "input": {"encoding": "pcm_f32le", "sample_rate": 16000, "channels": 1}})

    async def run():
        await backend.start()
        try:
            [answer] = await backend.voices_loaded()
            assert "zed" not in answer["registered"]
            import_rvc(VoiceStore(data), "zed", model=tmp_path / "zed.pth", content=tmp_path / "hubert_base.pt")
            voice = VoiceRegistry.from_config(config, data_dir=data).get("zed")  # the server's own copy
            stream = await backend.open(voice, request, watermark_token=None)  # the process reloads its store
            frames, failures = [], []
            stream.bind(frames.append, failures.append)
            tone = (0.2 * np.sin(2 * np.pi * 180 * np.arange(16000) / 16000)).astype(np.float32)
            for chunk in np.split(tone, 50):
                stream.push(chunk, time.perf_counter())
            for _ in range(400):
                if frames and "zed" in (await backend.voices_loaded())[0]["loaded"]:
                    break
                await asyncio.sleep(0.05)
            [loaded] = await backend.voices_loaded()
            # the stream is still open (no server ended it): the process closes it and lets the weights go
            [reply] = await backend.unload_voice("zed")
            [after] = await backend.voices_loaded()
            import_rvc(VoiceStore(data), "amy", model=tmp_path / "zed.pth", content=tmp_path / "hubert_base.pt")
            backend.refresh_voices()
            [refreshed] = await backend.voices_loaded()
            VoiceStore(data).remove("amy")
            backend.refresh_voices()
            [removed] = await backend.voices_loaded()
            return loaded, reply, failures, after, refreshed, removed
        finally:
            await backend.stop()

    loaded, reply, failures, after, refreshed, removed = asyncio.run(run())
    assert loaded["loaded"] == ["zed"] and loaded["streams"] == ["zed"]
    assert reply.answered and not reply.still_loaded and reply.sessions_closed == 1
    assert [getattr(exc, "code", None) for exc in failures] == ["no_consent"]  # the session learns why it ended
    assert "zed" not in after["registered"] and after["loaded"] == [] and after["streams"] == []
    assert "amy" in refreshed["registered"] and "amy" not in removed["registered"]
