"""RVC voices in the voice store: import (validate, then copy) and turn records into voices."""

from __future__ import annotations

from pathlib import Path

from rtvc.errors import ModelLoadError
from rtvc.voices.rvc.model import RvcModel
from rtvc.voices.rvc.voice import RVCVoice
from rtvc.voices.store import StoredVoice, VoiceStore

__all__ = ["import_rvc", "stored_rvc_voices", "voice_from_record"]


def import_rvc(store: VoiceStore, name: str, *, model: str | Path, content: str | Path | None = None,
               pitch_model: str | Path | None = None, index: str | Path | None = None, replace: bool = False,
               description: str = "", sample_rate: int | None = None) -> StoredVoice:
    """Load every file as the voice will (so a bad one is refused before anything is copied), then store.

    Without ``content`` the store's current content encoder is shared; without ``pitch_model``
    the store's RMVPE is reused if there is one (YIN otherwise). ``model`` may be an ONNX
    synthesizer export; ``sample_rate`` (Hz) is for the exports that do not record it.
    """
    content = Path(content) if content is not None else store.shared_file("content")
    if content is None:
        raise ModelLoadError("no content encoder in the store yet; pass --content hubert_base.pt "
                             "(or checkpoint_best_legacy_500.pt, or a Hugging Face folder)")
    pitch_model = Path(pitch_model) if pitch_model is not None else store.shared_file("pitch_model")
    loaded = RvcModel.load(model, content=content, pitch_model=pitch_model, index=index, device="cpu",
                           sample_rate=sample_rate)
    files = {"model": Path(model), "content": content}
    if pitch_model is not None:
        files["pitch_model"] = pitch_model
    if index is not None:
        files["index"] = Path(index)
    facts = loaded.file.describe()
    facts["content_dim"] = loaded.file.content_dim
    return store.add(name, "rvc", files, facts=facts, replace=replace,
                     description=description or f"RVC {loaded.file.version} {loaded.sample_rate // 1000}k "
                                                f"({'pitch' if loaded.file.f0 else 'no pitch'})")


def voice_from_record(record: StoredVoice, *, device: str | None = None, backend: str = "torch") -> RVCVoice:
    """A lazily loading voice for a stored record (files load on its first session)."""
    paths = {role: record.path(role) for role in record.files}

    def load() -> RvcModel:
        onnx_export = "onnx_format" in facts  # a user's ONNX export: runs on onnxruntime whatever the backend
        loaded = RvcModel.load(paths["model"], content=paths["content"], pitch_model=paths.get("pitch_model"),
                               index=paths.get("index"), device=device,
                               sample_rate=int(facts["sample_rate"]) if onnx_export else None)
        if backend == "onnx" and not onnx_export:
            from rtvc.voices.rvc.onnx_backend import use_onnx
            use_onnx(loaded, record)
        return loaded

    facts = record.facts
    return RVCVoice(record.name, description=record.description, sample_rate=int(facts["sample_rate"]), loader=load,
                    f0=bool(facts.get("f0", True)), has_index="index" in paths, has_rmvpe="pitch_model" in paths,
                    formant=bool(facts.get("formant", True)), info=facts)


def stored_rvc_voices(data_dir: str | Path, *, device: str | None = None, backend: str = "torch") -> list[RVCVoice]:
    """Every RVC voice imported into ``data_dir`` (for the voice registry)."""
    return [voice_from_record(r, device=device, backend=backend) for r in VoiceStore(data_dir).list()
            if r.kind == "rvc"]
