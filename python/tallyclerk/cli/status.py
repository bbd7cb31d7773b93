"""``tallyclerk status [--batch ID] [--json]``: a batch's report from the audit store."""

from __future__ import annotations

import argparse
import os
from typing import Any

import pluggy

from tallyclerk.cli.output import Output, format_table
from tallyclerk.errors import ConfigError

__all__ = ["add_parser", "open_audit", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import db_options, non_negative_int

    p: argparse.ArgumentParser = sub.add_parser(
        "status",
        help="show a batch's report (the latest by default)",
        description="Show a batch's report from the audit store: status, counts and files "
        "(the latest batch unless --batch names one). --list shows recent batches.",
    )
    p.add_argument("--batch", metavar="ID", default=None, help="the batch id (default: latest)")
    p.add_argument("--list", action="store_true", help="list recent batches instead")
    p.add_argument("--file", metavar="PATH", default=None,
                   help="show this file's whole history instead (loads, skips, failures, "
                   "replacements), oldest first")
    p.add_argument("--events", action="store_true",
                   help="list the latest audit events instead (the loader's and those "
                   "applications record with tallyclerk.AuditLog), newest first; with "
                   "--batch, that batch's")
    p.add_argument("--type", dest="event_type", metavar="KIND", default=None,
                   help="with --events: only events of this type")
    p.add_argument("--limit", type=non_negative_int, metavar="N", default=20,
                   help="how many batches --list (or events --events) shows")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    db_options(p)
    p.set_defaults(func=run)
    return p


def open_audit(args: argparse.Namespace) -> Any:
    """The audit service of ``--audit`` (or ``--into``); refuses to create a missing SQLite file."""
    from tallyclerk.audit import AuditService
    from tallyclerk.dburl import default_audit_url, parse_url
    from tallyclerk.settings import load_settings

    url = args.audit or default_audit_url(args.into)
    parsed = parse_url(url)
    if parsed.dialect == "sqlite" and parsed.path is not None and not os.path.exists(parsed.path):
        raise ConfigError(f"no tallyclerk database at {parsed.masked} (nothing loaded yet?)")
    return AuditService(url, settings=load_settings())


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.audit import uncertain
    from tallyclerk.cli.report import print_report

    with open_audit(args) as audit:
        if args.events:
            events = audit.list_events(batch_id=args.batch, type=args.event_type,
                                       limit=args.limit)
            if args.json:
                out.json({"events": events})
                return 0
            rows = [[e["id"], e["created_at"], e["type"], e["batch_id"] or "",
                     e["correlation_id"] or "", _payload(e["payload"])] for e in events]
            for line in format_table(["ID", "CREATED_AT", "TYPE", "BATCH", "CORRELATION",
                                      "PAYLOAD"], rows, right=(0,)):
                out.line(line)
            return 0
        if getattr(args, "file", None) is not None:
            return _history(audit, args, out)
        if args.list:
            batches = audit.list_batches(limit=args.limit)
            if args.json:
                out.json({"batches": batches})
                return 0
            keys = ["batch_id", "status", "table", "files", "rows_read", "rows_written",
                    "rows_rejected", "rows_rolled_back", "started_at"]
            rows = [[b.get(k) for k in keys] for b in batches]
            for line in format_table([k.upper() for k in keys], rows, right=(3, 4, 5, 6, 7)):
                out.line(line)
            return 0
        report = audit.batch_report(args.batch)
        if not report:
            what = f"batch {args.batch!r}" if args.batch else "any batch"
            raise ConfigError(f"the audit store has no record of {what}")
        found = audit.ledger.uncertain_files()
        report = uncertain.annotate(report, found)
        if args.json:
            out.json(report)
        else:
            _uncertain_banner(out, found)
            print_report(out, report)
    return 0


def _history(audit: Any, args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.audit import uncertain

    history = uncertain.mark_history(audit.file_history(args.file),
                                     audit.ledger.uncertain_files(path=args.file))
    if not history:
        raise ConfigError(f"the audit store has no record of the file {args.file!r} (a file "
                          "is named as it was given to load: 'a.csv', './a.csv' and "
                          "'/abs/a.csv' are three names)")
    if args.json:
        out.json({"path": args.file, "history": history})
        return 0
    keys = ["file_id", "batch_id", "table", "status", "attempt", "rows_read", "rows_written",
            "rows_rejected", "rows_rolled_back", "started_at", "replaced_by", "error"]
    rows = [[h.get(k) if h.get(k) is not None else "" for k in keys] for h in history]
    for line in format_table([k.upper() for k in keys], rows, right=(0, 4, 5, 6, 7, 8)):
        out.line(line)
    return 0


def _uncertain_banner(out: Output, found: list[Any]) -> None:
    """The uncertain files first, whichever batch is shown: they need ``tallyclerk repair``."""
    if not found:
        return
    out.line(f"UNCERTAIN: {len(found)} file(s) killed between their data commit and their "
             "manifest commit (their rows may or may not be in the target); settle them with "
             "`tallyclerk repair` (a load into their table settles them first)")
    for u in found:
        out.line(f"  {u.path}  table {u.table!r}  file {u.file_id}  batch {u.batch_id}")


def _payload(payload: Any) -> str:
    if payload is None:
        return ""
    import orjson

    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
