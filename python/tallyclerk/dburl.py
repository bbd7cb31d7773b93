"""Database URLs: parsing, validation, and masking passwords wherever a URL is shown.

tallyclerk accepts two families of URL:

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (``sqlite://`` and
  ``sqlite:///:memory:`` name an in-memory database; ``sqlite+pysqlite`` is the same driver);
* ``postgresql://user:password@host:5432/db`` and ``postgresql+psycopg://...`` (psycopg 3 is the
  only PostgreSQL driver; ``postgres://`` is accepted as an alias).

Anything else is a :class:`~tallyclerk.errors.ConfigError` (the CLI exits 2), and the message
shows the URL with its password masked. Every log line, report and error that shows a URL goes
through :func:`mask_url`; :class:`PasswordMaskingFilter` is a last line of defence for handlers.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tallyclerk.errors import ConfigError
from tallyclerk.redact import redact as mask_secrets

__all__ = [
    "default_audit_url",
    "DbUrl",
    "PasswordMaskingFilter",
    "mask_secrets",
    "mask_url",
    "parse_url",
]


Dialect = Literal["sqlite", "postgresql"]

_SQLITE_DRIVERS = {None, "pysqlite"}
_POSTGRES_DRIVERS = {None, "psycopg"}
_POSTGRES_NAMES = {"postgresql", "postgres"}

def default_audit_url(into: str) -> str:
    """The audit store of a load given no ``--audit``: the target database itself, except for a
    DuckDB file (the audit store is SQLite or PostgreSQL): a SQLite file beside it,
    ``PATH.audit.db``."""
    if into.startswith("duckdb:///") and "?" not in into and len(into) > len("duckdb:///"):
        return "sqlite:///" + into[len("duckdb:///"):] + ".audit.db"
    return into


def mask_url(url: str | URL) -> str:
    """``url`` with its password replaced by ``***``; never raises, whatever ``url`` holds.

    >>> mask_url("postgresql://user:s3cret@db.example/prod")
    'postgresql://user:***@db.example/prod'
    """
    if isinstance(url, URL):
        return mask_secrets(url.render_as_string(hide_password=True))
    return mask_secrets(str(url))


@dataclass(frozen=True)
class DbUrl:
    """A validated database URL.

    Attributes:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        url: the SQLAlchemy URL with the driver made explicit (``sqlite+pysqlite``,
            ``postgresql+psycopg``); it holds the password, so never log it: use :attr:`masked`.
        masked: the URL as given, password masked; safe for logs, reports and errors.
        path: for SQLite, the database file's absolute path (None in memory).
    """

    dialect: Dialect
    url: URL
    masked: str
    path: str | None

    @property
    def in_memory(self) -> bool:
        return self.dialect == "sqlite" and self.path is None

    def identity(self) -> tuple[str, ...]:
        """What makes two URLs the same database (driver, user and password do not count)."""
        if self.dialect == "sqlite":
            return ("sqlite", os.path.realpath(self.path) if self.path else ":memory:")
        return (
            "postgresql",
            (self.url.host or "").lower(),
            str(self.url.port or 5432),
            self.url.database or "",
        )

    def same_database(self, other: DbUrl) -> bool:
        """True when both URLs name one database (in-memory databases are never shared)."""
        if self.in_memory or other.in_memory:
            return False
        return self.identity() == other.identity()


def parse_url(url: str) -> DbUrl:
    """Validate ``url`` and return it parsed.

    Raises:
        ConfigError: unknown scheme or driver, or a URL that cannot be parsed; the message
            names the URL with its password masked.
    """
    masked = mask_url(url)
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"not a database URL: {masked!r} (expected sqlite:///path.db or postgresql://...)"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        reason = mask_secrets(str(exc))
        raise ConfigError(f"cannot parse database URL {masked!r}: {reason}") from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else None
    if backend == "sqlite":
        if driver not in _SQLITE_DRIVERS:
            raise ConfigError(f"unsupported SQLite driver {driver!r} in {masked!r} (use sqlite:///)")
        if parsed.host or parsed.username or parsed.password is not None:
            raise ConfigError(
                f"a SQLite URL names a file, not a host: {masked!r} "
                "(use sqlite:///relative.db or sqlite:////absolute.db)"
            )
        database = parsed.database
        path = None if database in (None, "", ":memory:") else os.path.abspath(database)
        sa_url = parsed.set(drivername="sqlite+pysqlite", database=path)
        return DbUrl("sqlite", sa_url, masked, path)
    if backend in _POSTGRES_NAMES:
        if driver not in _POSTGRES_DRIVERS:
            raise ConfigError(
                f"unsupported PostgreSQL driver {driver!r} in {masked!r} "
                "(use postgresql:// or postgresql+psycopg://)"
            )
        if not parsed.database:
            raise ConfigError(f"a PostgreSQL URL must name a database: {masked!r}")
        sa_url = parsed.set(drivername="postgresql+psycopg")
        return DbUrl("postgresql", sa_url, masked, None)
    raise ConfigError(
        f"unsupported database URL scheme {parsed.drivername!r} in {masked!r} "
        "(expected sqlite:/// or postgresql://)"
    )


class PasswordMaskingFilter(logging.Filter):
    """A logging filter that masks URL and connection-string passwords in every record.

    Attach it to handlers (filters on a logger do not see records propagated from child
    loggers): ``handler.addFilter(PasswordMaskingFilter())``. It renders the message once,
    masks it, and clears ``args`` so later formatting cannot bring the secret back.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True
