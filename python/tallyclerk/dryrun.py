"""A dry run: read and check files exactly as a load would, and write nothing.

:func:`validate` opens each file through the same loader plugins (``tallyclerk_open_source``),
runs the same validators and transforms on every record batch (the built-in Table Schema
validator first), with the same schema, options and settings as ``tallyclerk load``. It never
opens a sink, never starts a batch and records no event: no target rows, no ledger rows.

Whether a file would be skipped as already loaded is a read-only lookup of its fingerprint in
the audit store: SQLite is opened ``immutable=1`` when it has no ``-wal`` file (even a
``mode=ro`` connection would create ``-wal`` and ``-shm`` files), else ``mode=ro`` through the
existing WAL (the database and ``-wal`` files stay byte-identical); PostgreSQL is read in a
``READ ONLY`` transaction. A store that does not exist yet means no file would be skipped.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from tallyclerk import objstore
from tallyclerk.errors import ConfigError, SourceError, TallyclerkError

__all__ = ["DRY_RUN_BATCH", "ValidateReport", "already_loaded", "validate"]

DRY_RUN_BATCH = "dry-run"
"""The ``batch_id`` validators see in their :class:`~tallyclerk.protocols.BatchContext`."""


@dataclass
class ValidateReport:
    """What a dry run found; :meth:`as_dict` is the CLI's ``--json``.

    ``status`` is ``clean`` (every row would load), ``rejects`` (some rows would be rejected)
    or ``failed`` (a file could not be read as a whole). ``rejects`` holds the first ``limit``
    rejected rows (all when no limit); ``rows_rejected`` counts them all.
    """

    table: str | None
    files: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    limit: int | None = None

    @property
    def rows_read(self) -> int:
        return sum(int(f["rows_read"]) for f in self.files)

    @property
    def rows_valid(self) -> int:
        return sum(int(f["rows_valid"]) for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(int(f["rows_rejected"]) for f in self.files)

    @property
    def status(self) -> str:
        if any(f["status"] == "failed" for f in self.files):
            return "failed"
        return "rejects" if self.rows_rejected else "clean"

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when rows would be rejected or a file failed."""
        return 0 if self.status == "clean" else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "table": self.table,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_rejected": self.rows_rejected,
            "files": self.files,
            "rejects": self.rejects,
            "rejects_truncated": len(self.rejects) < self.rows_rejected,
        }


