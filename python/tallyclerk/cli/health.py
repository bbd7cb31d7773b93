"""``tallyclerk health``: can a load run now? Checks the audit store and the target database.

For each of the two databases (``--audit``, by default the ``--into`` database, and ``--into``):
connect, run a trivial query that reads the database, check that a write transaction could
start (SQLite: ``BEGIN IMMEDIATE``, a table created and rolled back; PostgreSQL: not a
read-only standby), and for the audit store read its schema version (it must exist and be one
this tallyclerk understands). Nothing is created or kept: a missing SQLite file is a failure,
not a new file.

Each check runs within ``--connect-timeout`` + ``--read-timeout`` seconds (defaults: the
``connect_timeout_s`` and ``read_timeout_s`` settings): a server that accepts the connection
and never answers makes the check fail with "no answer within N s", it never hangs.

Exit 0 when both are healthy, 1 when one is not (the reason, URL passwords masked, on stdout
and on stderr), 2 for a bad URL or option.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from tallyclerk.cli.output import Output, format_table
from tallyclerk.dburl import DbUrl, default_audit_url, mask_url, parse_url
from tallyclerk.redact import redact

__all__ = ["HealthCheck", "add_parser", "check_database", "run"]

SCHEMA_TABLE = "tallyclerk_schema_version"


@dataclass
class HealthCheck:
    """The outcome of one database check (``--json`` prints a list of these)."""

    name: str
    url: str
    ok: bool
    reason: str | None = None
    schema_version: int | None = None
    elapsed_ms: float = 0.0


class _Unhealthy(Exception):
    """A check failed for a reason worth one line."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text}")
    return value


def add_parser(sub: Any, pm: object | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import db_options

    p: argparse.ArgumentParser = sub.add_parser(
        "health",
        help="check that the audit store and the target database answer",
        description="Connect to the audit store and the target database, run a trivial "
        "query, check a write could start and read the audit schema version, each within "
        "the timeouts. Exit 0 when healthy, 1 with the reason when not.",
    )
    db_options(p)
    p.add_argument("--connect-timeout", type=_seconds, metavar="S", default=None,
                   help="seconds to wait for a connection (default: setting connect_timeout_s)")
    p.add_argument("--read-timeout", type=_seconds, metavar="S", default=None,
                   help="seconds to wait for answers once connected "
                   "(default: setting read_timeout_s)")
    p.add_argument("--json", action="store_true",
                   help='print {"healthy": bool, "checks": [...]} on stdout')
    p.set_defaults(func=run)
    return p


# --- probes (run in a worker thread) ---------------------------------------------------------


def _sqlite_probe(db: DbUrl, *, audit: bool, read_timeout: float) -> int | None:
    if db.path is None:
        raise _Unhealthy("an in-memory SQLite database holds nothing to check")
    if not os.path.exists(db.path):
        raise _Unhealthy(f"no such database file: {db.path}")
    if os.path.isdir(db.path):
        raise _Unhealthy(f"is a directory, not a database file: {db.path}")
    uri = "file:" + quote(db.path) + "?mode=rw"
    con = sqlite3.connect(uri, uri=True, timeout=read_timeout, isolation_level=None)
    try:
        con.execute(f"PRAGMA busy_timeout = {int(read_timeout * 1000)}")
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header page
        version = None
        if audit:
            found = con.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                (SCHEMA_TABLE,),
            ).fetchone()[0]
            if not found:
                raise _Unhealthy(
                    f"not an audit store: no {SCHEMA_TABLE} table (a first load creates it)"
                )
            row = con.execute(f"SELECT version FROM {SCHEMA_TABLE} WHERE id = 1").fetchone()
            version = None if row is None else int(row[0])
        # can a writer get in? (a stuck lock, a read-only file): take the write lock and
        # write one page in a transaction that is rolled back, so nothing changes
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("CREATE TABLE tallyclerk_health_probe (x INTEGER)")
        finally:
            con.execute("ROLLBACK")
        return version
    finally:
        con.close()


def _postgres_probe(
    db: DbUrl, *, audit: bool, connect_timeout: float, read_timeout: float
) -> int | None:
    try:
        import psycopg
    except ImportError:
        raise _Unhealthy(
            "psycopg is not installed (pip install 'tallyclerk[postgres]')"
        ) from None
    conninfo = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(
        conninfo,
        connect_timeout=max(2, math.ceil(connect_timeout)),
        options=f"-c statement_timeout={max(1, int(read_timeout * 1000))}",
        autocommit=True,
    ) as conn:
        conn.execute("SELECT 1").fetchone()
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if row is not None and row[0]:
            raise _Unhealthy("the server is a read-only standby (in recovery)")
        if not audit:
            return None
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()
        if row is None or not row[0]:
            raise _Unhealthy(
                f"not an audit store: no {SCHEMA_TABLE} table (a first load creates it)"
            )
        row = conn.execute(f"SELECT version FROM {SCHEMA_TABLE} WHERE id = 1").fetchone()
        return None if row is None else int(row[0])


