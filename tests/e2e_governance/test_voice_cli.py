"""`rtvc keys create --role owner`, `rtvc voices import --owner` and `rtvc voices erase` on a real database,
through rtvc's real main() in this process."""

from __future__ import annotations

import json

import torch

from rtvc import cli as rtvc_cli
from rtvc.governance import LOCAL_ADMIN, GovernanceStore
from rtvc.voices.rvc.synthetic import (
    random_hubert_weights,
    tiny_hubert_config,
    write_fairseq_checkpoint,
    write_random_pth,
)
from rtvc.voices.store import voice_files

torch.set_num_threads(1)


def test_import_with_an_owner_then_erase(tmp_path, capsys):
    data = str(tmp_path / "data")
    model, content = tmp_path / "zoe.pth", tmp_path / "hubert_base.pt"
    write_random_pth(model, version="v2", sr="40k", seed=5)
    cfg = tiny_hubert_config("v2")
    write_fairseq_checkpoint(content, cfg, random_hubert_weights(cfg, seed=6))

    assert rtvc_cli.main(["keys", "create", "--role", "owner", "--name", "zoe", "--json", "--data-dir", data]) == 0
    owner = json.loads(capsys.readouterr().out)
    assert rtvc_cli.main(["keys", "create", "--role", "client", "--json", "--data-dir", data]) == 0
    client = json.loads(capsys.readouterr().out)
    # a key that is not an owner is refused before anything is copied
    base = ["voices", "import", "zoe", "--data-dir", data, "--model", str(model), "--content", str(content)]
    assert rtvc_cli.main([*base, "--owner", client["id"]]) == 2
    assert "role 'owner'" in capsys.readouterr().err and voice_files(tmp_path / "data", "zoe") == []

    assert rtvc_cli.main([*base, "--owner", owner["id"]]) == 0
    capsys.readouterr()
    files = voice_files(tmp_path / "data", "zoe")
    assert len(files) == 2  # the record and the model; the content encoder is shared, never erased
    gov = GovernanceStore.open(data)
    try:
        assert gov.voices.get("zoe").owner == owner["id"]
        gov.grants.create(LOCAL_ADMIN, "zoe", statement="Zoe agrees.", purposes=["research"])
    finally:
        gov.close()

    assert rtvc_cli.main(["voices", "erase", "zoe", "--json", "--data-dir", data]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files_removed"] >= 2 and len(report["grants_revoked"]) == 1 and report["leftovers"] == []
    assert report["servers"] == [] and report["files_left"] == []  # no server runs here: nothing else to confirm
    assert not any(path.exists() for path in files)
    assert (tmp_path / "data" / "voices" / "files").is_dir() and any((tmp_path / "data" / "voices" / "files").iterdir())
    gov = GovernanceStore.open(data)
    try:
        assert gov.voices.get("zoe").erased
        assert [row.event for row in gov.audit.query(LOCAL_ADMIN, voice="zoe")][-2:] == ["grant.revoked", "voice.erased"]
        assert gov.verify_audit(LOCAL_ADMIN).ok
    finally:
        gov.close()
    assert rtvc_cli.main(["voices", "erase", "builtin-feminine", "--data-dir", data]) == 2
