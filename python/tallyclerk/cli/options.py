"""Options several sub-commands share (each sub-command module imports them from here, so no
module of the CLI imports the ``tallyclerk.cli`` package that imports it)."""

from __future__ import annotations

import argparse

__all__ = [
    "batch_options",
    "db_options",
    "infer_options",
    "non_negative_int",
    "plugin_option",
    "positive_int",
    "schema_options",
    "text_options",
]


def non_negative_int(text: str) -> int:
    """An argparse ``type``: an integer, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def db_options(parser: argparse.ArgumentParser) -> None:
    """``--into`` / ``--audit``: where the data and the audit tables live."""
    parser.add_argument("--into", metavar="URL", default="sqlite:///tallyclerk.db",
                        help="target database (default sqlite:///tallyclerk.db)")
    parser.add_argument("--audit", metavar="URL", default=None,
                        help="audit store database (default: the --into database)")


def plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", dest="plugins", action="append", default=[], metavar="PLUGIN",
                        help="load the plugin module PLUGIN for this run (no:NAME blocks NAME)")


def schema_options(parser: argparse.ArgumentParser, format_metavar: str) -> None:
    """``--schema`` / ``--format``: the Table Schema file and the file format."""
    parser.add_argument("--schema", metavar="FILE", help="Frictionless Table Schema (JSON)")
    parser.add_argument("--format", default=None, metavar=format_metavar,
                        help="file format (default: by suffix; plugins add formats)")


def text_options(parser: argparse.ArgumentParser) -> None:
    """``--delimiter`` / ``--encoding`` (no default: the setting decides)."""
    parser.add_argument("--delimiter", default=None,
                        help="CSV field delimiter (default , or tab)")
    parser.add_argument("--encoding", default=None, help="source encoding (default utf-8)")


def infer_options(parser: argparse.ArgumentParser) -> None:
    """``--infer auto|none`` / ``--infer-rows N``: a new table's schema without ``--schema``."""
    parser.add_argument("--infer", choices=("auto", "none"), default=None,
                        help="a new table without --schema: infer its types from a sample of "
                        "the first file (auto, the default: 10000 rows unless --infer-rows) or "
                        "load every column as text (none)")
    parser.add_argument("--infer-rows", type=non_negative_int, metavar="N", default=None,
                        help="infer a new table's types from N rows of its first file "
                        "(setting infer_rows, default 10000; 0: text columns)")


def batch_options(parser: argparse.ArgumentParser) -> None:
    """``--batch-rows`` / ``--max-field-bytes``: how a loader cuts and bounds its reading."""
    parser.add_argument("--batch-rows", type=non_negative_int, metavar="N", default=None,
                        help="rows per record batch (0: adaptive)")
    parser.add_argument("--max-field-bytes", type=non_negative_int, metavar="N", default=None,
                        help="largest field (CSV) or line (JSONL) accepted")