def _probe(db: DbUrl, *, audit: bool, connect_timeout: float, read_timeout: float) -> int | None:
    if db.dialect == "sqlite":
        return _sqlite_probe(db, audit=audit, read_timeout=read_timeout)
    return _postgres_probe(db, audit=audit, connect_timeout=connect_timeout,
                           read_timeout=read_timeout)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Unhealthy):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    lines = text.strip().splitlines()
    return redact(lines[0] if lines else type(exc).__name__)


def check_duckdb_file(url: str) -> HealthCheck:
    """A DuckDB target: its file is there (opening it would take the one writer's lock a
    running load holds, so the file is not opened)."""
    path = url[len("duckdb:///"):].split("?", 1)[0]
    check = HealthCheck(name="sink", url=mask_url(url), ok=False, elapsed_ms=0.0)
    if not path or path == ":memory:":
        check.reason = "an in-memory DuckDB database holds nothing to check"
    elif not os.path.exists(path):
        check.reason = f"no such database file: {path}"
    elif os.path.isdir(path):
        check.reason = f"is a directory, not a database file: {path}"
    else:
        check.ok = True
    return check


def check_database(
    name: str, url: str, *, audit: bool, connect_timeout: float, read_timeout: float
) -> HealthCheck:
    """Check one database; never takes (much) longer than ``connect_timeout + read_timeout``.

    :raises ConfigError: ``url`` is not a database URL tallyclerk accepts.
    """
    from tallyclerk.audit.catalogue import SCHEMA_VERSION  # no SQLAlchemy (models: the same)

    db = parse_url(url)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["version"] = _probe(db, audit=audit, connect_timeout=connect_timeout,
                                        read_timeout=read_timeout)
        except Exception as exc:  # noqa: BLE001 - reported as the check's reason, not swallowed
            outcome["error"] = exc

    started = time.monotonic()
    budget = connect_timeout + read_timeout
    worker = threading.Thread(target=work, name=f"tallyclerk-health-{name}", daemon=True)
    worker.start()
    worker.join(budget)
    elapsed_ms = round((time.monotonic() - started) * 1000.0, 1)
    check = HealthCheck(name=name, url=db.masked, ok=False, elapsed_ms=elapsed_ms)
    if worker.is_alive():
        check.reason = (
            f"no answer within {budget:g} s (connect timeout {connect_timeout:g} s "
            f"+ read timeout {read_timeout:g} s)"
        )
    elif "error" in outcome:
        check.reason = _describe(outcome["error"])
    else:
        version = outcome.get("version")
        check.schema_version = version
        if audit and version is None:
            check.reason = f"the audit store has no schema version row in {SCHEMA_TABLE}"
        elif audit and version is not None and version > SCHEMA_VERSION:
            check.reason = (
                f"audit schema version {version} is newer than this tallyclerk understands "
                f"({SCHEMA_VERSION}); upgrade tallyclerk"
            )
        else:
            check.ok = True
    return check


def run(args: argparse.Namespace, out: Output) -> int:
    import logging

    from tallyclerk.settings import load_settings

    log = logging.getLogger("tallyclerk.health")
    settings = load_settings()
    connect_timeout = args.connect_timeout or settings.connect_timeout_s
    read_timeout = args.read_timeout or settings.read_timeout_s
    audit_url = args.audit or default_audit_url(args.into)
    parse_url(audit_url)  # a bad URL is a usage error (exit 2) before anything is checked
    duckdb_into = args.into.startswith("duckdb:///")
    if not duckdb_into:
        parse_url(args.into)
    checks = [
        check_database("audit", audit_url, audit=True, connect_timeout=connect_timeout,
                       read_timeout=read_timeout),
        check_duckdb_file(args.into) if duckdb_into else
        check_database("sink", args.into, audit=False, connect_timeout=connect_timeout,
                       read_timeout=read_timeout),
    ]
    healthy = all(c.ok for c in checks)
    for c in checks:
        if not c.ok:
            log.error("health check %s failed for %s: %s", c.name, c.url, c.reason)
    if args.json:
        out.json({"healthy": healthy, "checks": [asdict(c) for c in checks]})
    else:
        rows = [
            [c.name, c.url, "ok" if c.ok else "FAILED",
             (f"schema version {c.schema_version}" if c.ok and c.schema_version is not None
              else c.reason or ""),
             f"{c.elapsed_ms:.1f} ms"]
            for c in checks
        ]
        for line in format_table(["CHECK", "URL", "STATUS", "DETAIL", "TIME"], rows,
                                 max_width=100):
            out.line(line)
        out.line("healthy" if healthy else "unhealthy")
    return 0 if healthy else 1