def validate(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    schema: Any = None,
    table: str | None = None,
    audit: str | None = None,
    into: str = "sqlite:///tallyclerk.db",
    limit: int | None = None,
    format: str | None = None,
    options: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    plugins: Sequence[str] = (),
    pm: pluggy.PluginManager | None = None,
    infer: str | None = None,
    infer_rows: int | None = None,
) -> ValidateReport:
    """Check ``paths`` as ``tallyclerk load`` would, writing nothing (see the module docstring).

    Args:
        paths: the files (one path, or a list of them, as for ``load``).
        schema: a Table Schema file (JSON), a dict or a ``TableSchema``, as for ``load``;
            without one, the table's remembered schema when ``table`` was loaded before
            (``tallyclerk schema``), else, as in a load, the schema inferred from a
            sample of the first file (``infer``/``infer_rows`` in ``options``, the
            ``infer_rows`` setting; text columns when 0).
        table: the target table: with it, each file is looked up in the audit store and
            reported ``would_skip`` when its content is already loaded into ``table``.
        audit: the audit store (default: ``into``; for a DuckDB ``into``, the SQLite file
            beside it, as for ``load``).
        into: the target database (the audit store's default, as for ``load``).
        limit: report at most this many rejected rows (all are counted).
        format: ``csv``, ``jsonl`` or a plugin's format (default: by suffix).
        options: loader options (``delimiter``, ``encoding``...), as the CLI passes them.
        settings: setting overrides (``batch_rows``, ``max_field_bytes``...).
        plugins: plugin modules to load (``-p``), when ``pm`` is not given.
        pm: a plugin manager (default: the built-ins, installed plugins and ``plugins``).
        infer: without ``schema`` nor a remembered one: ``auto`` checks against the schema
            inferred from a sample of the first file (as a load would; the default unless
            ``infer_rows`` is 0), ``none`` against text columns (``--infer``).
        infer_rows: rows sampled (``--infer-rows``; default: the ``infer_rows`` setting).

    Raises:
        ConfigError: a bad table name, schema, format or limit (nothing was read).
    """
    from tallyclerk.dburl import default_audit_url
    from tallyclerk.names import check_table_name
    from tallyclerk.protocols import Config
    from tallyclerk.session import check_encoding, paths_from, schema_from
    from tallyclerk.session import check_format as _check_format
    from tallyclerk.settings import load_settings

    if limit is not None and limit < 0:
        raise ConfigError("--limit must be 0 or more")
    audit_url = audit or default_audit_url(into)
    if table is not None:
        check_table_name(table)
    if pm is None:
        from tallyclerk.plugins import get_plugin_manager

        pm = get_plugin_manager(list(plugins))
    cfg = load_settings(overrides=dict(settings or {}))
    paths = paths_from(paths)
    table_schema = schema_from(schema)
    if table_schema is None and table is not None:
        # as a load would: a table loaded before is checked against its remembered schema
        table_schema = remembered_schema(audit_url, table)
    opts: dict[str, Any] = dict(options or {})
    check_encoding(opts.get("encoding"))
    if format:
        opts["format"] = format
    if infer is not None:
        if infer not in ("auto", "none"):
            raise ConfigError(f"--infer must be auto or none, got {infer!r}")
        opts["infer"] = infer
    if infer_rows is not None:
        if isinstance(infer_rows, bool) or not isinstance(infer_rows, int) or infer_rows < 0:
            raise ConfigError(f"--infer-rows must be 0 or more, got {infer_rows!r}")
        opts["infer_rows"] = infer_rows
    opts.update(settings=cfg, schema=table_schema,
                max_field_bytes=opts.get("max_field_bytes") or cfg.max_field_bytes)
    if opts.get("format"):
        _check_format(pm, str(opts["format"]), opts)
    from tallyclerk.localglob import expand_local

    # orders/*.csv (quoted, or from Python) and s3://bucket/*.csv -> their files, as a load
    paths = objstore.expand(expand_local(paths), cfg)
    loaded: dict[str, str] = {}
    if table is not None:
        loaded = already_loaded(audit_url, table,
                                [p for p in paths if not objstore.is_remote(p)])
    config = Config(command="validate", options=opts, pluginmanager=pm, settings=cfg)
    pm.hook.tallyclerk_configure.call_historic(kwargs={"config": config})
    report = ValidateReport(table=table, limit=limit)
    inferred = False
    try:
        for path in paths:
            with contextlib.ExitStack() as stack:
                local = path
                if objstore.is_remote(path):  # checked from a spool, as a load reads it
                    try:
                        local = stack.enter_context(objstore.fetch(
                            path, cfg, should_stop=_never, sleep=_pause)).local
                    except SourceError as exc:
                        report.files.append(_failed(path, exc))
                        continue
                    if table is not None:
                        found = already_loaded(audit_url, table, [local])
                        if local in found:
                            loaded[path] = found[local]
                if table_schema is None and not inferred:
                    # as a load would: the first file's inferred schema checks every file
                    inferred = True
                    table_schema = _first_schema(pm, path, local, table, opts, cfg)
                    opts["schema"] = table_schema
                report.files.append(
                    _check_file(pm, path, table, table_schema, opts, report, local=local,
                                stores_nan=stores_nan(into)))
            entry = report.files[-1]
            if path in loaded:
                entry["would_skip"] = True
                entry["earlier_batch_id"] = loaded[path]
    finally:
        pm.hook.tallyclerk_unconfigure(config=config)
    return report


def stores_nan(into: str) -> bool:
    """Whether the built-in sink of ``into`` keeps NaN (PostgreSQL, DuckDB; not SQLite), so
    ``validate`` judges NaN as the load into it would; the same two keep integers beyond 64
    bits of a big integer field."""
    scheme = into.split(":", 1)[0].lower()
    return scheme.startswith(("postgres", "duckdb"))


def _entry(path: str) -> dict[str, Any]:
    return {"path": path, "status": "valid", "rows_read": 0, "rows_valid": 0,
            "rows_rejected": 0, "would_skip": False, "earlier_batch_id": None, "error": None}


