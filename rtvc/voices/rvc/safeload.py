"""Read PyTorch checkpoint files without executing anything they contain.

Plain state dicts and RVC ``.pth`` files load with ``torch.load(weights_only=True)``.
fairseq checkpoints (``hubert_base.pt``, ContentVec) also pickle configuration
objects (``argparse.Namespace``, omegaconf nodes, fairseq ``Dictionary``) that the
weights-only loader refuses; those are reread with :class:`RestrictedUnpickler`,
which admits tensors and plain containers, turns classes from a short list of
config-carrying packages into inert :class:`Opaque` records (never importing or
calling them), and refuses every other global. :func:`to_plain` turns such records
back into dicts and lists so the caller can read the values it needs.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from rtvc.errors import ModelLoadError

__all__ = ["Opaque", "RestrictedUnpickler", "check_state_dict", "load_torch_file", "to_plain"]

# Globals the restricted unpickler hands out as the real object: containers and tensor rebuilders only.
_ALLOWED: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "collections.defaultdict": collections.defaultdict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.slice": slice,
    "builtins.complex": complex,
    "builtins.bytearray": bytearray,
    "_codecs.encode": lambda text, encoding="latin1": str(text).encode(str(encoding)),
    "torch._utils._rebuild_tensor": torch._utils._rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": torch._utils._rebuild_parameter_with_state,
    "torch.Size": torch.Size,
    "torch.device": torch.device,
}
_ALLOWED.update({f"torch.{name}": getattr(torch, name) for name in (
    "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool")})

# Packages whose pickled objects are configuration records: kept as inert Opaque records.
_INERT_PACKAGES = ("fairseq", "omegaconf", "argparse", "numpy", "enum", "typing", "pathlib", "hydra", "dataclasses")


class Opaque:
    """An inert record standing for a pickled object whose class is never imported.

    ``qualname`` is the pickled ``module.name``; ``args`` the constructor arguments
    and ``state`` whatever the pickle set as state.
    """

    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Opaque:
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict subclasses pickle their items this way
        if not isinstance(self.state, dict):
            self.state = {}
        self.state[key] = value

    def append(self, value: Any) -> None:  # list subclasses
        self.args = (*self.args, value)

    def __repr__(self) -> str:
        return f"<opaque {self.qualname}>"


_OPAQUE_TYPES: dict[str, type[Opaque]] = {}


def _opaque_type(qualname: str) -> type[Opaque]:
    if qualname not in _OPAQUE_TYPES:
        _OPAQUE_TYPES[qualname] = type("Opaque", (Opaque,), {"qualname": qualname})
    return _OPAQUE_TYPES[qualname]


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> Opaque:
    """Stand-in for ``copyreg._reconstructor`` (protocol 0/1 pickles): only builds Opaque records."""
    if isinstance(cls, type) and issubclass(cls, Opaque):
        return cls()
    raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that never imports or calls anything outside a fixed allowlist."""

    def find_class(self, module: str, name: str) -> Any:
        qualname = f"{module}.{name}"
        if qualname in _ALLOWED:
            return _ALLOWED[qualname]
        if qualname == "copyreg._reconstructor":
            return _safe_reconstructor
        if module.split(".")[0] in _INERT_PACKAGES:
            return _opaque_type(qualname)
        raise pickle.UnpicklingError(f"refusing global {qualname} (not a tensor, container or known config record)")


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


# torch.load wants a module-like object with Unpickler and load.
_RESTRICTED_PICKLE = SimpleNamespace(Unpickler=RestrictedUnpickler, load=_restricted_load, __name__="rtvc_restricted")


def load_torch_file(path: str | Path, *, what: str) -> Any:
    """Load a ``torch.save`` file on the CPU without executing code from it.

    Parameters
    ----------
    path : path of the file
    what : str
        What the file should be ("RVC model", "content encoder"); used in error messages.

    Raises
    ------
    ModelLoadError
        Missing, unreadable, truncated or corrupt file, or one that needs code to load.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{what} file not found: {path}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{what} file {path} is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_error = exc  # most often: a config object the weights-only loader refuses
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError) as exc:
        raise ModelLoadError(f"{what} file {path} is truncated or corrupt: {_short(exc)}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if "refusing" in message:
            raise ModelLoadError(f"{what} file {path} needs code to load, refused: {_short(exc)}") from None
        raise ModelLoadError(f"{what} file {path} is truncated or corrupt: {_short(first_error)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError,
            TypeError, AttributeError) as exc:
        raise ModelLoadError(f"{what} file {path} is truncated or corrupt: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def to_plain(obj: Any, *, depth: int = 0) -> Any:
    """Turn Opaque records (argparse, omegaconf, enum values) into plain dicts, lists and values."""
    if depth > 50:
        return None
    if isinstance(obj, Opaque):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        if isinstance(state, dict):
            if "_content" in state:  # omegaconf DictConfig / ListConfig
                return to_plain(state["_content"], depth=depth + 1)
            if "_val" in state:  # omegaconf value node
                return to_plain(state["_val"], depth=depth + 1)
            return {k: to_plain(v, depth=depth + 1) for k, v in state.items() if k not in ("_parent", "_metadata")}
        if len(obj.args) == 1:
            return to_plain(obj.args[0], depth=depth + 1)
        return [to_plain(a, depth=depth + 1) for a in obj.args] or None
    if isinstance(obj, dict):
        return {k: to_plain(v, depth=depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v, depth=depth + 1) for v in obj]
    return obj


def check_state_dict(weights: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], *, source: str,
                     what: str) -> None:
    """Raise ModelLoadError naming ``source`` unless ``weights`` holds exactly the ``expected`` tensor names and
    shapes (``what`` the file should be, for the message), all of them finite."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [f"{k} is {list(weights[k].shape)}, expected {list(expected[k])}"
             for k in expected if k in weights and tuple(weights[k].shape) != expected[k]]
    problems = [f"{label} {', '.join(names[:4])}{f' and {len(names) - 4} more' if len(names) > 4 else ''}"
                for label, names in (("missing", missing), ("unexpected", unexpected)) if names]
    problems += wrong[:3] + ([f"{len(wrong) - 3} more shape mismatches"] if len(wrong) > 3 else [])
    if problems:
        raise ModelLoadError(f"{source} does not match {what}: " + "; ".join(problems))
    bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelLoadError(f"{source}: non-finite values in {', '.join(bad[:4])} (corrupt file)")
