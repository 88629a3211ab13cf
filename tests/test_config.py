"""Configuration is read from a mapping; a bad value names its variable."""

import pytest

from tracker.config import Config, ConfigError


def test_defaults_generate_a_secret_once(tmp_path):
    env = {"TRACKER_INSTANCE_PATH": str(tmp_path)}
    first = Config.from_mapping(env)
    second = Config.from_mapping(env)
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 32
    assert first.database_url == "sqlite:///instance/tracker.db"
    assert first.trusted_proxies == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TRACKER_TRUSTED_PROXIES", "two"),
        ("TRACKER_TRUSTED_PROXIES", "-1"),
        ("TRACKER_DATABASE_URL", "not a url"),
        ("TRACKER_DATABASE_URL", "mysql://root@localhost/db"),
        ("TRACKER_SECRET_KEY", "short"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        Config.from_mapping({"TRACKER_INSTANCE_PATH": str(tmp_path), key: value})


def test_plain_postgresql_url_uses_psycopg3(tmp_path):
    config = Config.from_mapping(
        {"TRACKER_INSTANCE_PATH": str(tmp_path), "TRACKER_DATABASE_URL": "postgresql://u@h/db"}
    )
    assert config.database_url.startswith("postgresql+psycopg://")
