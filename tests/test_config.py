"""Settings: defaults need no server; bad values are a ConfigError naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from perennial.config import load_settings
from perennial.errors import ConfigError


def test_defaults_put_everything_under_the_local_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.warehouse == Path(".perennial") / "warehouse"
    assert settings.operational_database_url == "sqlite:///.perennial/perennial.db"


def test_the_environment_overrides_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "perennial.toml").write_text('home = "from-file"\ndefault_timezone = "UTC"\n')
    monkeypatch.setenv("PERENNIAL_HOME", "from-env")
    settings = load_settings()
    assert settings.home == Path("from-env")
    assert settings.default_timezone == "UTC"


def test_an_unknown_time_zone_is_a_config_error_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERENNIAL_DEFAULT_TIMEZONE", "Asia/Atlantis")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.key_path == "default_timezone"
    assert "unknown IANA time zone 'Asia/Atlantis'" in str(caught.value)


def test_an_unknown_key_in_the_file_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "perennial.toml").write_text('hoem = "typo"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.key_path == "hoem"
