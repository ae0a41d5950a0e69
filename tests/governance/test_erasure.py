"""Erasing a voice deletes every derived file, unloads it, revokes its grants and records the event."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import soundfile as sf

from rtvc.governance import LOCAL_ADMIN, ErasureIncomplete, Forbidden, GrantRevoked, InvalidInput, NoConsent

from .conftest import counts


def statement_wav() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(1600, dtype=np.float32), 16000, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def derived(store, voice, tmp_path):
    """Files a real import would leave: weights and index in the voice store, cached features, a temp file."""
    model_dir = store.data_dir / "voices" / voice
    (model_dir / "cache").mkdir(parents=True)
    (model_dir / "model.pth").write_bytes(b"w" * 1000)
    (model_dir / "added.index").write_bytes(b"i" * 500)
    (model_dir / "cache" / "features.npy").write_bytes(b"f" * 200)
    conversions = store.data_dir / "conversions" / f"{voice}-take1.wav"
    conversions.parent.mkdir()
    conversions.write_bytes(b"c" * 300)
    return [model_dir, conversions]


def test_erasure_deletes_files_unloads_and_is_audited(store, people, voice, derived):
    grant = store.grants.create(people.owner, voice, statement="ok", purposes=["dubbing"], clients="any",
                                statement_audio=statement_wav())
    loaded = {voice}
    revoked = []
    store.on_revoke(revoked.append)
    store.eraser.register_unloader(loaded.discard, lambda name: name in loaded)
    report = store.eraser.erase(people.owner, voice, derived)
    assert report.verified and report.files_removed == 5 and report.bytes_removed == 2000 + len(statement_wav())
    assert not any(os.path.lexists(p) for p in derived) and not loaded
    assert list((store.data_dir / "consent-statements").iterdir()) == []
    assert report.grants_revoked == [grant.grant_id] and revoked == [grant.grant_id]
    assert store.voices.get(voice).erased
    with pytest.raises(NoConsent, match="erased"):
        store.grants.check(voice, "dubbing", people.client)
    event = store.audit.query(people.auditor, event="voice.erased")[-1]
    assert event.voice == voice and event.data["verified"] is True and event.data["files_removed"] == 5
    assert store.grants.get(LOCAL_ADMIN, grant.grant_id).audio_sha256  # the hash outlives the audio
    assert store.verify_audit(LOCAL_ADMIN).ok  # erasure never breaks the chain


def test_symlinks_are_removed_not_followed(store, people, voice, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    link = store.data_dir / "voices-link"
    link.symlink_to(outside)
    report = store.eraser.erase(LOCAL_ADMIN, voice, [link])
    assert report.files_removed == 1 and not os.path.lexists(link) and outside.read_text() == "keep me"


def test_paths_outside_the_data_dir_are_refused_before_anything_changes(store, people, voice, tmp_path):
    store.grants.create(people.owner, voice, statement="ok", purposes=["dubbing"], clients="any")
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("not the voice's")
    before = counts(store)
    for bad in ([victim], [store.data_dir], ["/"], [123], [store.db.path], [store.data_dir / "audit-signing.key"]):
        with pytest.raises(InvalidInput):
            store.eraser.erase(LOCAL_ADMIN, voice, bad)
    assert victim.exists() and counts(store) == before
    assert store.grants.check(voice, "dubbing", people.client)


def test_something_left_loaded_fails_erasure_and_is_recorded(store, people, voice, derived):
    store.eraser.register_unloader(lambda name: None, lambda name: True)  # an engine that cannot let go
    with pytest.raises(ErasureIncomplete) as failed:
        store.eraser.erase(LOCAL_ADMIN, voice, derived)
    assert "still loaded" in failed.value.leftovers[0]
    assert not store.voices.get(voice).erased  # not claimed as erased
    assert store.audit.query(LOCAL_ADMIN, event="voice.erased")[-1].data["verified"] is False


def test_only_owner_or_admin_may_erase(store, people, voice, derived):
    for actor in (people.client, people.auditor, people.other_owner):
        with pytest.raises(Forbidden):
            store.eraser.erase(actor, voice, derived)
    assert all(p.exists() for p in derived)


def test_revoking_the_last_grant_erases_the_voice(store, people, voice, derived):
    store.eraser.register_paths(lambda name: [store.data_dir / "voices" / name])
    first = store.grants.create(people.owner, voice, statement="ok", purposes=["dubbing"], clients="any")
    second = store.grants.create(people.owner, voice, statement="ok", purposes=["research"], clients="any")
    erased = []
    store.on_erase(erased.append)
    assert store.revoke_grant(people.owner, first.grant_id)["erasure"] is None  # one grant remains
    assert derived[0].exists()
    result = store.revoke_grant(people.owner, second.grant_id, paths=[derived[1]])
    assert result["erasure"].verified and erased == [voice]
    assert not derived[0].exists() and not derived[1].exists()
    with pytest.raises(NoConsent):
        store.grants.check(voice, "research", people.client)


def test_erasure_by_another_process_reaches_this_process_unloaders(store, people, voice, tmp_path):
    other = type(store).open(store.data_dir)
    unloaded = []
    store.on_erase(unloaded.append)
    other.eraser.erase(LOCAL_ADMIN, voice)
    other.close()
    assert ("voice.erased", voice) in store.poll() and unloaded == [voice]


def test_reimported_voice_needs_a_new_grant(store, people, voice):
    old = store.grants.create(people.owner, voice, statement="ok", purposes=["dubbing"], clients="any")
    store.eraser.erase(LOCAL_ADMIN, voice)
    store.voices.register(LOCAL_ADMIN, voice, people.owner.id)
    with pytest.raises(GrantRevoked) as refused:
        store.grants.check(voice, "dubbing", people.client)
    assert refused.value.grant_id == old.grant_id


def test_a_voice_erased_imported_and_erased_again_fires_both_times(store, people, voice):
    erased = []
    store.on_erase(erased.append)
    store.eraser.erase(LOCAL_ADMIN, voice)
    store.voices.register(LOCAL_ADMIN, voice, people.owner.id)
    store.eraser.erase(LOCAL_ADMIN, voice)
    assert erased == [voice, voice] and store.poll() == []  # the poll sees both rows, already handled here
