"""Database URLs: accepted forms, refused forms, and passwords that never show."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tallyclerk.dburl import PasswordMaskingFilter, mask_secrets, mask_url, parse_url
from tallyclerk.errors import ConfigError


def test_sqlite_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = parse_url("sqlite:///data/x.db")
    assert rel.dialect == "sqlite"
    assert rel.path == str(tmp_path / "data" / "x.db")
    absolute = parse_url(f"sqlite:///{tmp_path}/y.db")
    assert absolute.path == str(tmp_path / "y.db")
    assert absolute.url.drivername == "sqlite+pysqlite"


def test_sqlite_memory() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        parsed = parse_url(url)
        assert parsed.in_memory
        assert not parsed.same_database(parsed)


def test_postgresql_uses_psycopg_and_masks() -> None:
    parsed = parse_url("postgresql://app:s3cret@db.example:5433/prod")
    assert parsed.dialect == "postgresql"
    assert parsed.url.drivername == "postgresql+psycopg"
    assert parsed.url.password == "s3cret"
    assert parsed.masked == "postgresql://app:***@db.example:5433/prod"
    assert "s3cret" not in repr(parsed)
    assert parse_url("postgresql+psycopg://app@db/prod").url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:hunter2@localhost/db",
        "sqlite+aiosqlite:///x.db",
        "postgresql+psycopg2://u:hunter2@h/db",
        "postgresql://u:hunter2@h/",
        "sqlite://u:hunter2@host/x.db",
        "just-a-path.db",
    ],
)
def test_refused_urls_raise_config_error_without_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(url)
    assert "hunter2" not in str(info.value)


def test_same_database(tmp_path: Path) -> None:
    a = parse_url(f"sqlite:///{tmp_path}/a.db")
    link = tmp_path / "link.db"
    os.symlink(tmp_path / "a.db", link)
    assert a.same_database(parse_url(f"sqlite:///{link}"))
    assert not a.same_database(parse_url(f"sqlite:///{tmp_path}/b.db"))
    pg = parse_url("postgresql://u:p@Host/db")
    assert pg.same_database(parse_url("postgresql+psycopg://other@host:5432/db"))
    assert not pg.same_database(parse_url("postgresql://u:p@host/other"))
    assert not pg.same_database(a)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p%40ss@h:1/db?x=1", "postgresql://u:***@h:1/db?x=1"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db"),
        ("failed: host=h password=secret user=u", "failed: host=h password=*** user=u"),
        ("x?password=secret&sslmode=require", "x?password=***&sslmode=require"),
    ],
)
def test_mask_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


def test_mask_url_accepts_sqlalchemy_urls() -> None:
    assert mask_url(parse_url("postgresql://u:pw@h/db").url) == "postgresql+psycopg://u:***@h/db"


def test_logging_filter_masks_messages_and_args(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tallyclerk.test.dburl")
    caplog.handler.addFilter(PasswordMaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("connecting to %s", "postgresql://u:topsecret@h/db")
            logger.error("dsn postgresql://u:topsecret@h/db failed")
    finally:
        caplog.handler.filters.clear()
    assert "topsecret" not in caplog.text
    assert caplog.text.count("postgresql://u:***@h/db") == 2
