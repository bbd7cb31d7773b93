"""``tallyclerk verify [--json] [--anchor] [--since-anchor H]``: check the ledger's hash chain."""

from __future__ import annotations

import argparse
from typing import Any

import pluggy

from tallyclerk.cli.output import Output

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import db_options

    p: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="recompute the ledger's hash chain; name the first broken link",
        description="Recompute the hash chain over the ledger's batches, files, rejects and "
        "events, and name the first broken link (table, row, what changed). Exit 0 when the "
        "chain is whole, 1 when a link is broken or the --since-anchor hash is gone.",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--anchor", action="store_true",
                   help="print the chain's head hash, to publish elsewhere")
    p.add_argument("--since-anchor", metavar="HASH", default=None,
                   help="also require this earlier published head hash to be in the chain")
    db_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.dburl import default_audit_url
    from tallyclerk.ledger import verify

    report = verify(args.audit or default_audit_url(args.into), since_anchor=args.since_anchor)
    if args.json:
        out.json(report.as_dict())
    elif args.anchor and report.ok:
        out.line(report.head_hash)
    else:
        if report.broken is not None:
            b = report.broken
            if b.row_id is None:  # a deleted link: which row it was is gone with it
                out.line(f"BROKEN at chain position {b.seq}: {b.what}")
            else:
                where = "" if b.seq is None else f" (chain position {b.seq})"
                out.line(f"BROKEN at {b.table} row {b.row_id}{where}: {b.what}")
        elif report.anchor_found is False:
            out.line(f"BROKEN: the anchor {report.anchor} is not in the chain (the history "
                     "up to it was rewritten)")
        else:
            out.line(f"ok: {report.links} links, head {report.head_hash} "
                     f"(position {report.head_seq})")
        for table, n in report.unsealed.items():
            out.line(f"note: {n} final row(s) of {table} not sealed yet (sealed by the next "
                     "batch)")
    return 0 if report.ok else 1
