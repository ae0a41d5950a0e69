"""Server leases (who runs on this data dir now), unload confirmations, and `rtvc voices erase` waiting for them."""

from __future__ import annotations

import json
import threading
import time

import pytest

from rtvc import cli as rtvc_cli
from rtvc.governance import LOCAL_ADMIN, InvalidInput
from rtvc.governance.servers import STALE_AFTER_S, wait_for_unload

SERVER = LOCAL_ADMIN  # any admin actor; the running server writes these rows as "server"


def test_a_lease_is_live_while_it_beats_and_gone_once_stopped_or_stale(store):
    first, second = store.servers.register(), store.servers.register()
    assert [lease.server_id for lease in store.servers.live()] == [first, second]
    later = time.time() + STALE_AFTER_S + 1
    assert store.servers.live(now=later) == []  # nobody beat: both presumed dead
    store.servers.beat(first)
    assert [lease.server_id for lease in store.servers.live(now=time.time() + STALE_AFTER_S - 1)] == [first, second]
    store.servers.stop(second)
    assert [lease.server_id for lease in store.servers.live()] == [first]


def test_unload_confirmations_are_audited_and_awaited_per_server(store, people, voice):
    report = store.eraser.erase(LOCAL_ADMIN, voice)
    one, two = store.servers.register(), store.servers.register()
    store.eraser.record_unloaded(SERVER, voice, server=one, processes=2, answered=2, still_loaded=0)
    found = wait_for_unload(store.audit, voice, report.audit_seq, [one, two], timeout_s=0.2)
    assert found[one].data["verified"] is True and found[one].data["processes"] == 2 and found[two] is None

    def confirm_later() -> None:
        time.sleep(0.2)
        store.eraser.record_unloaded(SERVER, voice, server=two, processes=1, answered=0, still_loaded=1)

    threading.Thread(target=confirm_later).start()
    found = wait_for_unload(store.audit, voice, report.audit_seq, [one, two], timeout_s=5)
    assert found[two].data["verified"] is False  # an engine that did not answer is not a verified unload
    assert store.verify_audit(LOCAL_ADMIN).ok
    for bad in ({"processes": -1}, {"answered": True}, {"still_loaded": 0.5}):
        with pytest.raises(InvalidInput):
            store.eraser.record_unloaded(SERVER, voice, server=one, **{"processes": 1, "answered": 1,
                                                                       "still_loaded": 0, **bad})


def test_erase_says_plainly_when_no_server_runs_and_fails_loudly_when_one_does_not_confirm(store, people, capsys):
    data = str(store.data_dir)
    store.voices.register(LOCAL_ADMIN, "quiet", people.owner.id)
    assert rtvc_cli.main(["voices", "erase", "quiet", "--data-dir", data]) == 0
    assert "no rtvc server is running on this data dir" in capsys.readouterr().out

    store.voices.register(LOCAL_ADMIN, "held", people.owner.id)
    lease = store.servers.register()  # a server that is alive (it just beat) but never answers
    assert rtvc_cli.main(["voices", "erase", "held", "--json", "--wait-s", "0.3", "--data-dir", data]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["servers"] == [{"server_id": lease, "pid": report["servers"][0]["pid"],
                                  "host": report["servers"][0]["host"], "confirmed": False, "verified": False}]
    assert store.voices.get("held").erased  # the files are gone all the same; memory is what is unconfirmed
    assert rtvc_cli.main(["voices", "erase", "held", "--wait-s", "-1", "--data-dir", data]) == 2
