"""Settings: defaults, config files found upward, TALLYCLERK_* variables, overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallyclerk.errors import ConfigError
from tallyclerk.settings import Settings, find_config_file, load_settings


def test_defaults_without_any_source(tmp_path: Path) -> None:
    s = load_settings(start_dir=tmp_path, env={})
    assert s == Settings()
    assert s.audit_async is True
    assert s.heartbeat_s < s.lease_s


def test_pyproject_table_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.tallyclerk]\nqueue_max_items = 123\nsynchronous = "full"\n'
    )
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    s = load_settings(start_dir=sub, env={})
    assert s.queue_max_items == 123
    assert s.synchronous == "FULL"


def test_tallyclerk_toml_wins_over_pyproject_in_the_same_directory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.tallyclerk]\nlinger_ms = 1\n")
    (tmp_path / "tallyclerk.toml").write_text("linger_ms = 7.5\n")
    assert find_config_file(tmp_path) == (tmp_path.resolve() / "tallyclerk.toml", "")
    assert load_settings(start_dir=tmp_path, env={}).linger_ms == 7.5


def test_pyproject_without_the_table_does_not_stop_the_search(tmp_path: Path) -> None:
    (tmp_path / "tallyclerk.toml").write_text("max_retries = 9\n")
    inner = tmp_path / "proj"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    assert load_settings(start_dir=inner, env={}).max_retries == 9


def test_env_overrides_file_and_overrides_win_over_env(tmp_path: Path) -> None:
    (tmp_path / "tallyclerk.toml").write_text("queue_max_items = 10\naudit_async = true\n")
    env = {
        "TALLYCLERK_QUEUE_MAX_ITEMS": "20",
        "TALLYCLERK_AUDIT_ASYNC": "off",
        "TALLYCLERK_AUDIT_EVENTS": "0",
        "TALLYCLERK_BENCH": "quick",  # not a setting: ignored
    }
    s = load_settings(start_dir=tmp_path, env=env)
    assert (s.queue_max_items, s.audit_async, s.audit_events) == (20, False, False)
    overrides = {"queue_max_items": 30, "lease_s": None}
    s = load_settings(start_dir=tmp_path, env=env, overrides=overrides)
    assert s.queue_max_items == 30
    assert s.lease_s == Settings().lease_s


def test_invalid_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"TALLYCLERK_LINGER_MS": "abc"})
    assert str(info.value) == "TALLYCLERK_LINGER_MS: expected a number >= 0, got 'abc'"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("queue_max_items", "0", "an integer >= 1"),
        ("batch_rows", "-1", "an integer >= 0"),
        ("lease_s", "0", "a number > 0"),
        ("idle_timeout_s", "nan", "a number > 0"),
        ("audit_async", "maybe", "true or false"),
        ("synchronous", "sometimes", "one of OFF, NORMAL, FULL, EXTRA"),
    ],
)
def test_invalid_values_are_refused(key: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=f"TALLYCLERK_{key.upper()}: expected {expected}"):
        load_settings(env={f"TALLYCLERK_{key.upper()}": value})


def test_invalid_file_value_names_file_table_and_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.tallyclerk]\nbatch_rows = "many"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(start_dir=tmp_path, env={})
    message = str(info.value)
    assert "pyproject.toml [tool.tallyclerk] batch_rows" in message
    assert "'many'" in message


def test_booleans_are_not_integers(tmp_path: Path) -> None:
    (tmp_path / "tallyclerk.toml").write_text("max_retries = true\n")
    with pytest.raises(ConfigError, match="max_retries: expected an integer"):
        load_settings(start_dir=tmp_path, env={})


def test_unknown_keys_in_the_file_are_named(tmp_path: Path) -> None:
    (tmp_path / "tallyclerk.toml").write_text("linger_ms = 1\nlingr_ms = 2\nqueue_size = 3\n")
    with pytest.raises(ConfigError, match="unknown settings 'lingr_ms', 'queue_size'"):
        load_settings(start_dir=tmp_path, env={})


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="'nope'"):
        load_settings(env={}, overrides={"nope": 1})


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "tallyclerk.toml").write_text("linger_ms = = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(start_dir=tmp_path, env={})


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError, match="heartbeat_s"):
        load_settings(env={"TALLYCLERK_LEASE_S": "5", "TALLYCLERK_HEARTBEAT_S": "5"})
    with pytest.raises(ConfigError, match="backoff_initial_ms"):
        Settings(backoff_initial_ms=10, backoff_max_ms=1)


def test_direct_construction_is_checked_and_normalized() -> None:
    with pytest.raises(ConfigError, match="Settings.queue_max_batch"):
        Settings(queue_max_batch=0)
    s = Settings(synchronous="full", lease_s=30)  # type: ignore[arg-type]
    assert s.synchronous == "FULL"
    assert isinstance(s.lease_s, float)