def _failed(path: str, exc: BaseException) -> dict[str, Any]:
    from tallyclerk.pipeline.entries import message as _message

    entry = _entry(path)
    entry.update(status="failed", error=_message(exc))
    return entry


def _never() -> None:
    return None


def _pause(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def _first_schema(pm: pluggy.PluginManager, path: str, local: str, table: str | None,
                  opts: dict[str, Any], cfg: Any) -> Any:
    """The schema a load would give a new table from this file (inferred from a sample;
    None for text columns, or when the file cannot be read: its check reports that)."""
    from tallyclerk.contract import is_plain_text
    from tallyclerk.first_schema import first_schema
    from tallyclerk.pipeline.entries import unreadable

    if unreadable(local) is not None:  # missing, a FIFO (never opened): its check says so
        return None
    try:
        source = pm.hook.tallyclerk_open_source(path=local, options=opts)
        if source is None:
            return None
        try:
            columns = list(source.columns)
        finally:
            source.close()
        schema, _why = first_schema(path, table or "t", columns, opts, cfg, local=local)
    except (TallyclerkError, OSError) as exc:
        if isinstance(exc, ConfigError):
            raise
        return None
    return None if is_plain_text(schema) else schema


def _check_file(
    pm: pluggy.PluginManager,
    path: str,
    table: str | None,
    schema: Any,
    opts: dict[str, Any],
    report: ValidateReport,
    *,
    local: str | None = None,
    stores_nan: bool = False,
) -> dict[str, Any]:
    """Check one file; ``local``: where it is read from (an object's spool), else ``path``."""
    from tallyclerk._core import KeyCheck
    from tallyclerk.pipeline.entries import message as _message
    from tallyclerk.pipeline.entries import unreadable as _unreadable
    from tallyclerk.pipeline.run import sensitive_columns
    from tallyclerk.protocols import BatchContext
    from tallyclerk.settings import settings_of

    entry = _entry(path)
    local = local or path
    try:
        problem = _unreadable(local)
        if problem is not None:
            raise SourceError(f"{path}: {problem}", path=path)
        source = pm.hook.tallyclerk_open_source(path=local, options=opts)
        if source is None:
            raise SourceError(
                f"{path}: no loader recognises this file (use --format csv|jsonl, or a plugin)",
                path=path,
            )
        try:
            ctx = BatchContext(batch_id=DRY_RUN_BATCH, file_id=0, path=path, table=table or "",
                               schema=schema, options=opts, stores_nan=stores_nan,
                               stores_big_int=stores_nan)
            sensitive = sensitive_columns(schema, settings_of(opts.get("settings")))
            # the schema's primaryKey / unique fields within the file (not against the table:
            # a dry run does not read the target)
            keys = KeyCheck(schema.keys) if schema is not None and schema.keys else None
            for batch in source:
                if sensitive:  # masked in the reasons shown, as in a real load
                    batch.set_sensitive(sensitive)
                pm.hook.tallyclerk_validate_batch(batch=batch, context=ctx)
                pm.hook.tallyclerk_transform_batch(batch=batch, context=ctx)
                if keys is not None:
                    keys.check(batch)
                entry["rows_read"] += batch.num_rows
                if batch.num_rejected:
                    for r in batch.rejects():
                        entry["rows_rejected"] += 1
                        if report.limit is None or len(report.rejects) < report.limit:
                            report.rejects.append({
                                "path": path, "line": r.line, "record_number": r.record_number,
                                "column": r.column, "rule": r.rule, "reason": r.reason,
                            })
        finally:
            source.close()
    except (TallyclerkError, OSError) as exc:
        if isinstance(exc, ConfigError):
            raise
        entry.update(status="failed", error=_message(exc).replace(local, path))
    entry["rows_valid"] = entry["rows_read"] - entry["rows_rejected"]
    if entry["status"] != "failed" and entry["rows_rejected"]:
        entry["status"] = "rejects"
    return entry


def already_loaded(audit_url: str, table: str, paths: Sequence[str]) -> dict[str, str]:
    """``{path: batch id}`` of the ``paths`` whose content is already loaded (or being loaded)
    into ``table``, read without writing to the audit store (see the module docstring)."""
    from tallyclerk import file_fingerprint

    prints: dict[str, str] = {}
    for path in paths:
        try:
            prints[path] = file_fingerprint(path)
        except OSError:
            continue  # reported as a failed file by the check itself
    if not prints:
        return {}
    query = ("SELECT batch_id FROM tallyclerk_files WHERE target_table = :t "
             "AND fingerprint = :f AND status IN ('loaded', 'loading') ORDER BY id DESC")

    def lookup(store: _ReadOnly) -> dict[str, str]:
        if not store.has_table("tallyclerk_files"):
            return {}
        found: dict[str, str] = {}
        for path, fingerprint in prints.items():
            batch = store.scalar(query, {"t": table, "f": fingerprint})
            if batch is not None:
                found[path] = str(batch)
        return found

    found: dict[str, str] = _read_only(audit_url, lookup, {})
    return found


def remembered_schema(audit_url: str, table: str) -> Any:
    """The table's current schema from ``tallyclerk_schemas`` (a ``TableSchema``), or None;
    read without writing, like :func:`already_loaded`."""
    from tallyclerk import TableSchema

    def latest(store: _ReadOnly) -> Any:
        if not store.has_table("tallyclerk_schemas"):
            return None
        return store.scalar("SELECT schema_json FROM tallyclerk_schemas WHERE target_table = :t "
                            "ORDER BY version DESC LIMIT 1", {"t": table})

    found = _read_only(audit_url, latest, None)
    return None if found is None else TableSchema.from_json(str(found))


class _ReadOnly:
    """A read-only connection to the audit store: SQLite through plain ``sqlite3`` (no
    SQLAlchemy), PostgreSQL through SQLAlchemy in a ``READ ONLY`` transaction. SQL with
    ``:name`` parameters (both understand them)."""

    def __init__(self, sqlite: Any = None, core: Any = None) -> None:
        self._sqlite = sqlite
        self._core = core

    def has_table(self, name: str) -> bool:
        if self._sqlite is not None:
            return self._sqlite.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                        "AND name = ?", (name,)).fetchone() is not None
        from sqlalchemy import inspect

        return bool(inspect(self._core).has_table(name))

    def scalar(self, sql: str, params: Mapping[str, Any]) -> Any:
        if self._sqlite is not None:
            row = self._sqlite.execute(sql, dict(params)).fetchone()
            return None if row is None else row[0]
        from sqlalchemy import text

        return self._core.execute(text(sql), dict(params)).scalar()


