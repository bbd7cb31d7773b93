"""``tallyclerk replay``: load quarantined rows that pass the current or a fixed schema."""

from __future__ import annotations

import argparse
from typing import Any

import pluggy

from tallyclerk.cli.output import Output, format_table

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import db_options, plugin_option

    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="re-check rejected rows and load those that now pass, exactly once",
        description="Re-check the rejected rows not yet replayed (from their stored raw text) "
        "against --schema (default: every column text) and load those that now pass into "
        "their table, exactly once (a replay killed and run again loads each row once). Rows "
        "that fail again get a new reject; masked rejects cannot be replayed. Exit 0 when "
        "every replayable row was replayed, 1 when a replay failed.",
    )
    p.add_argument("--batch", metavar="ID", default=None, help="only rejects of this batch")
    p.add_argument("--file", metavar="PATH", default=None, help="only rejects of this file")
    p.add_argument("--table", default=None, help="only rejects of this table")
    p.add_argument("--schema", metavar="FIXED", default=None,
                   help="Frictionless Table Schema (JSON) to check the rows against")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    db_options(p)
    plugin_option(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.replay import replay

    report = replay(batch=args.batch, file=args.file, table=args.table, schema=args.schema,
                    into=args.into, audit=args.audit, plugins=list(args.plugins or ()))
    data = report.as_dict()
    if args.json:
        out.json(data)
        return report.exit_code
    if not report.records:
        out.line("no rejected rows to replay")
        return 0
    rows = [[r["path"], r["line"], r["record_number"], r["outcome"],
             r.get("replay_batch_id") or "", r["reason"] or ""] for r in report.records]
    for line in format_table(["FILE", "LINE", "RECORD", "OUTCOME", "REPLAY BATCH", "REASON"],
                             rows, right=(1, 2), full=(5,)):
        out.line(line)
    out.line(f"{data['records_loaded']} loaded, {data['records_rejected']} rejected again, "
             f"{data['records_masked']} masked (cannot be replayed), "
             f"{data['records_failed']} failed")
    return report.exit_code
