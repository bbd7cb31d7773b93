"""``tallyclerk validate PATH...``: a dry run that checks files as a load would, writing nothing."""

from __future__ import annotations

import argparse
from typing import Any

import pluggy

from tallyclerk.cli.output import Output, format_table

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import (
        batch_options,
        db_options,
        infer_options,
        non_negative_int,
        plugin_option,
        schema_options,
        text_options,
    )

    p: argparse.ArgumentParser = sub.add_parser(
        "validate",
        help="check files as a load would, writing nothing (a dry run)",
        description="Read and check PATHs exactly as 'tallyclerk load' would (same loaders, "
        "validators, transforms and schema) and write nothing: no rows, no ledger rows, no "
        "events. Lists every row that would be rejected, and with --table whether each file "
        "would be skipped as already loaded. Exit 0 when clean, 1 when rows would be "
        "rejected or a file cannot be read.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to check")
    p.add_argument("--table", default=None,
                   help="the target table: report files already loaded into it")
    db_options(p)
    schema_options(p, "FORMAT")
    p.add_argument("--limit", type=non_negative_int, metavar="N", default=None,
                   help="list at most N rejected rows (all are counted)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    text_options(p)
    batch_options(p)
    infer_options(p)
    plugin_option(p)
    if pm is not None:
        pm.hook.tallyclerk_addoption.call_historic(kwargs={"parser": p, "pluginmanager": pm})
    p.set_defaults(func=run)
    return p


_OWN = frozenset({"paths", "table", "into", "audit", "schema", "format", "limit", "json",
                  "batch_rows", "max_field_bytes", "plugins", "func", "pm", "command", "debug",
                  "log_format", "log_level", "correlation_id", "global_log_format",
                  "global_log_level", "global_correlation_id"})


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.dryrun import validate

    options = {k: v for k, v in vars(args).items() if k not in _OWN}
    overrides: dict[str, Any] = {}
    if args.batch_rows is not None:
        overrides["batch_rows"] = args.batch_rows
    if args.max_field_bytes is not None:
        overrides["max_field_bytes"] = options["max_field_bytes"] = args.max_field_bytes
    report = validate(
        args.paths, schema=args.schema, table=args.table, audit=args.audit, into=args.into,
        limit=args.limit, format=args.format, options=options, settings=overrides, pm=args.pm,
    )
    if args.json:
        out.json(report.as_dict())
        return report.exit_code
    rows = [[f["path"], f["status"], f["rows_read"], f["rows_valid"], f["rows_rejected"],
             "yes" if f["would_skip"] else "", f["error"] or ""] for f in report.files]
    rows.append(["TOTAL", report.status, report.rows_read, report.rows_valid,
                 report.rows_rejected, "", ""])
    for line in format_table(["FILE", "STATUS", "READ", "VALID", "REJECTED", "WOULD SKIP",
                              "ERROR"], rows, right=(2, 3, 4)):
        out.line(line)
    if report.rejects:
        out.line("")
        for line in format_table(
            ["FILE", "LINE", "RECORD", "COLUMN", "RULE", "REASON"],
            [[r["path"], r["line"], r["record_number"], r["column"] or "", r["rule"], r["reason"]]
             for r in report.rejects],
            right=(1, 2),
        ):
            out.line(line)
        hidden = report.rows_rejected - len(report.rejects)
        if hidden:
            out.line(f"... and {hidden} more rejected row(s) (--limit {args.limit})")
    return report.exit_code
