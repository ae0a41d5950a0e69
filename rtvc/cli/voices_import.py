"""``rtvc voices import`` and ``export-onnx``: bring RVC models into the voice store (``erase`` is in
:mod:`rtvc.cli.voices_erase`).

An imported voice is owned (``--owner KEY_ID``, a key with role owner): it is recorded in the governance
database and streams only under its owner's consent grants. A running server picks it up within a poll
interval, no restart needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtvc.cli.common import add_common, config_from_args, data_dir_from
from rtvc.errors import ModelLoadError
from rtvc.governance import LOCAL_ADMIN, GovernanceStore, InvalidInput
from rtvc.voices.store import VoiceStore

__all__ = ["register_import"]


def register_import(voices_subparsers: argparse._SubParsersAction) -> None:
    """Add ``import`` and ``export-onnx`` under ``rtvc voices``."""
    imp = voices_subparsers.add_parser("import", help="validate an RVC model and copy it into the voice store")
    add_common(imp)
    imp.add_argument("name", help="voice id (a-z 0-9 _ . -)")
    imp.add_argument("--model", type=Path, required=True,
                     help="WebUI inference .pth, or an ONNX synthesizer export (RVC WebUI, w-okada, deiteris)")
    imp.add_argument("--sample-rate", type=int, choices=(32000, 40000, 48000),
                     help="model rate in Hz, for ONNX exports that do not record it (RVC WebUI's)")
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
                            index=args.index, replace=args.replace, description=args.description,
                            sample_rate=args.sample_rate)
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
    if "onnx_format" in record.facts:
        raise ModelLoadError(f"voice {record.name!r} is an ONNX export already; it runs on onnxruntime as imported")
    model = RvcModel.load(record.path("model"), content=record.path("content"), device="cpu")
    synth, content = export_voice(model, store.root, record.files["model"].sha256, record.files["content"].sha256)
    print(f"exported {record.name}: {synth} and {content}")
    return 0
