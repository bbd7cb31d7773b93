"""Run real loads from tests: in-process through the CLI's code path, or the CLI in a subprocess.

:class:`Runner` is what the ``tallyclerk_runner`` fixture returns. ``runner.load(...)`` goes
through exactly what ``tallyclerk load`` runs (``tallyclerk.api.run``: settings,
``tallyclerk_configure``, the sink hook, the audit store, the pipeline, ``tallyclerk_unconfigure``)
with the runner's plugin manager, so plugins registered for the test take part.
``runner.cli(...)`` runs ``python -m tallyclerk.cli`` in a real subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

__all__ = ["CliResult", "LoadResult", "PluginRegistrar", "Runner", "module_root"]


def module_root(module: types.ModuleType) -> str | None:
    """The ``sys.path`` entry ``module`` was imported from (to import it in a subprocess)."""
    file = getattr(module, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    if path.name == "__init__.py":
        path = path.parent
    for _ in module.__name__.split("."):
        path = path.parent
    return str(path)


class PluginRegistrar:
    """Registers plugins on one plugin manager and unregisters them all in :meth:`close`.

    A plugin the manager has already (an installed plugin, loaded from its entry point, or a
    built-in) is left as it is: registering it again is a no-op, and it stays registered
    after the test.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._mine: list[object] = []

    def _register(self, plugin: object, name: str | None) -> bool:
        """Register ``plugin``; False when the manager had it already."""
        if self.pm.is_registered(plugin):
            return False
        self.pm.register(plugin, name=name)
        return True

    def __call__(self, plugin: object, name: str | None = None) -> object:
        """Register ``plugin`` (a module or an object with hookimpls) until the test ends."""
        if self._register(plugin, name):
            self._mine.append(plugin)
        return plugin

    @contextmanager
    def registered(self, plugin: object, name: str | None = None) -> Iterator[object]:
        """Register ``plugin`` for a ``with`` block only (unregistered in ``finally``)."""
        added = self._register(plugin, name)
        try:
            yield plugin
        finally:
            if added:
                self.pm.unregister(plugin)

    def close(self) -> None:
        """Unregister every plugin this registrar added."""
        while self._mine:
            plugin = self._mine.pop()
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)


def _engine(url: str) -> Any:
    """An engine for ``url``; tallyclerk's URLs get its driver (psycopg 3 for PostgreSQL)."""
    from sqlalchemy import create_engine

    from tallyclerk.dburl import parse_url
    from tallyclerk.errors import ConfigError

    try:
        return create_engine(parse_url(url).url)
    except ConfigError:
        return create_engine(url)


