"""``tallyclerk watch SOURCE... --table NAME``: load each new file of folders, globs or
object-store prefixes (``s3://``, ``gs://``, ``az://``), once.

A thin adapter over :func:`tallyclerk.watcher.watch` (see that module for readiness, outages
and stopping). Takes the options of ``tallyclerk load`` (but not ``--force``, ``--workers``:
several ``watch`` processes on one audit store share the work by themselves) and:

``--mode append|merge`` and ``--primary-key`` as for ``load`` (``replace`` would empty the
table at every batch). ``--interval S`` seconds between listings (default 5); ``--settle S``
seconds a file's size and modification time must stay unchanged (default 2); ``--marker NAME``
a marker file instead (``_SUCCESS`` in the folder, or ``{name}.done`` beside each file);
``--health-port P`` serve ``GET /health`` (``--health-addr``, default 127.0.0.1);
``--max-cycles N`` stop after N listings (``--once``: one).
Exit 0 when stopped by ``--max-cycles`` with no failed file, 1 with
one or when the last listing of a source failed, 130/143 on SIGINT/SIGTERM (the file in
flight rolled back), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import pluggy

from tallyclerk.cli.output import Output
from tallyclerk.inputs import COMPRESSIONS

__all__ = ["add_parser", "run"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0 or value != value:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.api import ON_ERROR
    from tallyclerk.cli.load import FORMATS
    from tallyclerk.cli.options import (
        batch_options,
        db_options,
        infer_options,
        non_negative_int,
        plugin_option,
        positive_int,
        schema_options,
        text_options,
    )

    p: argparse.ArgumentParser = sub.add_parser(
        "watch",
        help="load each new file of folders, globs or buckets, exactly once, until stopped",
        description="List SOURCE folders, globs or object-store prefixes every --interval "
        "seconds and load each new, complete file into TABLE exactly once (the audit store's "
        "ledger decides), until SIGINT/SIGTERM. Several watchers on one PostgreSQL audit "
        "store share the work.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="folders, globs, or s3://, gs://, az:// prefixes or globs to watch")
    p.add_argument("--table", required=True, help="target table (created if missing)")
    db_options(p)
    schema_options(p, "|".join(FORMATS))
    p.add_argument("--on-error", choices=ON_ERROR, default="continue",
                   help="bad rows: continue (default), skip-file, abort (the batch)")
    p.add_argument("--max-rejects", type=non_negative_int, metavar="N", default=None,
                   help="fail (roll back) a file with more than N rejected rows")
    p.add_argument("--mode", choices=("append", "merge"), default="append",
                   help="append rows (default); merge: update rows whose key exists, insert "
                   "the others")
    p.add_argument("--primary-key", metavar="COL[,COL]", default=None,
                   help="the key of --mode merge (default: the schema's primaryKey)")
    p.add_argument("--json", action="store_true", help="print a summary as JSON when stopped")
    text_options(p)
    p.add_argument("--compression", default=None, choices=COMPRESSIONS,
                   help="input compression (default auto: by the content's magic bytes)")
    batch_options(p)
    infer_options(p)
    p.add_argument("--columns", choices=("evolve", "freeze", "discard"), default=None,
                   help="columns a file has and the table lacks: evolve (default), freeze, "
                   "discard (as for load; setting columns)")
    p.add_argument("--interval", type=_seconds, metavar="S", default=5.0,
                   help="seconds between listings (default 5)")
    p.add_argument("--settle", type=_seconds, metavar="S", default=2.0,
                   help="seconds a file must stay unchanged before it is loaded (default 2)")
    p.add_argument("--marker", metavar="NAME", default=None,
                   help="load a file once a marker exists instead: _SUCCESS (in its folder) "
                   "or {name}.done (beside it)")
    p.add_argument("--health-port", type=int, metavar="PORT", default=None,
                   help="serve GET /health on PORT while watching (0: any free port)")
    p.add_argument("--health-addr", metavar="ADDR", default="127.0.0.1",
                   help="address of the health endpoint (default 127.0.0.1)")
    p.add_argument("--max-cycles", type=positive_int, metavar="N", default=None,
                   help="stop after N listings (default: run until stopped)")
    p.add_argument("--once", dest="max_cycles", action="store_const", const=1,
                   help="one listing: load what is ready, then exit")
    plugin_option(p)
    if pm is not None:
        pm.hook.tallyclerk_addoption.call_historic(kwargs={"parser": p, "pluginmanager": pm})
    p.set_defaults(func=run)
    return p


_OWN = frozenset(
    {"sources", "table", "into", "audit", "schema", "on_error", "max_rejects", "json", "plugins",
     "func", "pm", "command", "debug", "log_format", "log_level", "correlation_id",
     "global_log_format", "global_log_level", "global_correlation_id", "batch_rows",
     "max_field_bytes", "format", "compression", "delimiter", "encoding", "interval", "settle",
     "marker", "health_port", "health_addr", "max_cycles", "columns", "infer", "infer_rows"}
)


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.pipeline import StopToken
    from tallyclerk.session import stop_on_signals
    from tallyclerk.watcher import watch

    # one JSON line per file is the point of a watcher's log: at INFO unless told otherwise
    if not (args.log_level or args.global_log_level or args.debug
            or os.environ.get("TALLYCLERK_LOG_LEVEL")):
        logging.getLogger("tallyclerk.watch").setLevel(logging.INFO)
    options = {k: v for k, v in vars(args).items() if k not in _OWN}
    if args.max_field_bytes is not None:
        options["max_field_bytes"] = args.max_field_bytes
    overrides = {k: v for k, v in {"batch_rows": args.batch_rows,
                                   "max_field_bytes": args.max_field_bytes}.items()
                 if v is not None}
    stop = StopToken()
    with stop_on_signals(stop):
        summary = watch(
            args.sources, args.table, into=args.into, audit=args.audit, schema=args.schema,
            format=args.format, compression=args.compression, delimiter=args.delimiter,
            encoding=args.encoding, on_error=args.on_error, max_rejects=args.max_rejects,
            columns=args.columns, infer=args.infer, infer_rows=args.infer_rows,
            interval=args.interval, settle=args.settle, marker=args.marker,
            options=options, settings=overrides, stop=stop, max_cycles=args.max_cycles,
            health_port=args.health_port, health_addr=args.health_addr, pm=args.pm,
            namespace=args,
        )
    if args.json:
        out.json(summary.as_dict())
    else:
        s = summary
        out.line(f"watched {s.cycles} listing(s): {s.files_loaded} loaded, {s.files_skipped} "
                 f"skipped, {s.files_failed} failed, {s.rows_written} rows written, "
                 f"{s.outages} outage(s)"
                 + (f", {s.sources_failing} source(s) failing" if s.sources_failing else ""))
    if summary.signum is not None:
        return 128 + summary.signum
    return 1 if summary.files_failed or summary.sources_failing else 0
