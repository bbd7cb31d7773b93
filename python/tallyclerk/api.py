"""The Python API: :func:`load` (what ``tallyclerk load`` runs) and its building blocks.

``tallyclerk.load(paths, table=...)`` checks its arguments (a bad one raises
:class:`~tallyclerk.errors.ConfigError`, the CLI's exit status 2), runs one load session
(:mod:`tallyclerk.session`) in this process, or in ``workers`` processes sharing a work list
(:mod:`tallyclerk.workers`), and returns a :class:`~tallyclerk.report.LoadReport`. A file that
fails is in the report, not an exception; the sink or the audit store failing after retries
raises :class:`~tallyclerk.errors.StoreError` (the CLI's exit status 3).

The function keeps no state between calls: each call has its own plugin manager, sink, audit
service (and their threads and connections), all closed before it returns, so calls may run one
after another, after a failed call, or from several threads at once. It installs no signal
handler; pass a :class:`~tallyclerk.StopToken` as ``stop`` to cancel a load from another thread
(the command line sets one from SIGINT/SIGTERM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from tallyclerk.errors import ConfigError
from tallyclerk.report import LoadReport
from tallyclerk.session import LoadRequest, LoadSession, check_encoding, schema_from

if TYPE_CHECKING:
    import argparse

    import pluggy

    from tallyclerk._core import TableSchema
    from tallyclerk.pipeline import StopToken
    from tallyclerk.progress import LoadProgress
    from tallyclerk.settings import Settings

__all__ = ["ON_ERROR", "load", "make_request", "plugin_manager", "run"]

ON_ERROR = ("continue", "skip-file", "abort")

PathArg = Union[str, "os.PathLike[str]"]
SchemaArg = Union[str, "os.PathLike[str]", Mapping[str, Any], "TableSchema", None]


def _paths(paths: PathArg | Sequence[PathArg]) -> tuple[str, ...]:
    from tallyclerk.session import paths_from

    return paths_from(paths)


def _count(name: str, value: object, minimum: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _settings(settings: Settings | Mapping[str, Any] | None) -> Settings:
    from tallyclerk.settings import Settings, load_settings

    if isinstance(settings, Settings):
        return settings
    if settings is None or isinstance(settings, Mapping):
        return load_settings(overrides=settings)
    raise ConfigError(
        f"settings must be a Settings or a mapping of overrides, not {type(settings).__name__}"
    )


def _check_delimiter(delimiter: Any) -> None:
    """``--delimiter``: one character (``tab``/``\\t`` for a tab), refused before the load
    starts rather than by the CSV loader once a batch is recorded."""
    if delimiter is None or delimiter in ("", "tab", "\\t"):
        return
    if (not isinstance(delimiter, str) or len(delimiter) != 1 or not delimiter.isascii()
            or delimiter in "\r\n"):
        raise ConfigError("--delimiter must be one ASCII character other than CR or LF "
                          f"('tab' for a tab), got {delimiter!r}")


def make_request(
    paths: PathArg | Sequence[PathArg],
    *,
    table: str,
    into: str = "sqlite:///tallyclerk.db",
    audit: str | None = None,
    schema: SchemaArg = None,
    format: str | None = None,
    on_error: str = "continue",
    max_rejects: int | None = None,
    force: bool = False,
    workers: int | None = None,
    load_id: str | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    plugins: Sequence[str] = (),
    compression: str | None = None,
    mode: str | None = None,
    primary_key: str | Sequence[str] | None = None,
    columns: str | None = None,
    infer: str | None = None,
    infer_rows: int | None = None,
) -> LoadRequest:
    """Check the arguments of a load (see :func:`load`); ConfigError names the bad one."""
    from tallyclerk import modes
    from tallyclerk.dburl import default_audit_url, parse_url
    from tallyclerk.names import check_table_name

    check_table_name(table)
    if not isinstance(into, str) or not into:
        raise ConfigError("into must be a database URL")
    if audit is not None and (not isinstance(audit, str) or not audit):
        raise ConfigError("audit must be a database URL or None")
    if on_error not in ON_ERROR:
        raise ConfigError(f"--on-error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    max_rejects = _count("--max-rejects", max_rejects, 0)
    workers = _count("--workers", workers, 1)
    if load_id is not None:
        from tallyclerk.audit.worklist import check_load_id

        if not isinstance(load_id, str):
            raise ConfigError(f"--load-id must be a string, got {load_id!r}")
        check_load_id(load_id)
    if format is not None and (not isinstance(format, str) or not format):
        raise ConfigError(f"format must be a non-empty string, got {format!r}")
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"options must be a mapping, not {type(options).__name__}")
    opts = dict(options or {})
    _check_delimiter(opts.get("delimiter"))
    check_encoding(opts.get("encoding"))
    if compression is not None:
        from tallyclerk.inputs import COMPRESSIONS

        if compression not in COMPRESSIONS:
            raise ConfigError(f"--compression must be one of {', '.join(COMPRESSIONS)}, "
                              f"got {compression!r}")
        opts["compression"] = compression
    if mode is not None:
        opts["mode"] = mode
    if primary_key is not None:
        opts["primary_key"] = (primary_key if isinstance(primary_key, str)
                               else ",".join(primary_key))
    if columns is not None:
        from tallyclerk.contract import COLUMN_MODES

        if columns not in COLUMN_MODES:
            raise ConfigError(f"--columns must be one of {', '.join(COLUMN_MODES)}, "
                              f"got {columns!r}")
        opts["columns"] = columns
    if infer is not None:
        if infer not in ("auto", "none"):
            raise ConfigError(f"--infer must be auto or none, got {infer!r}")
        opts["infer"] = infer
    if infer_rows is not None:
        opts["infer_rows"] = _count("--infer-rows", infer_rows, 0)
    if isinstance(schema, (str, os.PathLike)):
        opts["schema_path"] = os.fspath(schema)
    path_list = _paths(paths)
    resolved = _settings(settings)
    table_schema = schema_from(schema)
    write_mode = modes.resolve(opts, table_schema)  # a bad mode or key: ConfigError
    if write_mode.replace and (workers is not None or load_id is not None):
        raise ConfigError("--mode replace cannot be shared among --workers or a --load-id "
                          "(one batch rebuilds the table); use one process")
    parse_url(audit or default_audit_url(into))  # the audit store: sqlite or postgresql
    return LoadRequest(
        paths=path_list, table=table, settings=resolved, into=into, audit=audit,
        schema=table_schema,
        schema_json=None if table_schema is None else table_schema.to_json(),
        format=format or None, on_error=on_error, max_rejects=max_rejects, force=bool(force),
        workers=workers, load_id=load_id, options=opts,
        plugins=tuple(plugins),
    )


def plugin_manager(plugins: Sequence[object] | None) -> tuple[pluggy.PluginManager, list[str]]:
    """A plugin manager for one load: the built-in and installed plugins, then ``plugins``
    (module names as ``-p`` takes them, ``no:NAME`` to block one, or plugin objects).
    Returns it and the names (what worker processes load)."""
    from tallyclerk.plugins import get_plugin_manager

    if plugins is not None and (isinstance(plugins, (str, bytes))
                                or not isinstance(plugins, Sequence)):
        raise ConfigError("plugins must be a list of plugin names or objects")
    names = [p for p in plugins or () if isinstance(p, str)]
    pm = get_plugin_manager(names)
    for plugin in plugins or ():
        if not isinstance(plugin, str) and not pm.is_registered(plugin):
            pm.register(plugin)
    return pm, names


def run(
    req: LoadRequest,
    pm: pluggy.PluginManager,
    *,
    stop: StopToken | None = None,
    progress: Callable[[LoadProgress], None] | None = None,
    command: str = "load",
    namespace: argparse.Namespace | None = None,
) -> LoadReport:
    """Run a checked request with a ready plugin manager (what :func:`load` and the CLI do)."""
    from tallyclerk.localglob import expand_local
    from tallyclerk.remote import is_remote

    # 'orders/*.csv' quoted, or from Python: the files it matches (no shell expanded it)
    req = dataclasses.replace(req, paths=tuple(expand_local(req.paths)))

    # object-store machinery (fsspec, spools) only for a load with object URLs (issue 16.1)
    remote = any(is_remote(p) for p in req.paths)
    if remote:
        from tallyclerk import objstore

        # s3://bucket/*.csv -> its objects (a URL with credentials in it, or a scheme whose
        # extra is missing: ConfigError before anything starts)
        req = dataclasses.replace(req, paths=tuple(objstore.expand(req.paths, req.settings)))
    if req.parallel:
        from tallyclerk.workers import run_parallel

        return run_parallel(req, pm, stop=stop, progress=progress)
    from tallyclerk.fingerprints import prefetch

    # hashing and the first object's copy run beside the audit store's and the sink's set-up
    # (object n+1 is copied while object n loads); stopped before this returns, whatever
    # happens
    fetch = prefetch(req.paths)
    with contextlib.ExitStack() as stack:
        stack.callback(fetch.close)
        if remote:
            from tallyclerk import objprefetch

            stack.callback(objprefetch.prefetch(req.paths, req.settings).close)
        with LoadSession(req, pm, stop=stop, progress=progress, command=command,
                         namespace=namespace) as session:
            report = session.run(req.paths)
            signum = session.stop.signum
            target = session.target
    return LoadReport.from_dict(report, into=target, signal=signum)


def load(
    paths: PathArg | Sequence[PathArg],
    *,
    table: str,
    into: str = "sqlite:///tallyclerk.db",
    audit: str | None = None,
    schema: SchemaArg = None,
    format: str | None = None,
    on_error: str = "continue",
    max_rejects: int | None = None,
    force: bool = False,
    workers: int = 1,
    load_id: str | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
    plugins: Sequence[object] | None = None,
    progress: Callable[[LoadProgress], None] | None = None,
    options: Mapping[str, Any] | None = None,
    stop: StopToken | None = None,
    compression: str | None = None,
    mode: str = "append",
    primary_key: str | Sequence[str] | None = None,
    columns: str | None = None,
    infer: str | None = None,
    infer_rows: int | None = None,
) -> LoadReport:
    """Load ``paths`` into ``table``, validating every record and auditing every file.

    Args:
        paths: one path or a list of paths.
        table: the target table (created if missing).
        into: the target database URL (``sqlite:///file.db``, ``postgresql://...``, a plugin's).
        audit: the audit store's URL (default: ``into``; for ``duckdb:///PATH``, ``PATH.audit.db``).
        schema: a Frictionless Table Schema: a path to its JSON file, a dict or a
            :class:`~tallyclerk.TableSchema` (default: every column text, from the header).
        format: the file format (``csv``, ``jsonl``, a plugin's; default: by suffix).
        on_error: ``continue`` (quarantine bad rows), ``skip-file`` or ``abort``.
        max_rejects: fail (roll back) a file with more than this many rejected rows.
        force: load files again even if their content is already loaded.
        workers: share the load among this many worker processes (1: in this process).
        load_id: the name of a load shared by several calls or machines (implies the work
            list, even with ``workers=1``).
        settings: a :class:`~tallyclerk.settings.Settings`, or a mapping of overrides applied
            over the config file and ``TALLYCLERK_*`` variables (``{"batch_rows": 5000}``).
        plugins: plugin module names (like ``-p``; ``"no:NAME"`` blocks one) or plugin objects
            registered for this load only.
        progress: called with a :class:`~tallyclerk.report.LoadProgress` after each record
            batch and each file (on the loading thread; keep it quick).
        options: loader and plugin options by their CLI name (``{"delimiter": ";"}``).
        stop: a :class:`~tallyclerk.StopToken`; ``stop.stop()`` from another thread rolls the
            current file back and ends the load ``cancelled``.
        compression: ``auto`` (by the content's magic bytes), ``none``, ``gzip``, ``bzip2``,
            ``xz`` or ``zstd`` (``--compression``; default: the ``compression`` setting).
        mode: ``append`` (add the rows), ``replace`` (rebuild the table from these files,
            swapped in at the end, all or nothing) or ``merge`` (update rows by key, insert the
            others) (``--mode``; see :mod:`tallyclerk.modes`).
        primary_key: the key of ``mode="merge"``: ``"a,b"`` or ``["a", "b"]``
            (``--primary-key``; default: the schema's ``primaryKey``).
        columns: what happens to columns a file has and the table lacks: ``evolve`` (add
            them, a new schema version), ``freeze`` (fail the file) or ``discard`` (drop them,
            recorded per file) (``--columns``; default: the ``columns`` setting, ``evolve``).
        infer: a new table without ``schema``: ``auto`` infers its types from a sample of
            the first file (10,000 rows unless ``infer_rows``), ``none`` loads every column as
            text (``--infer``; default: ``auto`` unless ``infer_rows`` is 0).
        infer_rows: rows sampled (``--infer-rows``; default: the ``infer_rows`` setting,
            10,000; 0: text columns).

    Returns:
        the :class:`~tallyclerk.report.LoadReport` (failed files are in it).

    Raises:
        ConfigError: a bad argument, schema, URL or plugin, before anything is loaded.
        StoreError: the sink or the audit store failed after retries (``SinkError``,
            ``AuditStoreError``, ``RepositoryError``).
    """
    _count("--workers", workers, 1)  # a ConfigError, not a TypeError, for workers="2"
    pm, names = plugin_manager(plugins)
    if workers > 1 or load_id is not None:
        if plugins is not None and len(names) != len(plugins):
            raise ConfigError("plugin objects cannot be passed to worker processes: "
                              "give their module names")
    req = make_request(
        paths, table=table, into=into, audit=audit, schema=schema, format=format,
        on_error=on_error, max_rejects=max_rejects, force=force,
        workers=workers if (workers != 1 or load_id is not None) else None,
        load_id=load_id, settings=settings, options=options, plugins=names,
        compression=compression, mode=mode, primary_key=primary_key, columns=columns,
        infer=infer, infer_rows=infer_rows,
    )
    return run(req, pm, stop=stop, progress=progress)
