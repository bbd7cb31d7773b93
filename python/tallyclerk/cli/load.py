"""``tallyclerk load PATH... --table NAME``: the main command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from tallyclerk.cli.output import Output
from tallyclerk.errors import ConfigError
from tallyclerk.inputs import COMPRESSIONS

if TYPE_CHECKING:
    from tallyclerk.report import LoadProgress, LoadReport
    from tallyclerk.session import LoadRequest

__all__ = ["add_parser", "execute", "exit_status", "request_from_args", "run"]

FORMATS = ("csv", "tsv", "jsonl")


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.api import ON_ERROR
    from tallyclerk.cli.options import (
        batch_options,
        db_options,
        infer_options,
        non_negative_int,
        plugin_option,
        schema_options,
    )

    p: argparse.ArgumentParser = sub.add_parser(
        "load",
        help="load files into a table",
        description="Load CSV/JSONL files (more formats through plugins) into TABLE, "
        "validating every record, quarantining bad rows and auditing every file. "
        "A file whose content is already loaded into TABLE is skipped (unless --force).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="files to load: local paths, or s3://, gs://, az://, https:// URLs "
                   "(object-store globs such as 's3://bucket/2026/*.csv' are expanded)")
    p.add_argument("--table", required=True, help="target table (created if missing)")
    db_options(p)
    schema_options(p, "|".join(FORMATS))
    p.add_argument("--on-error", choices=ON_ERROR, default="continue",
                   help="bad rows: continue (quarantine, load the rest; default), "
                   "skip-file (roll the file back), abort (roll back and stop)")
    p.add_argument("--max-rejects", type=non_negative_int, metavar="N", default=None,
                   help="fail (roll back) a file with more than N rejected rows")
    p.add_argument("--force", action="store_true",
                   help="load files again even if their content is already loaded "
                   "(replacing the earlier rows)")
    p.add_argument("--mode", choices=("append", "replace", "merge"), default="append",
                   help="append rows (default); replace the table with this load's files "
                   "(swapped in at the end, all or nothing); merge: update rows whose key "
                   "exists, insert the others")
    p.add_argument("--primary-key", metavar="COL[,COL]", default=None,
                   help="the key of --mode merge (default: the schema's primaryKey)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--delimiter", default=None,
                   help="CSV field delimiter (default ,; 'tab' for a tab)")
    p.add_argument("--encoding", default="utf-8", help="source encoding (default utf-8)")
    p.add_argument("--compression", default=None, choices=COMPRESSIONS,
                   help="input compression (default auto: gzip, bzip2, xz, zstd recognised "
                   "by the content's magic bytes; setting compression)"),
    batch_options(p)
    infer_options(p)
    p.add_argument("--columns", choices=("evolve", "freeze", "discard"), default=None,
                   help="columns a file has and the table lacks: evolve (add them, a new "
                   "schema version; the default), freeze (fail the file), discard (drop them, "
                   "recorded per file); setting `columns`")
    p.add_argument("--workers", type=non_negative_int, metavar="N", default=None,
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


_BUILTIN_DESTS = frozenset(
    {"paths", "table", "into", "audit", "schema", "on_error", "max_rejects", "force", "json",
     "plugins", "func", "pm", "command", "debug", "log_format", "log_level", "batch_rows",
     "correlation_id", "global_log_format", "global_log_level", "global_correlation_id",
     "max_field_bytes", "workers", "load_id", "format"}
)


def request_from_args(args: argparse.Namespace) -> LoadRequest:
    """The checked load request of a parsed ``tallyclerk load`` command line (ConfigError)."""
    from tallyclerk.api import make_request

    options = {k: v for k, v in vars(args).items() if k not in _BUILTIN_DESTS}
    overrides: dict[str, Any] = {}
    if args.batch_rows is not None:
        overrides["batch_rows"] = args.batch_rows
    if args.max_field_bytes is not None:
        overrides["max_field_bytes"] = args.max_field_bytes
    return make_request(
        list(args.paths), table=args.table, into=args.into, audit=args.audit,
        schema=args.schema, format=args.format, on_error=args.on_error,
        max_rejects=args.max_rejects, force=args.force, workers=args.workers,
        load_id=args.load_id, settings=overrides, options=options,
        plugins=list(args.plugins or ()),
    )


def execute(
    req: LoadRequest,
    pm: pluggy.PluginManager,
    *,
    progress: Callable[[LoadProgress], None] | None = None,
    command: str = "load",
    namespace: argparse.Namespace | None = None,
) -> LoadReport:
    """Run a load for the command line: the API's :func:`tallyclerk.api.run`, with SIGINT and
    SIGTERM stopping it (the handlers are the CLI's: the API never installs any)."""
    from tallyclerk.api import run as run_load
    from tallyclerk.cli.gcpause import start_up_over
    from tallyclerk.pipeline import StopToken
    from tallyclerk.session import stop_on_signals

    start_up_over()
    stop = StopToken()
    with stop_on_signals(stop):
        return run_load(req, pm, stop=stop, progress=progress, command=command,
                        namespace=namespace)


def exit_status(report: LoadReport) -> int:
    """0 no file failed; 1 a file failed or the load was stopped or timed out; 128+N on
    signal N; a worker process's own status (2, 3, 70) when one ended a shared load early."""
    rc = report.exit_status
    crashed = [c for c in report.worker_exit_codes if c not in (0, 1) and c >= 0]
    if rc == 1 and crashed and report.signal is None:
        return crashed[0]
    return rc


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.cli.report import ProgressBar, print_report

    req = request_from_args(args)
    bar = ProgressBar(out) if (not args.json and out.stderr_is_tty) else None
    try:
        report = execute(req, args.pm, progress=bar, namespace=args)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        out.json(report.to_dict())
    else:
        print_report(out, report, target=report.into)
    return exit_status(report)
