"""The server's Ed25519 audit key: signs checkpoints of the audit chain.

The private key lives in the data dir as PKCS#8 PEM with mode 0600; the public key is written beside it
(``.pub``, also PEM) so auditors can check checkpoints without the private key.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rtvc.governance.errors import StoreError

__all__ = ["KEY_FILENAME", "AuditSigner", "verify_signature"]

KEY_FILENAME = "audit-signing.key"


class AuditSigner:
    """An Ed25519 key pair; ``public_hex`` names it in every checkpoint."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex = raw.hex()

    @classmethod
    def load_or_create(cls, data_dir: str | os.PathLike[str]) -> AuditSigner:
        """Read ``data_dir/audit-signing.key``; create it (0600, atomically) if absent."""
        path = Path(data_dir) / KEY_FILENAME
        if not path.exists():
            _create(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)  # a key others could read is tightened, never used as is
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{path}: not a readable Ed25519 private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise StoreError(f"{path}: holds a {type(key).__name__}, expected an Ed25519 private key")
        return cls(key)

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


def _create(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic and exclusive: a process racing us keeps its key, we read it
        except FileExistsError:
            return
    finally:
        os.unlink(tmp)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path.with_suffix(".pub").write_bytes(public)


def verify_signature(public_hex: str, message: bytes, signature_hex: str) -> bool:
    """True when ``signature_hex`` is a valid Ed25519 signature of ``message`` by ``public_hex``."""
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        public.verify(bytes.fromhex(signature_hex), message)
    except (ValueError, InvalidSignature):
        return False
    return True