def _read_only(audit_url: str, read: Any, missing: Any) -> Any:
    """``read(store)`` on a read-only connection to the audit store; ``missing`` when a SQLite
    store does not exist."""
    from tallyclerk.audit.translate import wrap_db_errors
    from tallyclerk.dburl import parse_url

    db = parse_url(audit_url)
    if db.dialect != "sqlite":
        from sqlalchemy import create_engine

        engine = create_engine(db.url)
        try:
            with wrap_db_errors(), engine.connect() as conn:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                result = read(_ReadOnly(core=conn))
                conn.rollback()
                return result
        finally:
            engine.dispose()
    if db.path is None or not os.path.exists(db.path):
        return missing
    path = os.path.abspath(db.path)
    wal = path + "-wal"
    if os.path.exists(wal):
        # a writer is active or left its WAL: a read-only connection reads through it and
        # leaves the database and its -wal as they are
        return _read_sqlite(f"file:{path}?mode=ro", read)
    # no WAL: even a mode=ro connection would create -wal and -shm files; immutable=1
    # reads the file alone. A load that starts meanwhile makes a WAL: then read again
    # through it (its -wal now exists anyway)
    found = _read_sqlite(f"file:{path}?immutable=1", read)
    if os.path.exists(wal):
        return _read_sqlite(f"file:{path}?mode=ro", read)
    return found


def _read_sqlite(uri: str, read: Any) -> Any:
    import sqlite3

    from tallyclerk.audit.translate import wrap_db_errors

    with wrap_db_errors():
        conn = sqlite3.connect(uri, uri=True)
        try:
            return read(_ReadOnly(sqlite=conn))
        finally:
            conn.close()
