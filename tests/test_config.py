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


def test_settings_built_without_a_config_equal_the_default_config():
    """The dataclass defaults come from configs/default.toml, with the types the settings need."""
    from rtvc.engine import EngineSettings
    from rtvc.session import Limits

    config = load_config(None)
    assert Limits() == Limits.from_config(config) and EngineSettings() == EngineSettings.from_config(config)
    assert isinstance(Limits().max_sessions, int) and isinstance(EngineSettings().workers, int)
    assert Limits().max_block_ms == config["limits"]["max_block_ms"]
    assert EngineSettings().max_load == config["engine"]["max_load"]
