import pytest

from rtvc.config import load_config, merge
from rtvc.errors import ConfigError


def test_defaults_load_and_have_comments_for_every_key():
    config = load_config(None)
    assert config["pipeline"]["block_ms"] > 0
    from rtvc.config import DEFAULT_CONFIG_PATH

    lines = DEFAULT_CONFIG_PATH.read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[i - 1].lstrip().startswith("#"), f"config key without a comment: {line}"


def test_file_overrides_and_unknown_keys_fail(tmp_path, monkeypatch):
    good = tmp_path / "good.toml"
    good.write_text("[pipeline]\nblock_ms = 20\n")
    assert load_config(good)["pipeline"]["block_ms"] == 20.0
    monkeypatch.setenv("RTVC_CONFIG", str(good))
    assert load_config(None)["pipeline"]["block_ms"] == 20.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[pipeline]\nblok_ms = 20\n")
    with pytest.raises(ConfigError, match="unknown config key 'pipeline.blok_ms'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[pipeline\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_type_mismatch_fails_and_cli_overrides_win():
    with pytest.raises(ConfigError, match="must be float"):
        merge({"a": {"b": 1.0}}, {"a": {"b": "fast"}})
    with pytest.raises(ConfigError, match="must be a table"):
        merge({"a": {"b": 1.0}}, {"a": 3})
    assert load_config(None, {"server": {"port": 9}})["server"]["port"] == 9


def test_code_defaults_match_the_default_config():
    """Limits and engine settings keep fallbacks in code; they must say what configs/default.toml says."""
    from rtvc.engine.settings import DEFAULT_ENGINE
    from rtvc.session.limits import DEFAULT_LIMITS

    config = load_config(None)
    assert DEFAULT_LIMITS == config["limits"]
    assert DEFAULT_ENGINE == config["engine"]
