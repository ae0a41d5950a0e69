"""The server's side of governance: consent at session start, the session ledger, ending live sessions when
their grant is revoked or expires, and erasing a voice's files and loaded copies.

    gov = ServerGovernance(GovernanceStore.open(data_dir), registry=registry, data_dir=data_dir)
    manager = SessionManager(..., governance=gov); gov.bind(manager)
    await gov.start()      # in the app's lifespan: orphans closed, hooks on, poller and checkpoint timer running
    await gov.stop()

Revocations made here (HTTP API) fire the hooks at once; those made by another process (``rtvc consent
revoke``) are noticed by :meth:`GovernanceStore.watch` every ``poll_interval_s``. Either way the hook hops to
the event loop and closes every live session under the grant (``session.ended`` with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from pathlib import Path
from typing import Any

from rtvc.governance import GovernanceStore, KeyInfo, NotFound
from rtvc.voices.store import VoiceStore

__all__ = ["SERVER_ACTOR", "ServerGovernance", "voice_files"]

log = logging.getLogger(__name__)

# The server acts on its own (erasure after the last grant) as an admin; audit rows name it "server".
SERVER_ACTOR = KeyInfo(id="server", role="admin", name="rtvc-server")
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


class ServerGovernance:
    """Consent and ledger for one server's :class:`rtvc.session.SessionManager`.

    Parameters
    ----------
    store : GovernanceStore
    registry
        The server's voice registry (RVC voices are dropped from it when erased).
    data_dir : Path
        Where the voice store lives.
    poll_interval_s : float
        How often changes made by other processes (revocations, erasures) and expiries are looked for.
    checkpoint_interval_s : float
        How often an idle audit tail is sealed with a signed checkpoint (``force=False``: only when due).
    """

    def __init__(self, store: GovernanceStore, *, registry: Any, data_dir: Path, poll_interval_s: float = 0.2,
                 checkpoint_interval_s: float = 30.0) -> None:
        from rtvc.voices.registry import builtin_voices

        self.store = store
        self.registry = registry
        self.data_dir = Path(data_dir)
        self.poll_interval_s = float(poll_interval_s)
        self.checkpoint_interval_s = float(checkpoint_interval_s)
        self.builtin = frozenset(voice.name for voice in builtin_voices())
        self.manager: Any = None
        self._ended_grants: dict[str, str] = {}  # grant id -> reason, for sessions admitted while it happened
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._pending_ends: set[asyncio.Task] = set()
        self._unhook: list[Any] = []
        store.eraser.register_paths(lambda name: voice_files(self.data_dir, name))
        store.eraser.register_unloader(self.unload, self.is_loaded)

    def bind(self, manager: Any) -> None:
        self.manager = manager

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unhook = [
            self.store.on_revoke(lambda grant_id: self._hop(grant_id, "grant_revoked")),
            self.store.on_expire(lambda grant_id: self._hop(grant_id, "grant_expired")),
            self.store.on_erase(self.unload),
        ]
        closed = await asyncio.to_thread(self.store.sessions.close_orphans)
        if closed:
            log.warning("closed %d session(s) left open by a previous server", closed)
        self._tasks = [asyncio.create_task(self.store.watch(interval_s=self.poll_interval_s), name="rtvc-gov-watch"),
                       asyncio.create_task(self._checkpoints(), name="rtvc-gov-checkpoint")]

    async def stop(self) -> None:
        """After the sessions were closed: record their ends, stop polling, seal the audit tail."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pending_ends:
            await asyncio.gather(*self._pending_ends, return_exceptions=True)
        for remove in self._unhook:
            remove()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.audit.checkpoint, force=False)

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval_s)
            try:
                await asyncio.to_thread(self.store.audit.checkpoint, force=False)
            except Exception:
                log.exception("audit checkpoint failed")

    # -- sessions --------------------------------------------------------------------------------------

    async def admit(self, session: Any) -> None:
        """Check consent and record the session (raises the ConsentError, audited as a refusal)."""
        name = session.request.voice
        token = session.watermark_token if session.watermark_token is not None else secrets.randbits(64)
        record = await asyncio.to_thread(
            self.store.sessions.start, session.client, name, session.request.purpose, token,
            transport=session.transport, builtin=name in self.builtin, session_id=session.id)
        session.grant_id = record.grant_id
        session.recorded = True
        reason = self._ended_grants.get(record.grant_id) if record.grant_id else None
        if reason is not None:  # the grant ended while the ledger was being written
            session.close(reason=reason)

    def closed(self, session: Any) -> None:
        """Event loop: record the end of a ledgered session (off the loop; awaited at :meth:`stop`)."""
        if not session.recorded:
            return
        session.recorded = False
        end = asyncio.to_thread(self._record_end, session.id, session.converted_s(), session.end_reason or "client")
        task = asyncio.ensure_future(end)
        self._pending_ends.add(task)
        task.add_done_callback(self._pending_ends.discard)

    def _record_end(self, session_id: str, converted_s: float, reason: str) -> None:
        try:
            self.store.sessions.end(session_id, converted_s=converted_s, reason=reason[:64])
        except Exception:
            log.exception("could not record the end of session %s", session_id)

    # -- revocation, expiry, erasure -----------------------------------------------------------------------

    def _hop(self, grant_id: str, reason: str) -> None:
        """Any thread: end the grant's sessions on the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self.end_grant, grant_id, reason)

    def end_grant(self, grant_id: str, reason: str) -> int:
        """Event loop: close every live session under ``grant_id``; returns how many."""
        self._ended_grants.setdefault(grant_id, reason)
        ended = 0
        for session in self.manager.sessions() if self.manager is not None else ():
            if session.grant_id == grant_id and not session.closed.is_set():
                session.close(reason=reason)
                ended += 1
        if ended:
            log.info("grant %s %s: ended %d live session(s)", grant_id, reason.replace("_", " "), ended)
        task = asyncio.ensure_future(asyncio.to_thread(self._erase_if_last, grant_id))
        self._pending_ends.add(task)
        task.add_done_callback(self._pending_ends.discard)
        return ended

    def _erase_if_last(self, grant_id: str) -> None:
        """A voice that lost its last live or pending grant is erased (files, index, loaded copies)."""
        try:
            voice = self.store.grants.get(SERVER_ACTOR, grant_id).voice
            record = self.store.voices.find(voice)
            if record is None or record.erased or self.store.grants.active_count(voice) > 0:
                return
            report = self.store.eraser.erase(SERVER_ACTOR, voice, reason="last grant ended")
            log.info("voice %s erased after its last grant ended: %d file(s)", voice, report.files_removed)
        except NotFound:
            return
        except Exception:
            log.exception("erasure after grant %s ended failed", grant_id)

    def unload(self, name: str) -> None:
        """Drop the voice from the registry so no new session loads it; its weights go with the last reference."""
        if name not in self.builtin:
            self.registry.remove(name)

    def is_loaded(self, name: str) -> bool:
        return name not in self.builtin and name in self.registry
