"""``tallyclerk infer PATH... [--rows N] [--format F] [--json]``: print an inferred Table Schema.

The schema (see :mod:`tallyclerk.inference` for the rules) goes to stdout as indented JSON, ready to
save and pass to ``load --schema``; ``--json`` prints it on one line. A file that cannot be read
is exit 1 (one line on stderr), bad options exit 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import pluggy

from tallyclerk.cli.output import Output
from tallyclerk.errors import SourceError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import positive_int
    from tallyclerk.inference import DEFAULT_ROWS, FORMATS
    from tallyclerk.inputs import COMPRESSIONS

    p: argparse.ArgumentParser = sub.add_parser(
        "infer",
        help="print a Table Schema inferred from a sample of files",
        description="Infer a Frictionless Table Schema from the first rows of PATHs (read in "
        "order): per column the narrowest type every sampled value fits, required where no "
        "value was missing. Prints the schema as JSON (save it for load --schema).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to sample")
    p.add_argument("--rows", type=positive_int, default=DEFAULT_ROWS, metavar="N",
                   help=f"rows to sample (default {DEFAULT_ROWS:,})")
    p.add_argument("--format", default=None, metavar="|".join(FORMATS),
                   help="file format (default: by suffix)")
    p.add_argument("--delimiter", default=None, help="CSV field delimiter (default , or tab)")
    p.add_argument("--encoding", default="utf-8", help="source encoding (default utf-8)")
    p.add_argument("--compression", default="auto", choices=COMPRESSIONS,
                   help="gzip, bzip2, xz, zstd, none or auto (default: by the content)")
    p.add_argument("--json", action="store_true", help="print the schema on one line")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.inference import infer

    try:
        schema = infer(args.paths, rows=args.rows, format=args.format,
                       delimiter=args.delimiter, encoding=args.encoding,
                       compression=args.compression)
    except SourceError as exc:
        out.error(str(exc))
        return 1
    if args.json:
        out.json(schema)
    else:
        out.line(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0
