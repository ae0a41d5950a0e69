"""The voice registry follows its voice store (hot reload) and verifies that an unloaded voice's weights are gone.

Tiny real-format RVC checkpoints, a real voice store in a temp dir.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from rtvc.errors import UnknownVoice
from rtvc.voices.registry import VoiceRegistry, holds_weights
from rtvc.voices.rvc.library import import_rvc
from rtvc.voices.rvc.synthetic import (
    random_hubert_weights,
    tiny_hubert_config,
    write_fairseq_checkpoint,
    write_random_pth,
)
from rtvc.voices.store import VoiceStore

torch.set_num_threads(1)


@pytest.fixture
def store(tmp_path) -> VoiceStore:
    cfg = tiny_hubert_config("v2")
    write_fairseq_checkpoint(tmp_path / "hubert_base.pt", cfg, random_hubert_weights(cfg, seed=1))
    return VoiceStore(tmp_path / "data")


def add_voice(store: VoiceStore, name: str, seed: int, *, replace: bool = False) -> None:
    model = store.root.parent.parent / f"{name}-{seed}.pth"
    write_random_pth(model, version="v2", sr="40k", seed=seed)
    import_rvc(store, name, model=model, content=store.root.parent.parent / "hubert_base.pt", replace=replace)


def registry_for(store: VoiceStore) -> VoiceRegistry:
    return VoiceRegistry.from_config({"server": {"data_dir": str(store.root.parent)}})


def convert_one_block(voice) -> None:
    """Run one block through the voice, which loads its weights."""
    stream = voice.open(sample_rate=voice.sample_rate, block=voice.sample_rate // 10, params=voice.check_params({}))
    voice.run([stream], [np.zeros(stream.layout.window, np.float32)])


def test_refresh_adds_imported_voices_drops_removed_ones_and_swaps_replaced_ones(store):
    add_voice(store, "ann", 1)
    registry = registry_for(store)
    assert "ann" in registry and registry.refresh() == ([], [])  # nothing changed: nothing read
    add_voice(store, "ben", 2)
    assert registry.refresh() == (["ben"], [])
    before = registry.get("ben")
    add_voice(store, "ben", 3, replace=True)
    assert registry.refresh() == (["ben"], ["ben"]) and registry.get("ben") is not before
    store.remove("ann")
    assert registry.refresh() == ([], ["ann"]) and "ann" not in registry
    assert "passthrough" in registry  # built-in voices are not the store's to drop


def test_lookup_reloads_the_store_for_a_name_it_does_not_know(store):
    registry = registry_for(store)
    add_voice(store, "cat", 4)
    assert registry.lookup("cat").name == "cat"
    with pytest.raises(UnknownVoice):
        registry.lookup("dog")
    with pytest.raises(UnknownVoice):
        registry.lookup("../etc")  # not a voice name: never looked for on disk


def test_unload_drops_the_weights_and_verifies_nothing_holds_them(store):
    add_voice(store, "eve", 5)
    registry = registry_for(store)
    voice = registry.get("eve")
    convert_one_block(voice)
    assert holds_weights(voice) and registry.loaded() == ["eve"]
    model = voice.model  # something still holding the weights (a leak) makes unload report them loaded
    del voice
    assert registry.unload("eve") is True and registry.loaded() == ["eve"] and "eve" not in registry
    del model
    gc.collect()
    assert registry.still_loaded("eve", collect=True) is False and registry.loaded() == []


def test_an_unloaded_voice_object_that_lingers_holds_no_weights(store):
    add_voice(store, "fay", 6)
    registry = registry_for(store)
    voice = registry.get("fay")  # e.g. a closing session still describing it
    convert_one_block(voice)
    assert registry.unload("fay") is False  # the weights went even though the voice object did not
    assert not holds_weights(voice) and registry.loaded() == []
