"""``tallyclerk repair [--table T] [--file PATH] [--json] [--dry-run]``: settle uncertain files."""

from __future__ import annotations

import argparse
from typing import Any

import pluggy

from tallyclerk.cli.output import Output, format_table

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import db_options

    p: argparse.ArgumentParser = sub.add_parser(
        "repair",
        help="settle uncertain files (killed between the data and the manifest commit)",
        description="With the audit store in another database than the target, a load killed "
        "between a file's data commit and its manifest commit leaves the file uncertain "
        "(tallyclerk status shows it). repair checks the target for the file's load marker and "
        "rows (_tc_file_id) and records the outcome: committed (finished loaded), rolled back "
        "or not committed (failed, so the next load loads it). Exit 0 when every uncertain "
        "file is settled, 1 when one could not be (with the reason).",
    )
    p.add_argument("--table", default=None, help="only files of this table")
    p.add_argument("--file", metavar="PATH", default=None, help="only this file (as loaded)")
    p.add_argument("--dry-run", action="store_true",
                   help="decide and report each file's outcome, change nothing")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    db_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.settle import repair

    report = repair(into=args.into, audit=args.audit, table=args.table, file=args.file,
                    dry_run=args.dry_run)
    data = report.as_dict()
    if args.json:
        out.json(data)
        return report.exit_code
    if not report.files:
        out.line("no uncertain files")
        return 0
    rows = [[f["path"], f["table"], f["file_id"], f["batch_id"], f["outcome"], f["reason"]]
            for f in report.files]
    for line in format_table(["FILE", "TABLE", "FILE ID", "BATCH", "OUTCOME", "REASON"], rows,
                             right=(2,), full=(5,)):
        out.line(line)
    verb = "would be" if report.dry_run else "were"
    out.line(f"{data['uncertain']} uncertain file(s): {data['committed']} committed, "
             f"{data['rolled_back']} rolled back, {data['not_committed']} not committed "
             f"{verb} settled; {data['unsettled']} unsettled")
    return report.exit_code
