"""The server's side of governance: consent at session start, the session ledger, ending live sessions when
their grant is revoked or expires, erasing a voice's files and dropping every loaded copy, and following the
voice store while running.

    gov = ServerGovernance(GovernanceStore.open(data_dir), registry=registry, data_dir=data_dir)
    manager = SessionManager(..., governance=gov); gov.bind(manager)
    await gov.start()      # in the app's lifespan: lease, orphans closed, hooks on, poller, heartbeat, checkpoints
    await gov.stop()

Revocations made here (HTTP API) fire the hooks at once; those made by another process (``rtvc consent
revoke``) are noticed by :meth:`GovernanceStore.poll` every ``poll_interval_s``. Either way the hook hops to
the event loop and closes every live session under the grant (``session.ended`` with the reason).

Erasure reaches every copy: an erasure made here waits, inside :meth:`Eraser.erase`, until the server's
registry and every engine (threads or processes) dropped the voice and verified it, so ``verified`` covers
memory too. After any erasure (here, or by ``rtvc voices erase`` in another process, seen by polling) the
server unloads again and records a ``voice.unloaded`` audit row naming its lease, which that command waits
for. Each poll also follows the voice store, so voices imported while the server runs appear without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from pathlib import Path
from typing import Any

from rtvc.governance import GovernanceStore, KeyInfo, NotFound
from rtvc.governance.erasure import ERASURE_REVOKE_REASON
from rtvc.governance.servers import HEARTBEAT_S
from rtvc.server.voice_sync import UnloadResult, VoiceSync
from rtvc.voices.store import voice_files

__all__ = ["SERVER_ACTOR", "ServerGovernance", "voice_files"]

log = logging.getLogger(__name__)

# The server acts on its own (erasure after the last grant) as an admin; audit rows name it "server".
SERVER_ACTOR = KeyInfo(id="server", role="admin", name="rtvc-server")
UNLOAD_WAIT_S = 40.0  # an erasure waits this long for the engines (each answers within UNLOAD_TIMEOUT_S)


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
        self.voices: VoiceSync | None = None
        self.server_id: str | None = None  # this server's lease (``servers`` table), named in voice.unloaded rows
        self._ended_grants: dict[str, str] = {}  # grant id -> reason, for sessions admitted while it happened
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._pending_ends: set[asyncio.Task] = set()
        self._unhook: list[Any] = []
        store.eraser.register_paths(lambda name: voice_files(self.data_dir, name))
        store.eraser.register_unloader(self._unload_for_eraser, self.is_loaded)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The server's event loop (once started): where :meth:`confirm_unload` and the backend run."""
        return self._loop

    def bind(self, manager: Any) -> None:
        self.manager = manager
        self.voices = VoiceSync(self.registry, manager.backend)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.server_id = await asyncio.to_thread(self.store.servers.register)
        self._unhook = [
            self.store.on_revoke(lambda grant_id: self._hop(grant_id, "grant_revoked")),
            self.store.on_expire(lambda grant_id: self._hop(grant_id, "grant_expired")),
            self.store.on_erase(self._erased),
        ]
        closed = await asyncio.to_thread(self.store.sessions.close_orphans)
        if closed:
            log.warning("closed %d session(s) left open by a previous server", closed)
        self._tasks = [asyncio.create_task(self._watch(), name="rtvc-gov-watch"),
                       asyncio.create_task(self._heartbeat(), name="rtvc-gov-heartbeat"),
                       asyncio.create_task(self._checkpoints(), name="rtvc-gov-checkpoint")]

    async def stop(self) -> None:
        """After the sessions were closed: record their ends, stop polling, give up the lease, seal the audit tail."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pending_ends:
            await asyncio.gather(*self._pending_ends, return_exceptions=True)
        for remove in self._unhook:
            remove()
        with contextlib.suppress(Exception):
            if self.server_id is not None:
                await asyncio.to_thread(self.store.servers.stop, self.server_id)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.audit.checkpoint, force=False)

    async def _watch(self) -> None:
        """Changes made by other processes (revocations, erasures, expiries; the voice store) every poll."""
        while True:
            try:
                # off the loop: the database read must not hold up the streams (the hooks hop back themselves)
                await asyncio.to_thread(self.store.poll)
                if self.voices is not None:
                    self.voices.refresh()
            except Exception:  # keep watching: a missed poll must not stop every later revocation
                log.exception("governance poll failed")
            await asyncio.sleep(self.poll_interval_s)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await asyncio.to_thread(self.store.servers.beat, self.server_id)
            except Exception:
                log.exception("server heartbeat failed")

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
            grant = self.store.grants.get(SERVER_ACTOR, grant_id)
            if grant.revoke_reason == ERASURE_REVOKE_REASON:  # revoked by an erasure, which finishes the job
                return
            voice = grant.voice
            record = self.store.voices.find(voice)
            if record is None or record.erased or self.store.grants.active_count(voice) > 0:
                return
            report = self.store.eraser.erase(SERVER_ACTOR, voice, reason="last grant ended")
            log.info("voice %s erased after its last grant ended: %d file(s)", voice, report.files_removed)
        except NotFound:
            return
        except Exception:
            log.exception("erasure after grant %s ended failed", grant_id)

    def _unload_for_eraser(self, name: str) -> None:
        """Eraser's unloader (a worker thread, never the loop): drop ``name`` everywhere, wait for the engines'
        answers; raises if any copy survived, which the eraser records as a leftover."""
        if name in self.builtin:
            return
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running() or self.voices is None:
            unload = getattr(self.registry, "unload", None)  # no engine running: the registry is all there is
            if unload is None:
                self.registry.remove(name)
            elif unload(name):
                raise RuntimeError(f"voice {name!r} is still loaded in the server process")
            return
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:
                raise RuntimeError("an erasure must not run on the event loop: it waits for the engine processes")
        result = asyncio.run_coroutine_threadsafe(self.voices.unload(name), loop).result(timeout=UNLOAD_WAIT_S)
        if not result.verified:  # on the record too: voice.erased will say unverified, this row says where
            self._record_unload(name, result)
            raise RuntimeError(result.describe())

    def is_loaded(self, name: str) -> bool:
        if name in self.builtin:
            return False
        still_loaded = getattr(self.registry, "still_loaded", None)
        return name in self.registry or (still_loaded is not None and still_loaded(name))

    def _erased(self, name: str) -> None:
        """Any thread, after an erasure committed (here or elsewhere): unload everywhere and record it."""
        loop = self._loop
        if loop is None or loop.is_closed() or name in self.builtin:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the engines are gone with it
            loop.call_soon_threadsafe(self._start_confirm, name)

    def _start_confirm(self, name: str) -> None:
        task = asyncio.ensure_future(self.confirm_unload(name))
        self._pending_ends.add(task)  # awaited at stop(), before the engines stop
        task.add_done_callback(self._pending_ends.discard)

    async def confirm_unload(self, name: str) -> UnloadResult | None:
        """Event loop: drop ``name`` from the registry and every engine, verify, record ``voice.unloaded``."""
        if self.voices is None:
            return None
        result = await self.voices.unload(name)
        await asyncio.to_thread(self._record_unload, name, result)
        return result

    def _record_unload(self, name: str, result: UnloadResult) -> None:
        try:
            self.store.eraser.record_unloaded(SERVER_ACTOR, name, server=self.server_id, processes=result.processes,
                                              answered=result.answered, still_loaded=result.still_loaded,
                                              sessions_closed=result.sessions_closed)
        except Exception:
            log.exception("could not record the unload of voice %s", name)
