"""``tallyclerk schema TABLE [--history] [--json]``: the schema a table is loaded with."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

import pluggy

from tallyclerk.cli.output import Output, format_table
from tallyclerk.errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import db_options

    p: argparse.ArgumentParser = sub.add_parser(
        "schema",
        help="show the schema a table is loaded with (remembered, versioned)",
        description="Show TABLE's remembered Table Schema from the audit store: the version "
        "later loads without --schema validate against, and why it exists (given, inferred, "
        "evolved). --history lists every version.",
    )
    p.add_argument("table", metavar="TABLE", help="the target table")
    p.add_argument("--history", action="store_true", help="every version, oldest first")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    db_options(p)
    p.set_defaults(func=run)
    return p


def _fields(out: Output, version: Mapping[str, Any]) -> None:
    rows = []
    for f in version["schema"].get("fields", []):
        constraints = dict(f.get("constraints") or {})
        required = "yes" if constraints.pop("required", False) else ""
        rest = {k: v for k, v in f.items() if k not in ("name", "type", "constraints")}
        extra = ", ".join(f"{k}={json.dumps(v)}" for k, v in {**constraints, **rest}.items())
        rows.append([f.get("name"), f.get("type", "string"), required, extra])
    for text in format_table(["FIELD", "TYPE", "REQUIRED", "MORE"], rows):
        out.line("  " + text)


def _head(version: Mapping[str, Any]) -> str:
    return (f"version {version['version']}  {version['created_at']}  batch "
            f"{version['batch_id']}  {version['reason']}")


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.table_schemas import table_schema

    versions = table_schema(args.table, into=args.into, audit=args.audit, history=True)
    if not versions:
        raise ConfigError(f"the audit store has no schema for table {args.table!r} "
                          "(not loaded yet?)")
    if args.json:
        if args.history:
            out.json({"table": args.table, "versions": versions})
        else:
            out.json(versions[-1])
        return 0
    out.line(f"table {args.table!r}: schema version {versions[-1]['version']}")
    for version in versions if args.history else versions[-1:]:
        out.line(_head(version))
        _fields(out, version)
    return 0
