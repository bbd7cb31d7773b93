"""``tallyclerk demo [--dir DIR] [--fresh]``: sample data with bad rows, loaded and audited.

Writes (deterministically, the same bytes every run) two CSV files, a JSONL file and a Table
Schema into DIR (default ``./tallyclerk-demo``), loads them into ``DIR/demo.db`` (table
``orders``) and prints the batch report and the rejected rows with file, line and reason.

Running it again loads nothing new: the files' contents are already in the table, so they are
*skipped* (tallyclerk loads each file exactly once) and the report says so. ``--fresh`` deletes
``demo.db`` first to watch a full load again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
from pathlib import Path
from typing import Any

import pluggy

from tallyclerk.cli.output import Output

__all__ = ["add_parser", "generate", "run"]

SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "order_id", "type": "integer", "constraints": {"required": True, "minimum": 1}},
        {"name": "customer", "type": "string", "constraints": {"required": True, "maxLength": 40}},
        {"name": "country", "type": "string", "constraints": {"pattern": "[A-Z]{2}"}},
        {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
        {"name": "currency", "type": "string",
         "constraints": {"enum": ["EUR", "USD", "GBP"]}},
        {"name": "ordered_on", "type": "date"},
        {"name": "paid", "type": "boolean"},
    ],
}

_CUSTOMERS = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra",
              "Barbara Liskov", "Donald Knuth", "Frances Allen", "Ken Thompson",
              "Margaret Hamilton", "Dennis Ritchie"]
_COUNTRIES = ["DE", "FR", "GB", "US", "NL", "SE"]
_CURRENCIES = ["EUR", "USD", "GBP"]


def _row(rng: random.Random, order_id: int, month: int) -> dict[str, Any]:
    day = rng.randint(1, 28)
    return {
        "order_id": order_id,
        "customer": rng.choice(_CUSTOMERS),
        "country": rng.choice(_COUNTRIES),
        "amount": round(rng.uniform(5, 500), 2),
        "currency": rng.choice(_CURRENCIES),
        "ordered_on": dt.date(2026, month, day).isoformat(),
        "paid": rng.choice(["true", "false"]),
    }


def _csv_line(values: list[Any]) -> str:
    out = []
    for v in values:
        text = "" if v is None else str(v)
        if any(c in text for c in ',"\n\r'):
            text = '"' + text.replace('"', '""') + '"'
        out.append(text)
    return ",".join(out)


def generate(directory: Path) -> dict[str, Path]:
    """Write the demo files (the same bytes on every call); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261122)
    names = [f["name"] for f in SCHEMA["fields"]]
    files: dict[str, Path] = {}

    schema_path = directory / "orders.schema.json"
    schema_path.write_text(json.dumps(SCHEMA, indent=2) + "\n", encoding="utf-8")
    files["schema"] = schema_path

    order_id = 1000
    for month, bad in ((1, {17: ("amount", "12,50 EUR"), 42: ("currency", "BTC")}),
                       (2, {8: ("customer", ""), 63: ("ordered_on", "2026-02-30")})):
        lines = [_csv_line(names)]
        for i in range(1, 121):
            order_id += 1
            row = _row(rng, order_id, month)
            if i in bad:
                column, value = bad[i]
                row[column] = value
            if month == 1 and i == 5:
                row["customer"] = 'Grace "Amazing" Hopper, RADM'  # quoted, still valid
            lines.append(_csv_line([row[n] for n in names]))
        if month == 2:
            lines.insert(90, "9999,Short Row,DE")  # too few fields
        path = directory / f"orders-2026-{month:02d}.csv"
        path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
        files[path.stem] = path

    lines = []
    for i in range(1, 81):
        order_id += 1
        rec: dict[str, Any] = _row(rng, order_id, 3)
        rec["paid"] = rec["paid"] == "true"
        if i == 11:
            lines.append('{"order_id": 9001, "customer": "Truncated')  # malformed JSON
            continue
        if i == 29:
            rec["amount"] = -12.5  # below minimum
        if i == 57:
            lines.append('["not", "an", "object"]')
            continue
        lines.append(json.dumps(rec))
    path = directory / "orders-2026-03.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    files[path.stem] = path
    return files


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import plugin_option

    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="generate sample data with bad rows, load it, show the audit report",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dir", default="tallyclerk-demo",
                   help="where to write (default ./tallyclerk-demo)")
    p.add_argument("--fresh", action="store_true", help="delete DIR/demo.db first")
    p.add_argument("--json", action="store_true", help="print the load report as JSON only")
    plugin_option(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.api import make_request
    from tallyclerk.audit import AuditService
    from tallyclerk.cli.load import execute, exit_status
    from tallyclerk.cli.report import ProgressBar, print_rejects, print_report

    directory = Path(args.dir)
    db = directory / "demo.db"
    if args.fresh:
        for suffix in ("", "-wal", "-shm"):
            with_suffix = Path(str(db) + suffix)
            if with_suffix.exists():
                os.remove(with_suffix)
    files = generate(directory)
    data = [str(files[k]) for k in sorted(files) if k != "schema"]
    url = f"sqlite:///{db}"
    if not args.json:
        out.line(f"Demo data in {directory}/: {', '.join(Path(p).name for p in data)}")
        out.line(f"Schema: {files['schema'].name}; loading into {url} (table 'orders')")
        out.line("")
    req = make_request(data, table="orders", into=url, schema=str(files["schema"]),
                       plugins=list(args.plugins or ()))
    bar = ProgressBar(out) if (not args.json and out.stderr_is_tty) else None
    try:
        report = execute(req, args.pm, progress=bar, command="demo")
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        out.json(report.to_dict())
        return exit_status(report)
    print_report(out, report)
    out.line("")
    skipped = [f for f in report.files if f.status == "skipped"]
    if skipped:
        out.line(f"{len(skipped)} file(s) skipped: their contents were already loaded by an "
                 "earlier run (tallyclerk loads each file exactly once).")
        out.line(f"Run 'tallyclerk demo --fresh --dir {directory}' to start over.")
        out.line("")
    with AuditService(url) as audit:
        rejects = [r for p in data for r in audit.list_rejects(path=p)]
    out.line(f"Rejected rows ({len(rejects)}):")
    print_rejects(out, rejects)
    out.line("")
    out.line("Next: tallyclerk status --into " + url + "   |   tallyclerk rejects --into " + url)
    return exit_status(report)
