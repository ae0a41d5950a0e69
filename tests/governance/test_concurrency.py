"""The server and the CLI share the database: concurrent appends never fork the chain, and a revocation
made by another process reaches this one's hooks at the next poll."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time

from rtvc.governance import LOCAL_ADMIN, GovernanceStore

ROUNDS = 25


def hammer(data_dir: str, label: str, rounds: int, barrier) -> None:
    """Append from a separate process: keys, and sessions of a built-in voice (each start + end)."""
    store = GovernanceStore.open(data_dir, checkpoint_every_rows=7)
    barrier.wait(timeout=60)  # both processes past their imports: the appends really overlap
    for n in range(rounds):
        _, key = store.keys.create("client", f"{label}-{n}")
        record = store.sessions.start(key, "feminine", "research", f"{label}-{n}".encode().hex()[-16:].rjust(16, "0"),
                                      builtin=True)
        store.sessions.end(record.session_id, converted_s=0.5, reason="client")
        time.sleep(0.01)  # a real client pauses between sessions; lets the other writer in between
    store.close()


def test_two_processes_appending_at_once_keep_one_linear_chain(tmp_path):
    data_dir = str(tmp_path / "data")
    GovernanceStore.open(data_dir).close()  # create the schema and key once, as a server would
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    workers = [spawn.Process(target=hammer, args=(data_dir, label, ROUNDS, barrier)) for label in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = GovernanceStore.open(data_dir)
    rows = store.audit.query(LOCAL_ADMIN, limit=100_000)
    assert [r.seq for r in rows] == list(range(1, 2 * 3 * ROUNDS + 1))
    names = {key.id: key.name for key in store.keys.keys()}
    writers = [names[r.client][0] for r in rows if r.event == "session.started"]
    assert sorted(writers) == ["a"] * ROUNDS + ["b"] * ROUNDS
    assert sum(x != y for x, y in zip(writers, writers[1:], strict=False)) > 1  # the two writers interleaved
    checkpoints = store.audit.checkpoints()
    assert [cp.no for cp in checkpoints] == list(range(1, len(checkpoints) + 1))
    assert [cp.seq for cp in checkpoints] == sorted(cp.seq for cp in checkpoints)
    report = store.verify_audit(LOCAL_ADMIN)
    assert report.ok, report.problems
    assert report.sealed_seq >= report.last_seq - 7
    store.close()


def test_revocation_by_another_process_fires_the_hook_at_the_next_poll(store, people, voice):
    grant = store.grants.create(people.owner, voice, statement="ok", purposes=["live_streaming"], clients="any")
    store.sessions.start(people.client, voice, "live_streaming", 5)
    seen = []
    store.on_revoke(seen.append)
    assert store.poll() == []
    script = ("import sys; from rtvc.governance import GovernanceStore, LOCAL_ADMIN; "
              "s = GovernanceStore.open(sys.argv[1]); s.grants.revoke(LOCAL_ADMIN, sys.argv[2]); s.close()")
    done = subprocess.run([sys.executable, "-c", script, str(store.data_dir), grant.grant_id], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert seen == []  # nothing happens here until the poll
    assert store.poll() == [("grant.revoked", grant.grant_id)]
    assert seen == [grant.grant_id]
    assert store.poll() == [] and seen == [grant.grant_id]
    assert [s.grant_id for s in store.sessions.live(grant_id=grant.grant_id)] == [grant.grant_id]  # server ends it
