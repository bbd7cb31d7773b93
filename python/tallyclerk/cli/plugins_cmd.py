"""``tallyclerk plugins [--json]``: every registered plugin with its version and hooks."""

from __future__ import annotations

import argparse
from typing import Any

import pluggy

from tallyclerk.cli.output import Output, format_table

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, pm: pluggy.PluginManager | None) -> argparse.ArgumentParser:
    from tallyclerk.cli.options import plugin_option

    p: argparse.ArgumentParser = sub.add_parser(
        "plugins",
        help="list installed plugins (built-ins included)",
        description="List every registered plugin: name, version, whether it is built in, "
        "and the hooks it implements. TALLYCLERK_LOAD_PLUGINS restricts which load.",
    )
    p.add_argument("--json", action="store_true", help='print {"plugins": [...]}')
    plugin_option(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, out: Output) -> int:
    from tallyclerk.plugins import list_plugins

    plugins = list_plugins(args.pm)
    if args.json:
        out.json({"plugins": plugins})
        return 0
    rows = [
        [p["name"], p["version"] or "", "yes" if p["builtin"] else "", ", ".join(p["hooks"])]
        for p in plugins
    ]
    for line in format_table(["NAME", "VERSION", "BUILTIN", "HOOKS"], rows, max_width=100):
        out.line(line)
    return 0
