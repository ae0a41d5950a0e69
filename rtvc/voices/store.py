"""The data directory's voice store: imported model files, content-addressed, plus one record per voice.

Layout under ``<data_dir>/voices``::

    files/<sha256>/<original name>    every imported file once (a shared hubert_base.pt is stored once)
    <name>.json                       the voice record: kind, files (sha256, name, bytes), model facts

Records are written atomically (temp file + rename). Issue 6 moves records into SQLite;
callers only use :class:`VoiceStore`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtvc.errors import ModelLoadError, ParamError, UnknownVoice

__all__ = ["SHARED_ROLES", "StoredFile", "StoredVoice", "VoiceStore", "sha256_of", "voice_files"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
FILE_ROLES = ("model", "content", "pitch_model", "index")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, or of a folder (over its sorted relative paths and file digests)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(child.relative_to(path).as_posix().encode() + b"\0" + sha256_of(child).encode())
        return digest.hexdigest()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    name: str
    bytes: int


@dataclass(slots=True)
class StoredVoice:
    """One voice record; ``paths`` resolves its files inside the store."""

    name: str
    kind: str
    files: dict[str, StoredFile]
    facts: dict = field(default_factory=dict)
    description: str = ""
    created: float = 0.0
    root: Path = Path()

    def path(self, role: str) -> Path | None:
        stored = self.files.get(role)
        return None if stored is None else self.root / "files" / stored.sha256 / stored.name

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "description": self.description, "created": self.created,
                "files": {role: {"sha256": f.sha256, "name": f.name, "bytes": f.bytes} for role, f in self.files.items()},
                "facts": self.facts}


class VoiceStore:
    """Imported voices under ``data_dir/voices``."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir).expanduser() / "voices"

    # -- reading ----------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json"))

    def get(self, name: str) -> StoredVoice:
        path = self.root / f"{name}.json"
        if not NAME_RE.match(name) or not path.is_file():
            raise UnknownVoice(name, self.names())
        try:
            record = json.loads(path.read_text())
            files = {role: StoredFile(**f) for role, f in record["files"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"voice record {path} is unreadable: {exc}") from None
        return StoredVoice(record["name"], record["kind"], files, record.get("facts", {}),
                           record.get("description", ""), record.get("created", 0.0), self.root)

    def list(self) -> list[StoredVoice]:
        return [self.get(name) for name in self.names()]

    def verify(self, name: str) -> None:
        """Recompute every file's sha256; ModelLoadError if one is missing or changed."""
        voice = self.get(name)
        for role, stored in voice.files.items():
            path = voice.path(role)
            if path is None or not path.exists():
                raise ModelLoadError(f"voice {name!r}: {role} file {path} is missing from the store")
            if sha256_of(path) != stored.sha256:
                raise ModelLoadError(f"voice {name!r}: {role} file {path} changed since import (sha256 mismatch)")

    def shared_file(self, role: str) -> Path | None:
        """The most recently imported file of ``role`` (e.g. the content encoder other voices use)."""
        newest: tuple[float, Path] | None = None
        for voice in self.list():
            path = voice.path(role)
            if path is not None and path.exists() and (newest is None or voice.created > newest[0]):
                newest = (voice.created, path)
        return newest[1] if newest else None

    # -- writing ----------------------------------------------------------------------------------------

    def add(self, name: str, kind: str, files: dict[str, Path], *, facts: dict | None = None, description: str = "",
            replace: bool = False) -> StoredVoice:
        """Copy ``files`` (role -> path) in (each content once) and write the record. Validate first."""
        if not NAME_RE.match(name):
            raise ParamError(f"voice name {name!r} must be 1-64 of a-z 0-9 _ . - and start with a letter or digit")
        if (self.root / f"{name}.json").exists() and not replace:
            raise ParamError(f"voice {name!r} already exists (use --replace to overwrite it)")
        unknown = set(files) - set(FILE_ROLES)
        if unknown:
            raise ParamError(f"unknown file roles {sorted(unknown)}")
        (self.root / "files").mkdir(parents=True, exist_ok=True)
        stored = {}
        for role, source in files.items():
            source = Path(source)
            if not source.exists():
                raise ModelLoadError(f"{role} file not found: {source}")
            digest = sha256_of(source)
            target_dir = self.root / "files" / digest
            target = target_dir / source.name
            if not target.exists():
                self._copy_in(source, target_dir, source.name)
            size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) if source.is_dir() \
                else source.stat().st_size
            stored[role] = StoredFile(digest, source.name, size)
        voice = StoredVoice(name, kind, stored, dict(facts or {}), description, time.time(), self.root)
        self._write_json(self.root / f"{name}.json", voice.to_json())
        return voice

    def remove(self, name: str) -> None:
        """Delete a voice's record, and its files unless another voice uses them."""
        voice = self.get(name)
        (self.root / f"{name}.json").unlink()
        still_used = {f.sha256 for other in self.list() for f in other.files.values()}
        for stored in voice.files.values():
            if stored.sha256 not in still_used:
                shutil.rmtree(self.root / "files" / stored.sha256, ignore_errors=True)

    def _copy_in(self, source: Path, target_dir: Path, filename: str) -> None:
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root / "files"))
        try:
            if source.is_dir():
                shutil.copytree(source, staging / filename)
            else:
                shutil.copy2(source, staging / filename)
            os.replace(staging, target_dir)  # atomic: a half-copied file never appears under its digest
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (target_dir / filename).exists():
                raise

    @staticmethod
    def _write_json(path: Path, record: dict) -> None:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, path)


SHARED_ROLES = ("content", "pitch_model")  # the content encoder and pitch model serve every voice: never erased


def voice_files(data_dir: Path, name: str) -> list[Path]:
    """Everything in the voice store derived from voice ``name``: its record, model and index (unless another
    voice shares the same file) and its ONNX export. The shared content encoder and pitch model are kept."""
    store = VoiceStore(data_dir)
    record_path = store.root / f"{name}.json"
    if not record_path.is_file():
        return []
    record = store.get(name)
    others = {f.sha256 for other in store.list() if other.name != name for f in other.files.values()}
    paths: list[Path] = [record_path]
    for role, stored in record.files.items():
        if role not in SHARED_ROLES and stored.sha256 not in others:
            paths.append(store.root / "files" / stored.sha256)
            paths.append(store.root / "onnx" / f"{stored.sha256}.synth.onnx")
    return [p for p in paths if p.exists() or p.is_symlink()]
