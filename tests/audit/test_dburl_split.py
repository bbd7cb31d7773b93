"""Database URLs are parsed without SQLAlchemy (issue 16.1), exactly as ``make_url`` parses them:
the same fields, the same refusals with the same messages, the same masked text."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tallyclerk.dburl import mask_secrets, mask_url, parse_url, split_url
from tallyclerk.errors import ConfigError

SCHEMES = ["sqlite", "sqlite+pysqlite", "sqlite+aiosqlite", "postgresql", "postgres",
           "postgresql+psycopg", "postgresql+psycopg2", "mysql", "duckdb", "sqlite+a+b",
           "Sqlite", "sq-lite", ""]
# the characters URLs are made of, the ones the pattern splits on, and a few beyond ASCII
PIECES = st.text(alphabet=st.sampled_from(list("ab:/@?&=%[]._-#+ 019:\u00e9\u0661\n")),
                 max_size=30)
Parsed = tuple[str, URL, str, "str | None", tuple[str, ...]]
URLS = st.builds(lambda scheme, sep, rest: scheme + sep + rest, st.sampled_from(SCHEMES),
                 st.sampled_from(["://", ":///", ":////", ":/", "://u:p%40w@"]), PIECES)


def reference(url: str) -> Parsed | str:
    """``parse_url`` as it was, on SQLAlchemy's ``make_url``: the parsed URL, or the error."""
    masked = mask_url(url)
    if "://" not in url:
        return f"not a database URL: {masked!r} (expected sqlite:///path.db or postgresql://...)"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        return f"cannot parse database URL {masked!r}: {mask_secrets(str(exc))}"
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else None
    if backend == "sqlite":
        if driver not in (None, "pysqlite"):
            return f"unsupported SQLite driver {driver!r} in {masked!r} (use sqlite:///)"
        if parsed.host or parsed.username or parsed.password is not None:
            return (f"a SQLite URL names a file, not a host: {masked!r} "
                    "(use sqlite:///relative.db or sqlite:////absolute.db)")
        database = parsed.database
        path = None if database in (None, "", ":memory:") else os.path.abspath(str(database))
        sa_url = parsed.set(drivername="sqlite+pysqlite", database=path)
        return _expected("sqlite", sa_url, masked, path)
    if backend in ("postgresql", "postgres"):
        if driver not in (None, "psycopg"):
            return (f"unsupported PostgreSQL driver {driver!r} in {masked!r} "
                    "(use postgresql:// or postgresql+psycopg://)")
        if not parsed.database:
            return f"a PostgreSQL URL must name a database: {masked!r}"
        return _expected("postgresql", parsed.set(drivername="postgresql+psycopg"), masked, None)
    return (f"unsupported database URL scheme {parsed.drivername!r} in {masked!r} "
            "(expected sqlite:/// or postgresql://)")


def _expected(dialect: str, url: URL, masked: str, path: str | None) -> Parsed:
    if dialect == "sqlite":
        identity: tuple[str, ...] = ("sqlite", os.path.realpath(path) if path else ":memory:")
    else:
        identity = ("postgresql", (url.host or "").lower(), str(url.port or 5432),
                    url.database or "")
    return dialect, url, masked, path, identity


def ours(url: str) -> Parsed | str:
    try:
        d = parse_url(url)
    except ConfigError as exc:
        return str(exc)
    return d.dialect, d.url, d.masked, d.path, d.identity()


@settings(max_examples=400, deadline=None)
@given(URLS)
@example("sqlite:///:memory:")
@example("sqlite://")
@example("sqlite:///")
@example("sqlite://@/x.db")
@example("postgresql://u:p%40ss@[::1]:5433/db?sslmode=require&x=1&x=2&y=")
@example("postgresql://u:pw@h:notaport/db")
@example("postgresql://h:\u0661\u0662/db")
@example("postgres://u@h/db?x=%zz")
def test_urls_parse_as_make_url_parses_them(url: str) -> None:
    # the URL compares every field, the password and the query included
    assert ours(url) == reference(url)


@settings(max_examples=400, deadline=None)
@given(st.one_of(URLS, st.text(max_size=40)))
def test_the_split_is_make_urls(url: str) -> None:
    try:
        want: URL | str = make_url(url)
    except (ArgumentError, ValueError) as exc:
        want = str(exc)
    try:
        got: URL | str = split_url(url).to_url()
    except ValueError as exc:
        got = str(exc)
    assert got == want


def test_a_sqlite_url_is_parsed_without_importing_sqlalchemy() -> None:
    probe = ("import sys; from tallyclerk.dburl import parse_url, mask_url; "
             "d = parse_url('sqlite:///x.db'); mask_url(d.masked); "
             "parse_url('postgresql://u:pw@h/db').identity(); "
             "print(d.path.endswith('x.db'), 'sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["True", "False"]


def test_the_password_stays_out_of_the_repr() -> None:
    parsed = parse_url("postgresql://app:s3cret@db.example:5433/prod")
    assert "s3cret" not in repr(parsed)
    assert "s3cret" not in repr(parsed.parts) and "s3cret" not in str(parsed.parts)
    assert "password='***'" in repr(parsed.parts)
    assert parsed.parts.password == "s3cret" and parsed.url.password == "s3cret"
