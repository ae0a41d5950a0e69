from __future__ import annotations

import numpy as np
import pytest

from rtvc.watermark import WatermarkError, WatermarkKey
from rtvc.watermark.code import CODED_BITS, decode_token, encode_token


def test_token_round_trips_through_the_code_with_noise(key):
    rng = np.random.default_rng(0)
    for token in (0, 1, 2**64 - 1, int(rng.integers(0, 2**63))):
        soft = 1.0 - 2.0 * encode_token(token, key)
        assert decode_token(soft, key) == token
        # Eb/N0 of 3 dB on the 96 payload bits: list decoding recovers it
        noisy = soft + rng.normal(0, np.sqrt(CODED_BITS / 96 / 2 / 10**0.3), CODED_BITS)
        assert decode_token(noisy, key) == token


def test_tag_is_keyed_and_noise_decodes_to_nothing(key):
    soft = 1.0 - 2.0 * encode_token(12345, key)
    assert decode_token(soft, WatermarkKey(bytes(32))) is None  # the tag needs the right key
    rng = np.random.default_rng(1)
    assert all(decode_token(rng.normal(size=CODED_BITS), key) is None for _ in range(20))


@pytest.mark.parametrize("token", [-1, 2**64, 1.5, True, "7"])
def test_token_must_be_64_bit(key, token):
    with pytest.raises(WatermarkError, match="token"):
        encode_token(token, key)