def read_table(url: str, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` at ``url`` as dicts, in insertion order; [] without the table."""
    from sqlalchemy import MetaData, Table, inspect, literal_column, select

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table):
                return []
            reflected = Table(table, MetaData(), autoload_with=conn)
            query = select(reflected)
            if engine.dialect.name == "sqlite":
                query = query.order_by(literal_column("rowid"))
            return [dict(row._mapping) for row in conn.execute(query)]
    finally:
        engine.dispose()


def table_columns(url: str, table: str) -> list[str]:
    """The column names of ``table`` at ``url``, in order ([] without the table)."""
    from sqlalchemy import inspect

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            if not insp.has_table(table):
                return []
            return [str(c["name"]) for c in insp.get_columns(table)]
    finally:
        engine.dispose()


@dataclass
class LoadResult:
    """A load's report plus helpers to look at what it left in the databases."""

    report: dict[str, Any]
    into: str
    audit: str
    table: str

    @property
    def status(self) -> str:
        return str(self.report.get("status"))

    @property
    def files(self) -> list[dict[str, Any]]:
        return list(self.report.get("files") or [])

    def file(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The report entry of ``path`` (KeyError when the report does not list it)."""
        for entry in self.files:
            if entry["path"] == str(path):
                return entry
        raise KeyError(str(path))

    def rows(self, table: str | None = None) -> list[dict[str, Any]]:
        """The target table's rows (with ``_tc_file_id``), in insertion order."""
        return read_table(self.into, table or self.table)

    def data(self, table: str | None = None) -> list[dict[str, Any]]:
        """The target table's rows without tallyclerk's ``_tc_file_id`` column."""
        return [
            {k: v for k, v in row.items() if k != "_tc_file_id"} for row in self.rows(table)
        ]

    def count(self, table: str | None = None) -> int:
        return len(self.rows(table))

    def rejects(self) -> list[dict[str, Any]]:
        """This batch's quarantined rows (file, record number, line, column, rule, reason, raw)."""
        from tallyclerk.audit import AuditService

        with AuditService(self.audit) as audit:
            return audit.list_rejects(batch_id=str(self.report["batch_id"]))

    def check_accounting(self) -> None:
        """Assert rows_read = rows_written + rows_rejected + rows_rolled_back per loaded or
        failed file and in total (a loaded file rolls nothing back, a failed one writes
        nothing), and that the target holds what the report says was written."""

        def adds_up(e: dict[str, Any]) -> bool:
            rolled = e.get("rows_rolled_back", 0)
            return bool(e["rows_read"] == e["rows_written"] + e["rows_rejected"] + rolled)

        for entry in self.files:
            if entry["status"] in ("loaded", "failed"):
                assert adds_up(entry), entry
            if entry["status"] == "failed":
                assert entry["rows_written"] == 0, entry
            if entry["status"] == "loaded":
                assert entry.get("rows_rolled_back", 0) == 0, entry
        assert adds_up(self.report), self.report


@dataclass
class CliResult:
    """A finished ``tallyclerk`` subprocess (what :meth:`Runner.cli` returns).

    :ivar code: the exit status (0, 1, 2, 3, 70, 130, 143: see ``tallyclerk.errors``).
    :ivar out: everything the command wrote on stdout (the ``--json`` object).
    :ivar err: everything it wrote on stderr (errors, logs).
    :ivar args: the arguments after ``tallyclerk``, with the ``-p`` options added.
    """

    code: int
    out: str
    err: str
    args: list[str] = field(default_factory=list)

    def json(self) -> Any:
        """``out`` parsed as JSON (``json.JSONDecodeError`` when it is not JSON)."""
        return json.loads(self.out)


class Runner:
    """Runs loads for a test (what the ``tallyclerk_runner`` fixture returns).

    :param pm: the plugin manager loads run with (the ``tallyclerk_pm`` fixture's).
    :param directory: the test's temporary directory (schemas and databases go there).
    :param into: the default target URL (a SQLite file in ``directory``).
    :param audit: the default audit store URL (None: the ``into`` database).
    :param isolated: :meth:`cli` loads no installed plugin, only the built-ins and its
        ``plugins`` (``TALLYCLERK_LOAD_PLUGINS=""``), as ``pm`` does in isolated mode.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        directory: str | os.PathLike[str],
        into: str,
        audit: str | None = None,
        *,
        isolated: bool = False,
    ) -> None:
        self.pm = pm
        self.directory = Path(directory)
        self.into = into
        self.audit = audit
        self.isolated = isolated
        self._schemas = 0

    def _schema_path(self, schema: Any) -> str | None:
        if schema is None or isinstance(schema, (str, os.PathLike)):
            return None if schema is None else os.fspath(schema)
        if hasattr(schema, "to_json"):
            text = str(schema.to_json())
        else:
            text = json.dumps(schema)
        self._schemas += 1
        path = self.directory / f"tallyclerk-schema-{self._schemas}.json"
        path.write_text(text, encoding="utf-8")
        return str(path)

    def load(
        self,
        paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        table: str = "t",
        schema: Any = None,
        plugins: Sequence[object] = (),
        into: str | None = None,
        audit: str | None = None,
        on_error: str = "continue",
        max_rejects: int | None = None,
        force: bool = False,
        options: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> LoadResult:
        """Load ``paths`` into ``table`` in-process; returns the report and helpers.

        :param schema: a Table Schema as a dict, a ``TableSchema``, or a path to a JSON file.
        :param plugins: plugin objects or modules registered for this load only.
        :param options: command-line options by ``dest`` name (``{"format": "parquet"}``).
        :param settings: setting overrides (``{"batch_rows": 2}``).
        """
        from tallyclerk.api import make_request, run

        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        target = into or self.into
        audit_url = audit or self.audit
        options = dict(options or {})
        fmt = options.pop("format", None)
        req = make_request(
            [os.fspath(p) for p in paths],
            table=table,
            into=target,
            audit=audit_url,
            schema=self._schema_path(schema),
            format=fmt,
            on_error=on_error,
            max_rejects=max_rejects,
            force=force,
            options=options,
            settings=dict(settings or {}),
        )
        added: list[object] = []
        try:
            for plugin in plugins:
                if not self.pm.is_registered(plugin):
                    self.pm.register(plugin)
                    added.append(plugin)
            report = run(req, self.pm).to_dict()
        finally:
            for plugin in added:
                self.pm.unregister(plugin)
        return LoadResult(report=report, into=target, audit=audit_url or target, table=table)

    def cli(
        self,
        *args: str,
        plugins: Sequence[types.ModuleType] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> CliResult:
        """Run ``python -m tallyclerk.cli ARGS`` in a subprocess in the test's directory.

        ``plugins`` are modules loaded with ``-p`` (their import root is put on PYTHONPATH);
        ``TALLYCLERK_*`` variables of this process are not passed on, ``env`` adds variables.
        In isolated mode ``TALLYCLERK_LOAD_PLUGINS`` is ``""`` (unless ``env`` sets it): the
        built-ins and ``plugins`` only. Returns a :class:`CliResult`; never raises for a
        non-zero exit status.
        """
        argv = list(args)
        roots: list[str] = []
        for module in plugins:
            argv += ["-p", module.__name__]
            root = module_root(module)
            if root is not None and root not in roots:
                roots.append(root)
        full = {k: v for k, v in os.environ.items() if not k.startswith("TALLYCLERK_")}
        if self.isolated:
            full["TALLYCLERK_LOAD_PLUGINS"] = ""
        full["PYTHONPATH"] = os.pathsep.join(
            roots + [p for p in sys.path if p and os.path.isdir(p)]
        )
        full.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "tallyclerk.cli", *argv],
            cwd=self.directory,
            env=full,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr, argv)

    def rows(self, table: str = "t", into: str | None = None) -> list[dict[str, Any]]:
        """Rows of ``table`` in the target database (with ``_tc_file_id``)."""
        return read_table(into or self.into, table)

    def columns(self, table: str = "t", into: str | None = None) -> list[str]:
        return table_columns(into or self.into, table)
