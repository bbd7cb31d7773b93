"""Start-up (issue 16.1): a SQLite load imports only what it uses, and the CLI builds only the
parser of the sub-command it runs, with the same result as the full parser."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tallyclerk.cli import COMMANDS, build_parser, prescan_command
from tallyclerk.plugins import get_plugin_manager
from tests.cli.conftest import env_for, probe, write_csv

# Imported by a SQLite load before these changes, used only by other stores, sub-commands or
# plugins (the PostgreSQL dialect's package alone imported asyncpg's dialect and asyncio).
NOT_FOR_A_SQLITE_LOAD = (
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "prometheus_client",
    "tallyclerk.cli.demo",
    "tallyclerk.cli.validate",
    "tallyclerk.cli.watch",
    "tallyclerk.cli.health",
    "tomllib",  # read only when a configuration file is found
    # object storage: only for s3://, gs://, az://, https:// paths (fsspec, spools, prefetch)
    "tallyclerk.objstore",
    "tallyclerk.objprefetch",
    "tallyclerk.s3get",
    "botocore",
)

PROBE = """
import sys
import tallyclerk.cli
code = tallyclerk.cli.main(sys.argv[1:])
print(" ".join(sorted(m for m in sys.modules)))
sys.exit(code)
"""


def test_a_sqlite_load_imports_no_other_store_or_command(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(PROBE, "load", str(src), "--table", "t",
                "--into", f"sqlite:///{tmp_path / 'x.db'}", "--json", cwd=tmp_path)
    modules = set(out.splitlines()[-1].split())
    assert "tallyclerk.cli.load" in modules and "tallyclerk.audit.service" in modules
    assert sorted(m for m in NOT_FOR_A_SQLITE_LOAD if m in modules) == []


# Not imported before the load's audit store is opened: the plugin manager with every built-in
# registered, the load's parser and its request (issue 16.1, round three). SQLAlchemy came in
# through the URL parser (``tallyclerk.dburl``), the generic sink's plugin module and
# ``tallyclerk.dberrors``; ``importlib.metadata`` (with ``email``) through the plugin manager,
# which needs it only to scan installed plugins or resolve a plugin's name.
NOT_BEFORE_THE_AUDIT_STORE = (
    "sqlalchemy",
    "sqlalchemy.engine",
    "tallyclerk.builtins.sqlalchemy_target",
    "importlib.metadata",
    "email",
    "email.message",
)

START_UP_PROBE = """
import sys
from tallyclerk.cli import build_parser
from tallyclerk.cli.load import request_from_args
from tallyclerk.plugins import get_plugin_manager
pm = get_plugin_manager([])
argv = sys.argv[1:]
args = build_parser(pm, "load").parse_args(argv)
req = request_from_args(args)
assert req.table == "t" and pm.has_plugin("tallyclerk.builtins.sqlalchemy_sink"), req
print(" ".join(sorted(m for m in sys.modules)))
"""


def test_start_up_imports_no_sqlalchemy_and_no_metadata_scan(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(START_UP_PROBE,
                "load", str(src), "--table", "t", "--into", f"sqlite:///{tmp_path / 'x.db'}",
                cwd=tmp_path)
    modules = set(out.splitlines()[-1].split())
    assert "tallyclerk.builtins.sqlite_sink" in modules and "pluggy" in modules  # it works
    assert sorted(m for m in NOT_BEFORE_THE_AUDIT_STORE if m in modules) == []


def _parsed(argv: list[str], command: str | None) -> dict[str, Any] | str:
    """What a parser built for ``command`` makes of ``argv``: its namespace, or its error."""
    pm = get_plugin_manager([])
    try:
        ns = build_parser(pm, command).parse_args(argv)
    except SystemExit as exc:  # --help / --version
        return f"exit {exc.code}"
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return f"{type(exc).__name__}: {exc}"
    return {k: v for k, v in vars(ns).items() if k != "pm"}


ARGVS = [
    ["load", "a.csv", "--table", "t", "--into", "sqlite:///x.db"],
    ["--debug", "load", "a.csv", "--table", "t", "--into", "sqlite:///x.db", "--json"],
    ["--log-level", "info", "--log-format=json", "status", "--audit", "sqlite:///x.db"],
    ["--correlation-id", "abc", "validate", "a.csv", "--schema", "s.json"],
    ["load", "a.csv", "--table", "t", "--into", "sqlite:///x.db", "--bogus"],
    ["load", "a.csv"],
    ["schema", "show", "--help"],
    ["plugins", "--json"],
    ["--log-lev", "info", "load", "a.csv", "--table", "t"],  # abbreviated: full parser
    ["bogus"],
    [],
    ["--version"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=lambda a: " ".join(a) or "(none)")
def test_the_one_command_parser_parses_as_the_full_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    command = prescan_command(argv)
    one = _parsed(argv, command)
    one_out = capsys.readouterr()
    full = _parsed(argv, None)
    assert one == full
    assert one_out == capsys.readouterr()


def test_the_command_is_found_only_where_argparse_would_find_it() -> None:
    assert prescan_command(["--debug", "--log-level", "x", "load", "f"]) == "load"
    assert prescan_command(["--log-format=json", "schema", "show"]) == "schema"
    assert prescan_command(["--log-lev", "x", "load"]) is None  # abbreviations: full parser
    assert prescan_command(["-h", "load"]) is None
    assert prescan_command(["--", "load"]) is None
    assert prescan_command(["nope"]) is None


def test_commands_lists_every_sub_command_of_the_full_parser() -> None:
    parser = build_parser(None)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(COMMANDS)


GC_PROBE_PLUGIN = '''
import gc
import sys

from tallyclerk.hookspecs import hookimpl


@hookimpl
def tallyclerk_file_start(context):
    print("file gc", gc.isenabled(), len(gc.get_objects()) > 0, gc.get_freeze_count() > 0,
          file=sys.stderr)
'''


def test_the_collector_runs_again_before_the_first_file(tmp_path: Path) -> None:
    """The ``tallyclerk`` process pauses the collector during start-up only: a load's work
    (here: a plugin's ``tallyclerk_file_start``) runs with it on, start-up's objects frozen."""
    (tmp_path / "gc_probe.py").write_text(GC_PROBE_PLUGIN, encoding="utf-8")
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    proc = subprocess.run(
        [sys.executable, "-m", "tallyclerk.cli", "load", str(src), "--table", "t",
         "--into", f"sqlite:///{tmp_path / 'x.db'}", "-p", "gc_probe"],
        cwd=tmp_path, env=env_for(tmp_path, TALLYCLERK_LOAD_PLUGINS=""), capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "file gc True True True" in proc.stderr.splitlines(), proc.stderr


API_PROBE = """
import sys
import tallyclerk
report = tallyclerk.load(sys.argv[1], table="t", into=sys.argv[2])
assert report.status == "succeeded", report
print(" ".join(sorted(m for m in sys.modules)))
"""


@pytest.mark.parametrize("via", ["cli", "api"])
def test_a_sqlite_load_imports_no_sqlalchemy(tmp_path: Path, via: str) -> None:
    """Issue 16.1: the SQLite audit store is plain ``sqlite3`` (the DB-API path), the sink
    too: neither a one-row CLI load nor ``tallyclerk.load()`` into SQLite imports any
    ``sqlalchemy`` module (about 200 ms of start-up). A second load into the same file (a
    current store, a skip) neither."""
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    into = f"sqlite:///{tmp_path / 'x.db'}"
    code, *args = (PROBE, "load", str(src), "--table", "t", "--into", into) if via == "cli" \
        else (API_PROBE, str(src), into)
    for run in ("new store", "current store"):
        modules = set(probe(code, *args, cwd=tmp_path).splitlines()[-1].split())
        assert {"tallyclerk.audit.service", "tallyclerk.audit.liteengine"} <= modules, run
        assert sorted(m for m in modules if m.split(".")[0] == "sqlalchemy") == [], run


AUDITLOG_PROBE = """
import sqlite3
import sys
import tallyclerk
with tallyclerk.AuditLog(sys.argv[1]) as events:
    events.record("order_paid", order=42)
    events.flush()
rows = sqlite3.connect(sys.argv[1][len("sqlite:///"):]).execute(
    "SELECT type, payload FROM tallyclerk_events").fetchall()
assert rows == [("order_paid", '{"order":42}')], rows
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy")))
"""


def test_an_auditlog_on_sqlite_imports_no_sqlalchemy(tmp_path: Path) -> None:
    out = probe(AUDITLOG_PROBE, f"sqlite:///{tmp_path / 'a.db'}", cwd=tmp_path)
    assert out.split() == []
