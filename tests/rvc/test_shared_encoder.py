"""Voices sharing a content encoder: one encoder object in memory, one batched encoder pass per engine pass."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from rtvc.engine import Engine
from rtvc.engine.settings import EngineSettings
from rtvc.pipeline import BlockJob
from rtvc.session.queues import OutFrame
from rtvc.voices.rvc.synthetic import write_random_fcpe, write_random_pth
from rtvc.voices.rvc.voice import RVCStream, RVCVoice
from tests.rvc.test_streaming import _speech_at, _windows


class _BlockTask:
    """An engine task that offers one block per :meth:`arm` (one block of input arriving), seeded stream."""

    def __init__(self, stream: RVCStream, windows: list[np.ndarray]) -> None:
        self.stream, self.voice, self.windows = stream, stream.voice, windows
        self.done, self.retry_at = False, None
        self.outputs: list[np.ndarray] = []
        self._armed = False

    def arm(self) -> None:
        self._armed = len(self.outputs) < len(self.windows)

    def next_job(self, now: float) -> BlockJob | None:
        if not self._armed:
            return None
        self._armed = False
        return BlockJob(self.stream, self.windows[len(self.outputs)])

    def finish_job(self, job: BlockJob, rendered: np.ndarray, voice_s: float) -> OutFrame:
        self.outputs.append(rendered)
        return OutFrame(b"", len(rendered), 0)

    def end_frame(self) -> OutFrame:
        return OutFrame(b"", 0, 0, last=True)


@pytest.fixture(scope="module")
def voices(rvc_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    other_synth = root / "v2_other.pth"
    write_random_pth(other_synth, version="v2", sr="40k", seed=11)
    copied_encoder = root / "copy_of_hubert.pt"  # same bytes, another path: still one encoder in memory
    shutil.copy(rvc_files["hubert_v2"], copied_encoder)
    write_random_fcpe(root / "fcpe.pt", seed=2)
    kw = {"device": "cpu", "fcpe_model": root / "fcpe.pt"}
    return {
        "a": RVCVoice.from_files("a", model=rvc_files["v2"], content=rvc_files["hubert_v2"], **kw),
        "b": RVCVoice.from_files("b", model=other_synth, content=copied_encoder, **kw),
        "c": RVCVoice.from_files("c", model=rvc_files["v1"], content=rvc_files["hubert_v2"], **kw),  # v1: final_proj
        "d": RVCVoice.from_files("d", model=rvc_files["v1_32k"], content=rvc_files["hubert_v1"], **kw),
    }


def test_one_encoder_object_per_file_content(voices):
    a, b, c, d = (voices[k] for k in "abcd")
    assert a.model.content is b.model.content is c.model.content
    assert a.batch_key is b.batch_key is c.batch_key and d.batch_key is not a.batch_key
    assert a.model.synth is not b.model.synth


def test_hidden_states_of_several_layers_in_one_pass(voices):
    encoder = voices["a"].model.content
    x = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    first, second = encoder.hidden_states(x, (1, 2))
    torch.testing.assert_close(first, encoder(x, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(second, encoder(x, 2), atol=1e-5, rtol=1e-5)


def test_engine_batches_voices_sharing_an_encoder(voices):
    sessions = [("a", {"pitch": 3.0}), ("a", {"pitch": -2.0}), ("b", {"pitch": 0.0}), ("c", {"pitch": 5.0}),
                ("d", {"pitch": 1.0})]
    block_ms = 100

    def make(name: str, params: dict, seed: int) -> tuple[RVCStream, list[np.ndarray]]:
        voice = voices[name]
        sr = voice.sample_rate
        block = block_ms * sr // 1000
        stream = voice.open(sample_rate=sr, block=block, params=voice.check_params(
            {**params, "f0_method": 3, "extra_ms": 200}), seed=seed)
        return stream, _windows(_speech_at(sr, 0.5), block, stream.layout.window)

    solo = []
    for i, (name, params) in enumerate(sessions):
        stream, windows = make(name, params, seed=i)
        solo.append([stream.process(w) for w in windows])

    tasks = [_BlockTask(*make(name, params, seed=i)) for i, (name, params) in enumerate(sessions)]
    engine = Engine(EngineSettings(mode="thread", workers=1))
    for task in tasks:
        engine.add(task)
    shared = voices["a"].model.content
    fcpe = voices["a"].model.trackers["fcpe"]
    assert all(voices[k].model.trackers["fcpe"] is fcpe for k in "bcd")  # one FCPE network too
    batch_sizes: list[int] = []
    pitch_sizes: list[int] = []
    hooks = [shared.feature_extractor.register_forward_hook(lambda m, a, out: batch_sizes.append(out.shape[0])),
             fcpe.model.register_forward_hook(lambda m, a, out: pitch_sizes.append(out.shape[0]))]
    try:
        for _ in range(len(solo[0])):
            for task in tasks:
                task.arm()
            before, pitch_before = len(batch_sizes), len(pitch_sizes)
            report, _ = engine.step()
            assert report is not None and not report.failures
            assert batch_sizes[before:] == [4]  # one encoder pass per engine pass for a, a, b and c
            assert sorted(pitch_sizes[pitch_before:]) == [1, 4]  # one pitch pass per group (d has its own)
            assert report.voice_calls == 2  # the shared-encoder group and voice d
    finally:
        for hook in hooks:
            hook.remove()
    for task, want in zip(tasks, solo, strict=True):
        assert len(task.outputs) == len(want)
        for k, (got, ref) in enumerate(zip(task.outputs, want, strict=True)):
            np.testing.assert_allclose(got, ref, atol=1e-4, err_msg=f"{task.voice.name} block {k}")
    assert not np.allclose(tasks[0].outputs[-1], tasks[2].outputs[-1], atol=1e-3)  # different synthesizers


def test_run_refuses_streams_of_a_voice_with_another_encoder(voices):
    a, d = voices["a"], voices["d"]
    sa = a.open(sample_rate=a.sample_rate, block=a.sample_rate // 10, params=a.check_params({}))
    sd = d.open(sample_rate=d.sample_rate, block=d.sample_rate // 10, params=d.check_params({}))
    with pytest.raises(TypeError, match="content encoder"):
        a.run([sa, sd], [np.zeros(sa.layout.window, np.float32), np.zeros(sd.layout.window, np.float32)])
