"""``rtvc voices import``, ``export-onnx`` and ``erase``: bring RVC models into the voice store, and out again.

An imported voice is owned (``--owner KEY_ID``, a key with role owner): it is recorded in the governance
database and streams only under its owner's consent grants. ``erase`` deletes everything derived from a voice
and records the erasure in the audit log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rtvc.cli.common import add_common, config_from_args, data_dir_from
from rtvc.governance import LOCAL_ADMIN, GovernanceStore, InvalidInput
from rtvc.server.governance import voice_files
from rtvc.voices.store import VoiceStore

__all__ = ["register_import"]


def register_import(voices_subparsers: argparse._SubParsersAction) -> None:
    """Add ``import`` and ``export-onnx`` under ``rtvc voices``."""
    imp = voices_subparsers.add_parser("import", help="validate an RVC model and copy it into the voice store")
    add_common(imp)
    imp.add_argument("name", help="voice id (a-z 0-9 _ . -)")
    imp.add_argument("--model", type=Path, required=True, help="WebUI inference .pth")
    imp.add_argument("--index", type=Path, help="retrieval index (added_*.index)")
    imp.add_argument("--content", type=Path,
                     help="content encoder: hubert_base.pt, checkpoint_best_legacy_500.pt or a Hugging Face folder "
                          "(default: the one already in the store)")
    imp.add_argument("--pitch-model", type=Path, help="rmvpe.pt (default: the store's, else the weight-free tracker)")
    imp.add_argument("--description", default="", help="shown in `rtvc voices`")
    imp.add_argument("--replace", action="store_true", help="overwrite a voice of the same name")
    imp.add_argument("--owner", metavar="KEY_ID",
                     help="the voice's owner: id of a key with role owner (`rtvc keys create --role owner`). "
                          "Without an owner the voice cannot stream on a server (no one can grant consent)")
    imp.set_defaults(func=import_voice)

    erase = voices_subparsers.add_parser("erase", help="delete everything derived from a voice and audit it")
    add_common(erase)
    erase.add_argument("name", help="voice id")
    erase.add_argument("--reason", default="requested", help="why (at most 64 characters, audited)")
    erase.add_argument("--json", action="store_true", help="machine-readable report")
    erase.set_defaults(func=erase_voice)

    exp = voices_subparsers.add_parser("export-onnx", help="export an imported voice for the onnxruntime backend")
    add_common(exp)
    exp.add_argument("name", help="voice id")
    exp.set_defaults(func=export_onnx)


def import_voice(args: argparse.Namespace) -> int:
    from rtvc.voices.rvc.library import import_rvc

    data_dir = data_dir_from(config_from_args(args))
    store = VoiceStore(data_dir)
    gov = GovernanceStore.open(data_dir)
    try:
        if args.owner is not None:  # a wrong owner is refused before any file is copied
            owner = gov.keys.get(args.owner)
            if owner.role != "owner" or not owner.active:
                raise InvalidInput(f"--owner {args.owner} must be a live key with role 'owner', not {owner.role!r}")
        record = import_rvc(store, args.name, model=args.model, content=args.content, pitch_model=args.pitch_model,
                            index=args.index, replace=args.replace, description=args.description)
        if args.owner is not None:
            try:
                gov.voices.register(LOCAL_ADMIN, record.name, args.owner, model_sha256=record.files["model"].sha256)
            except BaseException:
                store.remove(record.name)  # an import the ledger refused must not linger unowned
                raise
    finally:
        gov.close()
    if args.owner is None:
        print(f"warning: voice {record.name} has no owner; it cannot stream until imported with --owner",
              file=sys.stderr)
    facts = record.facts
    print(f"imported {record.name}: RVC {facts['version']} {facts['sample_rate']} Hz, "
          f"{'pitch' if facts['f0'] else 'no pitch'}, {facts.get('info', '')}")
    for role, stored in sorted(record.files.items()):
        print(f"  {role:<12} {stored.name}  sha256 {stored.sha256}  ({stored.bytes} bytes)")
    return 0


def export_onnx(args: argparse.Namespace) -> int:
    from rtvc.voices.rvc.model import RvcModel
    from rtvc.voices.rvc.onnx_backend import export_voice

    store = VoiceStore(data_dir_from(config_from_args(args)))
    record = store.get(args.name)
    store.verify(args.name)
    model = RvcModel.load(record.path("model"), content=record.path("content"), device="cpu")
    synth, content = export_voice(model, store.root, record.files["model"].sha256, record.files["content"].sha256)
    print(f"exported {record.name}: {synth} and {content}")
    return 0


def erase_voice(args: argparse.Namespace) -> int:
    """Erase a voice: grants revoked, files gone (verified), erasure audited; running servers unload it."""
    data_dir = data_dir_from(config_from_args(args))
    gov = GovernanceStore.open(data_dir)
    try:
        gov.eraser.register_paths(lambda name: voice_files(data_dir, name))
        if gov.voices.find(args.name) is None:
            raise InvalidInput(f"voice {args.name!r} has no owner on record: nothing to erase under governance "
                               "(built-in voices cannot be erased)")
        report = gov.eraser.erase(LOCAL_ADMIN, args.name, reason=args.reason)
    finally:
        gov.close()
    left = voice_files(data_dir, args.name)
    if left:  # the eraser verified its own list; this checks the voice store once more from scratch
        print(f"rtvc voices erase: files left: {', '.join(map(str, left))}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(f"erased {report.voice}: {report.files_removed} file(s), {report.bytes_removed} bytes, "
              f"{len(report.grants_revoked)} grant(s) revoked; verified, audited")
    return 0
