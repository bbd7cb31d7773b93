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
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal, NamedTuple

from tallyclerk.errors import ConfigError
from tallyclerk.redact import redact as mask_secrets

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "default_audit_url",
    "DbUrl",
    "PasswordMaskingFilter",
    "UrlParts",
    "mask_secrets",
    "mask_url",
    "parse_url",
    "split_url",
]


Dialect = Literal["sqlite", "postgresql"]

_SQLITE_DRIVERS = {None, "pysqlite"}
_POSTGRES_DRIVERS = {None, "psycopg"}
_POSTGRES_NAMES = {"postgresql", "postgres"}

# SQLAlchemy's own URL pattern (``sqlalchemy.engine.url._parse_url``, 2.x), so that a URL
# splits here exactly as ``make_url`` splits it (tests/audit/test_dburl_split.py compares the
# two on generated URLs) without importing SQLAlchemy: a SQLite load never needs it.
_URL_PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)

QueryItems = tuple[tuple[str, "str | tuple[str, ...]"], ...]


class UrlParts(NamedTuple):
    """A URL split into the fields of SQLAlchemy's ``URL`` (``password`` included: never log
    it); ``query`` keeps ``make_url``'s order, a repeated key's values as a tuple."""

    drivername: str
    username: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    query: QueryItems | None

    def __repr__(self) -> str:  # the password masked, as SQLAlchemy's URL shows it
        shown = self._replace(password=None if self.password is None else "***")
        return "UrlParts(" + ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, shown, strict=True)
        ) + ")"

    def backend(self) -> str:
        return self.drivername.split("+")[0]

    def driver(self) -> str | None:
        """The driver named after ``+``, or None (the dialect's default driver)."""
        return self.drivername.split("+")[1] if "+" in self.drivername else None

    def to_url(self) -> URL:
        """The SQLAlchemy URL of these parts (imports SQLAlchemy)."""
        from sqlalchemy.engine import URL

        return URL.create(self.drivername, self.username, self.password, self.host,
                          self.port, self.database, dict(self.query or ()))


def split_url(url: str) -> UrlParts:
    """``url`` split as ``sqlalchemy.engine.make_url`` splits it.

    Raises:
        ValueError: the URL has no ``scheme://`` or a port that is not a number (the messages
            of ``make_url``'s ArgumentError and ValueError).
    """
    m = _URL_PATTERN.match(url)
    if m is None:
        raise ValueError("Could not parse SQLAlchemy URL from given URL string")
    c = m.groupdict()
    query: QueryItems | None = None
    if c["query"] is not None:
        from urllib.parse import parse_qsl  # imported here: see _unquote

        merged: dict[str, str | list[str]] = {}
        for key, value in parse_qsl(c["query"]):
            if key in merged:
                prior = merged[key]
                merged[key] = [*prior, value] if isinstance(prior, list) else [prior, value]
            else:
                merged[key] = value
        query = tuple((k, v if isinstance(v, str) else tuple(v)) for k, v in merged.items())
    username, password, database = (
        None if c[k] is None else _unquote(c[k]) for k in ("username", "password", "database")
    )
    # an empty port ("h:/db") is refused too: make_url hands "" to URL.create, whose int() fails
    port = None if c["port"] is None else int(c["port"])
    return UrlParts(
        c["name"], username, password, c["ipv4host"] or c["ipv6host"], port, database, query
    )


def _unquote(text: str) -> str:
    """``urllib.parse.unquote(text)``, which returns a text with no ``%`` as it is: a URL with
    no escape and no query (a SQLite file's) does not import ``urllib.parse`` (with
    ``ipaddress``, ~1.5 ms of a start where ``site`` has not imported them; issue 16.1)."""
    if "%" not in text:
        return text
    from urllib.parse import unquote

    return unquote(text)


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
    sa_url = sys.modules.get("sqlalchemy.engine.url")  # a URL object means it is imported
    if sa_url is not None and isinstance(url, sa_url.URL):
        return mask_secrets(url.render_as_string(hide_password=True))
    return mask_secrets(str(url))


@dataclass(frozen=True)
class DbUrl:
    """A validated database URL.

    Attributes:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        masked: the URL as given, password masked; safe for logs, reports and errors.
        path: for SQLite, the database file's absolute path (None in memory).
        parts: the URL's fields with the driver made explicit; they hold the password (not in
            the ``repr``), so never log them: use :attr:`masked`.
        url: (property) the SQLAlchemy URL of :attr:`parts` (``sqlite+pysqlite``,
            ``postgresql+psycopg``), built on first use: reading it imports SQLAlchemy.
    """

    dialect: Dialect
    masked: str
    path: str | None
    parts: UrlParts = field(repr=False)

    @cached_property
    def url(self) -> URL:
        return self.parts.to_url()

    @property
    def in_memory(self) -> bool:
        return self.dialect == "sqlite" and self.path is None

    def identity(self) -> tuple[str, ...]:
        """What makes two URLs the same database (driver, user and password do not count)."""
        if self.dialect == "sqlite":
            return ("sqlite", os.path.realpath(self.path) if self.path else ":memory:")
        return (
            "postgresql",
            (self.parts.host or "").lower(),
            str(self.parts.port or 5432),
            self.parts.database or "",
        )

    def same_database(self, other: DbUrl) -> bool:
        """True when both URLs name one database (in-memory databases are never shared)."""
        if self.in_memory or other.in_memory:
            return False
        return self.identity() == other.identity()


def parse_url(url: str) -> DbUrl:
    """Validate ``url`` and return it parsed (without importing SQLAlchemy).

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
        parsed = split_url(url)
    except ValueError as exc:
        reason = mask_secrets(str(exc))
        raise ConfigError(f"cannot parse database URL {masked!r}: {reason}") from None
    backend = parsed.backend()
    driver = parsed.driver()
    if backend == "sqlite":
        if driver not in _SQLITE_DRIVERS:
            raise ConfigError(f"unsupported SQLite driver {driver!r} in {masked!r} (use sqlite:///)")
        if parsed.host or parsed.username or parsed.password is not None:
            raise ConfigError(
                f"a SQLite URL names a file, not a host: {masked!r} "
                "(use sqlite:///relative.db or sqlite:////absolute.db)"
            )
        database = parsed.database
        path = None if database in (None, "", ":memory:") else os.path.abspath(str(database))
        # as SQLAlchemy's URL.set(database=None) does: an in-memory URL keeps its database
        parts = parsed._replace(drivername="sqlite+pysqlite",
                                database=database if path is None else path)
        return DbUrl("sqlite", masked, path, parts)
    if backend in _POSTGRES_NAMES:
        if driver not in _POSTGRES_DRIVERS:
            raise ConfigError(
                f"unsupported PostgreSQL driver {driver!r} in {masked!r} "
                "(use postgresql:// or postgresql+psycopg://)"
            )
        if not parsed.database:
            raise ConfigError(f"a PostgreSQL URL must name a database: {masked!r}")
        return DbUrl("postgresql", masked, None, parsed._replace(drivername="postgresql+psycopg"))
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
