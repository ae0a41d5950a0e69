"""The payload and its channel code.

Payload (96 bits) = the 64-bit session token ‖ a 32-bit keyed tag (truncated
HMAC-SHA256 of the token). The tag is the integrity check: a decode is accepted
only if its tag matches, so a random or foreign-key signal yields a wrong token
with probability 2^-32 per attempt. The payload is protected by a rate-1/3,
constraint-length-7 convolutional code (generators 133, 171, 165 octal, as in
LTE) terminated with 6 zero bits, decoded by a soft-decision Viterbi decoder.
"""

from __future__ import annotations

import numpy as np

from rtvc.watermark.errors import WatermarkError
from rtvc.watermark.key import WatermarkKey

__all__ = ["CODED_BITS", "PAYLOAD_BITS", "TAG_BYTES", "TOKEN_BITS", "decode_token", "encode_token"]

TOKEN_BITS = 64
TAG_BYTES = 4
PAYLOAD_BITS = TOKEN_BITS + 8 * TAG_BYTES
_K = 7  # constraint length
_GENERATORS = (0o133, 0o171, 0o165)
_MEMORY = _K - 1
_STATES = 1 << _MEMORY
CODED_BITS = len(_GENERATORS) * (PAYLOAD_BITS + _MEMORY)
LIST_SIZE = 32  # decodes tried per attempt: a wrong token passes the tag with odds LIST_SIZE * 2**-32


def _parity(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    out = np.zeros_like(values)
    while values.any():
        out ^= values & 1
        values >>= 1
    return out


def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """For every state (last 6 input bits, newest in bit 5) and input bit: next state and coded bits."""
    state = np.arange(_STATES)[:, None]
    bit = np.arange(2)[None, :]
    register = (bit << _MEMORY) | state  # 7 bits, newest input at bit 6
    outputs = np.stack([_parity(register & g) for g in _GENERATORS], axis=-1)  # (states, 2, n_gen)
    return register >> 1, outputs


_NEXT, _OUT = _trellis()
# Predecessors of each state: state s is reached from (s << 1 | oldest) & mask with input bit = s >> 5.
_PREV = ((np.arange(_STATES)[:, None] << 1) | np.arange(2)[None, :]) & (_STATES - 1)  # (states, 2)
_PREV_BIT = np.arange(_STATES) >> (_MEMORY - 1)
_PREV_OUT = _OUT[_PREV, _PREV_BIT[:, None]]  # (states, 2, n_gen)


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def _payload(token: int, key: WatermarkKey) -> np.ndarray:
    if isinstance(token, bool) or not isinstance(token, (int, np.integer)) or not 0 <= int(token) < 1 << TOKEN_BITS:
        raise WatermarkError(f"a watermark token is an integer in [0, 2**{TOKEN_BITS}), got {token!r}")
    raw = int(token).to_bytes(TOKEN_BITS // 8, "big")
    return _bits(raw + key.tag(raw, TAG_BYTES))


def encode_token(token: int, key: WatermarkKey) -> np.ndarray:
    """Coded bits (0/1, uint8, length :data:`CODED_BITS`) carrying ``token``."""
    bits = np.concatenate([_payload(token, key), np.zeros(_MEMORY, np.uint8)])
    coded = np.empty((len(bits), len(_GENERATORS)), np.uint8)
    state = 0
    for i, bit in enumerate(bits):
        coded[i] = _OUT[state, bit]
        state = _NEXT[state, bit]
    return coded.reshape(-1)


def viterbi(soft: np.ndarray, paths: int = 1) -> np.ndarray:
    """The ``paths`` most likely payloads, best first, for soft values (positive = coded bit 0).

    A parallel list Viterbi decoder: every state keeps its ``paths`` best survivors; the code is
    zero-tail terminated, so all payloads end in state 0. Returns uint8 (paths, PAYLOAD_BITS).
    """
    steps = len(soft) // len(_GENERATORS)
    soft = np.asarray(soft, np.float64).reshape(steps, len(_GENERATORS))
    branch = np.einsum("spg,tg->spt", 1.0 - 2.0 * _PREV_OUT, soft)  # (states, 2, steps): each incoming branch
    metric = np.full((_STATES, paths), -np.inf)
    metric[0, 0] = 0.0
    choice = np.empty((steps, _STATES, paths), np.int64)
    states = np.arange(_STATES)[:, None]
    for t in range(steps):
        candidates = (metric[_PREV] + branch[:, :, t, None]).reshape(_STATES, 2 * paths)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, :paths]
        choice[t] = best
        metric = candidates[states, best]
    bits = np.empty((paths, steps), np.uint8)
    state = np.zeros(paths, np.int64)  # the tail drives the encoder back to state 0
    rank = np.arange(paths)
    for t in range(steps - 1, -1, -1):
        bits[:, t] = _PREV_BIT[state]
        c = choice[t, state, rank]
        state, rank = _PREV[state, c // paths], c % paths
    alive = np.isfinite(metric[0])
    return bits[alive, :PAYLOAD_BITS]


def decode_token(soft: np.ndarray, key: WatermarkKey, *, paths: int = LIST_SIZE) -> int | None:
    """The most likely token whose tag checks out among the ``paths`` best decodes, or None."""
    if len(soft) != CODED_BITS:
        raise WatermarkError(f"expected {CODED_BITS} soft bits, got {len(soft)}")
    for bits in viterbi(soft, paths):
        raw = np.packbits(bits).tobytes()
        token_bytes, tag = raw[: TOKEN_BITS // 8], raw[TOKEN_BITS // 8 :]
        if key.tag(token_bytes, TAG_BYTES) == tag:
            return int.from_bytes(token_bytes, "big")
    return None
