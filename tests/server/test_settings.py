"""Limits and engine settings: defaults, overrides from the config tables, clear errors."""

import re

import pytest

from rtvc.engine import EngineSettings
from rtvc.errors import ConfigError
from rtvc.session import DEFAULT_LIMITS, Limits


def test_defaults_and_overrides():
    assert Limits.from_config({}).max_message_bytes == DEFAULT_LIMITS["max_message_bytes"]
    limits = Limits.from_config({"limits": {"idle_timeout_s": 5.0}}, max_sessions=3)
    assert (limits.idle_timeout_s, limits.max_sessions) == (5.0, 3)
    assert EngineSettings.from_config({"engine": {"mode": "thread", "workers": 4}}).workers == 4


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: Limits.from_config({"limits": {"max_sesions": 3}}), "unknown key(s) in [limits]: max_sesions"),
        (lambda: Limits(idle_timeout_s=0), "idle_timeout_s must be a positive number"),
        (lambda: Limits(min_block_ms=50, max_block_ms=20), "min_block_ms=50 exceeds max_block_ms=20"),
        (lambda: EngineSettings(mode="gpu"), "mode must be 'process' or 'thread'"),
        (lambda: EngineSettings(workers=True), "workers must be a positive number"),
    ],
)
def test_bad_settings_are_config_errors(make, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        make()
