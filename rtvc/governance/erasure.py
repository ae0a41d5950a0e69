"""Erasing a voice: revoke its grants, delete every derived file, unload it from memory, verify, audit.

Derived files (model weights, index, cached features or embeddings, stored conversions, temp files) are
named by the caller and by registered path providers (the voice store registers one); the owner's recorded
consent statements go too (they are recordings of the person's voice), their sha256 stays in the grant and
the audit log. Only paths under the allowed roots (the data dir by default: keep temp files there too) are
touched, never the governance database, the audit key or the checkpoint file; symlinks are removed, never
followed. Files go before the unloaders run, so nothing can load the voice again from the store once it has
been dropped. In-memory copies are dropped by registered unloaders, each with an optional ``is_loaded`` probe
used to verify. The ``voice.erased`` audit row records counts and the verdict, no paths or names of files.

A server that holds voices in memory answers every erasure (its own, or one another process made, noticed
by polling) with a ``voice.unloaded`` row (:meth:`Eraser.record_unloaded`): how many engine processes it
asked, how many still hold the voice.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtvc.governance.audit import AuditLog
from rtvc.governance.db import Database
from rtvc.governance.errors import ErasureIncomplete, InvalidInput
from rtvc.governance.grants import GrantStore
from rtvc.governance.hooks import Hooks
from rtvc.governance.roles import KeyInfo
from rtvc.governance.validate import check_name, check_text, now_iso
from rtvc.governance.voices import VoiceLedger

__all__ = ["ERASURE_REVOKE_REASON", "ErasureReport", "Eraser"]

MAX_PATHS = 1000
ERASURE_REVOKE_REASON = "voice erased"  # grants revoked by an erasure say so: nobody else starts another one
PathProvider = Callable[[str], Iterable["str | os.PathLike[str]"]]


@dataclass(frozen=True, slots=True)
class ErasureReport:
    voice: str
    files_removed: int
    bytes_removed: int
    grants_revoked: list[str]
    unloaders_run: int
    leftovers: list[str] = field(default_factory=list)
    audit_seq: int = 0  # the voice.erased row: confirmations of unloads by servers come after it

    @property
    def verified(self) -> bool:
        return not self.leftovers

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verified": self.verified}


@dataclass(frozen=True, slots=True)
class _Unloader:
    unload: Callable[[str], object]
    is_loaded: Callable[[str], bool] | None


class Eraser:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        voices: VoiceLedger,
        grants: GrantStore,
        *,
        allowed_roots: Iterable[str | os.PathLike[str]],
        protected: Iterable[str | os.PathLike[str]] = (),
    ) -> None:
        self.db = db
        self.audit = audit
        self.voices = voices
        self.grants = grants
        self.allowed_roots = [Path(root).resolve() for root in allowed_roots]
        self.protected = [Path(path).resolve() for path in protected]
        self.erased = Hooks("voice erased")
        self._providers: list[PathProvider] = []
        self._unloaders: list[_Unloader] = []

    def register_paths(self, provider: PathProvider) -> None:
        """``provider(voice) -> paths``: files or directories derived from the voice (called at erasure)."""
        if not callable(provider):
            raise TypeError("path provider must be callable")
        self._providers.append(provider)

    def register_unloader(self, unload: Callable[[str], object], is_loaded: Callable[[str], bool] | None = None) -> None:
        """``unload(voice)`` drops in-memory copies (engine caches); ``is_loaded(voice)`` verifies it."""
        if not callable(unload) or (is_loaded is not None and not callable(is_loaded)):
            raise TypeError("unload and is_loaded must be callable")
        self._unloaders.append(_Unloader(unload, is_loaded))

    def erase(self, actor: KeyInfo, voice: str, paths: Iterable[str | os.PathLike[str]] = (), *,
              reason: str = "requested") -> ErasureReport:
        """Erase ``voice`` (its owner or an admin). Raises :class:`ErasureIncomplete` if anything survived.

        Paths are checked before anything happens; a path outside the allowed roots is refused. Order: grants
        revoked (live sessions end), files deleted, unloaders run, then everything verified and audited.
        """
        record = self.voices.get(voice)
        actor = self.voices.require_owner_or_admin(actor, record, "erase it")
        reason = check_text(reason, "reason", max_chars=64)
        targets = self._targets(check_name(voice, "voice"), paths)

        revoked = [g.grant_id for g in self.grants.list(actor, voice=voice) if g.revoked_at is None]
        for grant_id in revoked:  # fires on_revoke: live sessions end before the files go
            self.grants.revoke(actor, grant_id, reason=ERASURE_REVOKE_REASON)
        files, size = 0, 0
        for path in targets:
            removed = _remove(path)
            files += removed[0]
            size += removed[1]
        leftovers: list[str] = []
        for unloader in self._unloaders:  # after the files: a reload from the store finds nothing now
            try:
                unloader.unload(voice)
            except Exception as exc:
                leftovers.append(f"unloader {unloader.unload!r} failed: {exc}")
        leftovers += [str(p) for p in targets if os.path.lexists(p)]
        for unloader in self._unloaders:
            if unloader.is_loaded is not None and unloader.is_loaded(voice):
                leftovers.append(f"still loaded according to {unloader.is_loaded!r}")
        verified = not leftovers
        with self.db.write() as conn:
            if verified:
                conn.execute("UPDATE voices SET erased_at = ? WHERE name = ?", (now_iso(), voice))
                conn.execute("UPDATE grants SET audio_path = NULL WHERE voice = ?", (voice,))
            row = self.audit.append(conn, "voice.erased", actor=actor.id, voice=voice, data={
                "reason": reason, "files_removed": files, "bytes_removed": size, "grants_revoked": revoked,
                "unloaders_run": len(self._unloaders), "verified": verified, "leftovers": len(leftovers)})
        report = ErasureReport(voice, files, size, revoked, len(self._unloaders), leftovers, row.seq)
        if not report.verified:
            raise ErasureIncomplete(f"erasure of voice {voice!r} left {len(leftovers)} thing(s): "
                                    + "; ".join(leftovers[:5]), leftovers)
        self.erased.fire(voice, key=f"{voice}@{row.seq}")  # a voice re-imported and erased again fires again
        return report

    def record_unloaded(self, actor: KeyInfo, voice: str, *, server: str, processes: int, answered: int,
                        still_loaded: int, sessions_closed: int = 0) -> int:
        """Audit that ``server`` dropped ``voice`` from memory after an erasure: it asked ``processes`` engine
        processes, ``answered`` replied, ``still_loaded`` places (processes, or the server itself) still hold it.
        Returns the row's number."""
        voice = check_name(voice, "voice")
        counts = {"processes": processes, "answered": answered, "still_loaded": still_loaded,
                  "sessions_closed": sessions_closed}
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in counts.values()):
            raise InvalidInput(f"unload counts must be non-negative integers, got {counts}")
        verified = answered == processes and still_loaded == 0
        with self.db.write() as conn:
            row = self.audit.append(conn, "voice.unloaded", actor=actor.id, voice=voice,
                                    data={"server": check_name(server, "server"), **counts, "verified": verified})
        return row.seq

    def _targets(self, voice: str, paths: Iterable[Any]) -> list[Path]:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        candidates = list(paths)
        for provider in self._providers:
            candidates += list(provider(voice))
        candidates += self.grants.statement_audio_paths(voice)
        if len(candidates) > MAX_PATHS:
            raise InvalidInput(f"erasure names {len(candidates)} paths; at most {MAX_PATHS}")
        targets: list[Path] = []
        for candidate in candidates:
            if not isinstance(candidate, (str, os.PathLike)):
                raise InvalidInput(f"erasure paths must be strings or paths, got {type(candidate).__name__}")
            path = Path(candidate).expanduser().absolute()
            where = path.parent.resolve() / path.name  # resolve the parent only: a final symlink is removed, not followed
            if not any(where.is_relative_to(root) and where != root for root in self.allowed_roots):
                raise InvalidInput(f"refusing to erase {where}: outside {', '.join(map(str, self.allowed_roots))}")
            if any(keep == where or keep.is_relative_to(where) for keep in self.protected):
                raise InvalidInput(f"refusing to erase {where}: it is or holds the governance database or audit key")
            targets.append(where)
        return targets


def _remove(path: Path) -> tuple[int, int]:
    """Delete a file, link or tree; returns (files removed, bytes removed)."""
    if path.is_symlink() or path.is_file():
        size = path.lstat().st_size
        path.unlink(missing_ok=True)
        return 1, size
    if path.is_dir():
        files, size = 0, 0
        for root, _dirs, names in os.walk(path):
            for name in names:
                files += 1
                size += os.lstat(os.path.join(root, name)).st_size
        shutil.rmtree(path, ignore_errors=True)
        return files, size
    return 0, 0
