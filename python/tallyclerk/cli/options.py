"""Options several sub-commands share (each sub-command module imports them from here, so no
module of the CLI imports the ``tallyclerk.cli`` package that imports it)."""

from __future__ import annotations

import argparse

__all__ = ["db_options", "plugin_option"]


def db_options(parser: argparse.ArgumentParser) -> None:
    """``--into`` / ``--audit``: where the data and the audit tables live."""
    parser.add_argument("--into", metavar="URL", default="sqlite:///tallyclerk.db",
                        help="target database (default sqlite:///tallyclerk.db)")
    parser.add_argument("--audit", metavar="URL", default=None,
                        help="audit store database (default: the --into database)")


def plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", dest="plugins", action="append", default=[], metavar="PLUGIN",
                        help="load the plugin module PLUGIN for this run (no:NAME blocks NAME)")
