"""The server secret that keys the watermark, and the keyed streams derived from it.

Every random choice of the scheme (carrier phases, which cells carry the pilot,
the interleaver, the payload tag) comes from HMAC-SHA256 / SHAKE-256 of this
secret, so the carrier is reproducible forever (no dependence on numpy's RNG
streams) and neither embedding nor decoding is possible without the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rtvc.watermark.errors import WatermarkError

__all__ = ["KEY_FILENAME", "WatermarkKey", "key_from_config"]

KEY_FILENAME = "watermark.key"


class WatermarkKey:
    """A 32-byte secret.

    Parameters
    ----------
    secret : bytes
        Exactly :attr:`SIZE` bytes of key material.
    """

    SIZE = 32

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, (bytes, bytearray)) or len(secret) != self.SIZE:
            got = f"{len(secret)} bytes" if isinstance(secret, (bytes, bytearray)) else type(secret).__name__
            raise WatermarkError(f"a watermark key is {self.SIZE} bytes, got {got}")
        self._secret = bytes(secret)

    @classmethod
    def generate(cls) -> WatermarkKey:
        return cls(os.urandom(cls.SIZE))

    @classmethod
    def from_hex(cls, text: str) -> WatermarkKey:
        """Key from 64 hex digits (the key file's content, or a config value)."""
        try:
            secret = bytes.fromhex(text.strip())
        except (ValueError, AttributeError):
            raise WatermarkError(f"a watermark key is {2 * cls.SIZE} hex digits") from None
        return cls(secret)

    def to_hex(self) -> str:
        return self._secret.hex()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WatermarkKey:
        """Read a key file; refuse one that others can read (it must be mode 0600 or stricter)."""
        path = Path(path)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise WatermarkError(f"cannot read watermark key {path}: {exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise WatermarkError(f"watermark key {path} is accessible to other users; run: chmod 600 {path}")
        try:
            return cls.from_hex(text)
        except WatermarkError as exc:
            raise WatermarkError(f"watermark key {path} is malformed: {exc}") from None

    @classmethod
    def load_or_create(cls, data_dir: str | os.PathLike[str]) -> WatermarkKey:
        """The key in ``data_dir/watermark.key``; on first start a fresh random one, written with mode 0600."""
        data_dir = Path(data_dir)
        path = data_dir / KEY_FILENAME
        if path.exists():
            return cls.load(path)
        key = cls.generate()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            tmp = data_dir / f".{KEY_FILENAME}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, (key.to_hex() + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # atomic: a concurrent first start keeps exactly one key
            except FileExistsError:
                return cls.load(path)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        except OSError as exc:
            raise WatermarkError(f"cannot create watermark key in {data_dir}: {exc}") from None
        return key

    @property
    def key_id(self) -> str:
        """A short public name for this key (8 hex digits); reveals nothing about the secret."""
        return hashlib.sha256(b"rtvc-watermark-key-id\0" + self._secret).hexdigest()[:8]

    def _subkey(self, label: str) -> bytes:
        return hmac.new(self._secret, label.encode("utf-8"), hashlib.sha256).digest()

    def stream(self, label: str, nbytes: int) -> bytes:
        """``nbytes`` pseudo-random bytes for ``label`` (SHAKE-256 of a labelled HMAC subkey)."""
        return hashlib.shake_256(self._subkey(label)).digest(nbytes)

    def uniform(self, label: str, shape: tuple[int, ...]) -> np.ndarray:
        """Keyed uniform numbers in [0, 1), float64, from 32-bit words."""
        count = int(np.prod(shape))
        words = np.frombuffer(self.stream(label, 4 * count), dtype="<u4")
        return (words.astype(np.float64) / 2.0**32).reshape(shape)

    def tag(self, message: bytes, nbytes: int) -> bytes:
        """Truncated HMAC of ``message``: the payload's integrity check."""
        return hmac.new(self._subkey("payload-tag"), message, hashlib.sha256).digest()[:nbytes]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WatermarkKey) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"WatermarkKey(id={self.key_id})"


def key_from_config(config: Mapping[str, Any], data_dir: str | os.PathLike[str], *, create: bool) -> WatermarkKey:
    """The server's key: the key file in ``data_dir`` (created on first start when ``create``; detection never
    creates one). Only the file holds it (0600): never a config file, so the server and detection always agree."""
    if create:
        return WatermarkKey.load_or_create(data_dir)
    path = Path(data_dir) / KEY_FILENAME
    if not path.exists():
        raise WatermarkError(f"no watermark key at {path} (the server creates it on first start; "
                             "pass the server's --data-dir)")
    return WatermarkKey.load(path)
