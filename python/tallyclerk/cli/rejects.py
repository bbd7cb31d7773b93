"""``tallyclerk rejects [--file PATH] [--batch ID] [--json]``: quarantined rows with reasons."""

from __future__ import annotations

import argparse
from typing import Any

import pluggy

from tallyclerk.cli.output import Output

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import db_options, non_negative_int

    p: argparse.ArgumentParser = sub.add_parser(
        "rejects",
        help="list rejected rows with file, line, column and reason",
        description="List quarantined rows from the audit store: file, record number, "
        "physical line, column, rule and reason (and the raw record with --json).",
    )
    p.add_argument("--file", metavar="PATH", default=None, help="only rows of this file")
    p.add_argument("--batch", metavar="ID", default=None, help="only rows of this batch")
    p.add_argument("--limit", type=non_negative_int, metavar="N", default=None,
                   help="at most this many rows")
    p.add_argument("--json", action="store_true", help='print {"rejects": [...]}')
    db_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.cli.report import print_rejects
    from tallyclerk.cli.status import open_audit

    with open_audit(args) as audit:
        rows = audit.list_rejects(path=args.file, batch_id=args.batch, limit=args.limit)
    if args.json:
        out.json({"rejects": rows})
    else:
        print_rejects(out, rows)
    return 0
