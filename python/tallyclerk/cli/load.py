"""``tallyclerk load PATH... --table NAME``: the main command."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pluggy

from tallyclerk.cli.output import Output
from tallyclerk.errors import ConfigError, SchemaError, TallyclerkError
from tallyclerk.inputs import COMPRESSIONS

__all__ = ["LoadRequest", "add_parser", "execute", "exit_status", "read_schema", "run"]

FORMATS = ("csv", "tsv", "jsonl")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli import db_options, plugin_option
    from tallyclerk.pipeline import ON_ERROR

    p: argparse.ArgumentParser = sub.add_parser(
        "load",
        help="load files into a table",
        description="Load CSV/JSONL files (more formats through plugins) into TABLE, "
        "validating every record, quarantining bad rows and auditing every file. "
        "A file whose content is already loaded into TABLE is skipped (unless --force).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to load")
    p.add_argument("--table", required=True, help="target table (created if missing)")
    db_options(p)
    p.add_argument("--schema", metavar="FILE", help="Frictionless Table Schema (JSON)")
    p.add_argument("--format", default=None, metavar="|".join(FORMATS),
                   help="file format (default: by suffix; plugins add formats)")
    p.add_argument("--on-error", choices=ON_ERROR, default="continue",
                   help="bad rows: continue (quarantine, load the rest; default), "
                   "skip-file (roll the file back), abort (roll back and stop)")
    p.add_argument("--max-rejects", type=_positive_int, metavar="N", default=None,
                   help="fail (roll back) a file with more than N rejected rows")
    p.add_argument("--force", action="store_true",
                   help="load files again even if their content is already loaded "
                   "(replacing the earlier rows)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--delimiter", default=None,
                   help="CSV field delimiter (default ,; 'tab' for a tab)")
    p.add_argument("--encoding", default="utf-8", help="source encoding (default utf-8)")
    p.add_argument("--compression", default=None, choices=COMPRESSIONS,
                   help="input compression (default auto: gzip, bzip2, xz, zstd recognised "
                   "by the content's magic bytes; setting compression)"),
    p.add_argument("--batch-rows", type=_positive_int, metavar="N", default=None,
                   help="rows per record batch (0: adaptive)")
    p.add_argument("--max-field-bytes", type=_positive_int, metavar="N", default=None,
                   help="largest field (CSV) or line (JSONL) accepted")
    p.add_argument("--workers", type=_positive_int, metavar="N", default=None,
                   help="share the load among N worker processes (files are claimed through "
                   "the audit store; see --load-id)")
    p.add_argument("--load-id", metavar="ID", default=None,
                   help="name of a load shared by several commands (e.g. on several machines "
                   "against one PostgreSQL audit store); implies --workers 1 if not given")
    plugin_option(p)
    if pm is not None:
        add_plugin_options(p, pm)
    p.set_defaults(func=run)
    return p


def add_plugin_options(parser: argparse.ArgumentParser, pm: pluggy.PluginManager) -> None:
    """Call ``tallyclerk_addoption``; two plugins (or a plugin and tallyclerk) adding the same
    option is a configuration error (exit 2) naming both."""
    builtin = {s for a in parser._actions for s in a.option_strings}
    try:
        pm.hook.tallyclerk_addoption.call_historic(
            kwargs={"parser": parser, "pluginmanager": pm}
        )
    except argparse.ArgumentError as exc:
        raise ConfigError(_option_clash(pm, builtin, exc)) from None


def _option_clash(pm: pluggy.PluginManager, builtin: set[str], exc: argparse.ArgumentError) -> str:
    """Which plugins add the options of ``exc`` ("conflicting option string(s): --x")."""
    clashing = set(str(exc).split(":", 1)[-1].replace(",", " ").split())
    owners: dict[str, list[str]] = {}
    for impl in reversed(pm.hook.tallyclerk_addoption.get_hookimpls()):  # in call order
        scratch = argparse.ArgumentParser(add_help=False)
        try:
            impl.function(**{n: {"parser": scratch, "pluginmanager": pm}[n]
                             for n in impl.argnames})
        except Exception:  # noqa: BLE001 - only looking for the option strings
            continue
        for action in scratch._actions:
            for s in action.option_strings:
                owners.setdefault(s, []).append(impl.plugin_name)
    for option in sorted(clashing):
        names = owners.get(option, [])
        if option in builtin and names:
            return (f"plugin {names[0]!r} adds the option {option}, which tallyclerk load "
                    "already has; rename the plugin's option")
        if len(names) > 1:
            return (f"plugins {names[0]!r} and {names[1]!r} both add the option {option}; "
                    "block one with -p no:NAME or TALLYCLERK_LOAD_PLUGINS")
    return f"a plugin's option clashes with another: {exc}"


def read_schema(path: str | None) -> Any:
    """Load a Table Schema file; :class:`SchemaError` (exit 2) when unreadable or invalid."""
    if path is None:
        return None
    from tallyclerk import TableSchema

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SchemaError(f"cannot read schema {path}: {reason}") from exc
    try:
        return TableSchema.from_json(text)
    except SchemaError as exc:
        raise SchemaError(f"invalid schema {path}: {exc}") from exc


@dataclass
class LoadRequest:
    paths: list[str]
    table: str
    into: str = "sqlite:///tallyclerk.db"
    audit: str | None = None
    schema: str | None = None
    on_error: str = "continue"
    max_rejects: int | None = None
    force: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def handle_signals(stop: Any) -> Iterator[None]:
    """SIGINT/SIGTERM ask the pipeline to stop (the current file rolls back); a second
    SIGINT raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.stop(f"interrupted by {signal.Signals(signum).name}", signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def execute(
    req: LoadRequest,
    pm: pluggy.PluginManager,
    *,
    progress: Any = None,
    command: str = "load",
    namespace: argparse.Namespace | None = None,
) -> tuple[dict[str, Any], int | None, str]:
    """Run one load; returns (report, the stopping signal or None, the sink's masked URL).

    Raises ConfigError for configuration problems before anything is loaded.
    """
    from tallyclerk.audit import AuditService
    from tallyclerk.dburl import parse_url
    from tallyclerk.names import check_table_name
    from tallyclerk.pipeline import Pipeline, StopToken
    from tallyclerk.protocols import Config
    from tallyclerk.settings import load_settings

    check_table_name(req.table)
    settings = load_settings(overrides=req.overrides)
    schema = read_schema(req.schema)
    audit_url = req.audit or req.into
    parse_url(audit_url)  # the audit store: sqlite or postgresql, else ConfigError
    options: dict[str, Any] = dict(req.options)
    options.update(settings=settings, schema=schema,
                   max_field_bytes=options.get("max_field_bytes") or settings.max_field_bytes,
                   compression=options.get("compression") or settings.compression)
    # what the hook reference promises every loader: these keys, with the --help defaults
    options.setdefault("format", None)
    options.setdefault("delimiter", None)
    options["encoding"] = options.get("encoding") or "utf-8"
    if options.get("format"):
        _check_format(pm, str(options["format"]), options)
    config = Config(command=command, options=options, pluginmanager=pm, settings=settings,
                    namespace=namespace)
    pm.hook.tallyclerk_configure.call_historic(kwargs={"config": config})
    try:
        sink = pm.hook.tallyclerk_open_sink(url=req.into, options=options)
        if sink is None:
            from tallyclerk.dburl import mask_url

            scheme = req.into.split("://", 1)[0] if "://" in req.into else req.into
            raise ConfigError(
                f"unknown URL scheme {scheme!r} in --into {mask_url(req.into)!r} "
                "(no sink plugin accepts it; expected sqlite:/// or postgresql://)"
            )
        try:
            stop = StopToken()
            with AuditService(audit_url, settings=settings) as audit, handle_signals(stop):
                pipeline = Pipeline(settings, pm, audit, sink, into_url=req.into, stop=stop,
                                    progress=progress)
                report = pipeline.run(
                    req.paths, req.table, schema, options,
                    on_error=req.on_error, max_rejects=req.max_rejects, force=req.force,
                )
            return report, stop.signum, str(getattr(sink, "url", ""))
        finally:
            sink.close()
    finally:
        pm.hook.tallyclerk_unconfigure(config=config)


def _check_format(pm: pluggy.PluginManager, fmt: str, options: Mapping[str, Any]) -> None:
    """Refuse a ``--format`` no loader claims, before anything starts (exit 2).

    Loaders decide by format before they open anything, so asking them to open a path that
    does not exist tells which claim the format: a claiming loader raises (or returns a
    source, closed at once); the others return None.
    """
    probe = f"\0tallyclerk-format-probe.{fmt}"
    try:
        source = pm.hook.tallyclerk_open_source(path=probe, options=options)
    except (TallyclerkError, OSError, ValueError):
        return
    if source is None:
        raise ConfigError(
            f"no loader for --format {fmt!r} (built in: csv, tsv, jsonl; or a plugin's)"
        )
    close = getattr(source, "close", None)
    if callable(close):
        close()


def exit_status(report: Mapping[str, Any], signum: int | None) -> int:
    """0 no file failed; 1 a file failed or the batch timed out/failed; 128+N on signal N."""
    if signum is not None:
        return 128 + signum
    files: Sequence[Mapping[str, Any]] = report.get("files") or []
    if any(f.get("status") == "failed" for f in files):
        return 1
    if report.get("status") in ("failed", "timed_out", "cancelled"):
        return 1
    return 0


_BUILTIN_DESTS = frozenset(
    {"paths", "table", "into", "audit", "schema", "on_error", "max_rejects", "force", "json",
     "plugins", "func", "pm", "command", "debug", "log_format", "log_level", "batch_rows",
     "correlation_id", "global_log_format", "global_log_level", "global_correlation_id",
     "max_field_bytes", "workers", "load_id"}
)


def request_from_args(args: argparse.Namespace) -> LoadRequest:
    options = {k: v for k, v in vars(args).items() if k not in _BUILTIN_DESTS}
    overrides: dict[str, Any] = {}
    if args.batch_rows is not None:
        overrides["batch_rows"] = args.batch_rows
    if args.max_field_bytes is not None:
        overrides["max_field_bytes"] = args.max_field_bytes
        options["max_field_bytes"] = args.max_field_bytes
    return LoadRequest(
        paths=list(args.paths), table=args.table, into=args.into, audit=args.audit,
        schema=args.schema, on_error=args.on_error, max_rejects=args.max_rejects,
        force=args.force, options=options, overrides=overrides,
    )


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.cli.report import ProgressBar, print_report

    if getattr(args, "workers", None) is not None or getattr(args, "load_id", None) is not None:
        from tallyclerk.workers import run_parallel

        return run_parallel(args, out)
    req = request_from_args(args)
    bar = ProgressBar(out) if (not args.json and out.stderr_is_tty) else None
    try:
        report, signum, target = execute(req, args.pm, progress=bar, namespace=args)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        out.json(report)
    else:
        print_report(out, report, target=target)
    return exit_status(report, signum)
