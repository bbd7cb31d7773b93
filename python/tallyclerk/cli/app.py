"""The command line's parser, dispatch and error handling (:mod:`tallyclerk.cli` is the public
face: it pauses the garbage collector before importing this module; see its docstring for the
commands and exit statuses)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from tallyclerk.cli.gcpause import exit_process, pause_gc, start_up_over
from tallyclerk.cli.options import db_options, plugin_option
from tallyclerk.cli.output import Output
from tallyclerk.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
    ConfigError,
    StoreError,
    TallyclerkError,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_STOPPED",
    "EXIT_USAGE",
    "COMMANDS",
    "UsageError",
    "build_parser",
    "db_options",
    "main",
    "plugin_option",
]

log = logging.getLogger("tallyclerk.cli")


class UsageError(ConfigError):
    """A command-line usage error (unknown option, missing argument)."""


def _columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    stdout = sys.__stdout__
    if columns <= 0 and stdout is not None:
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, its width found without importing ``shutil`` (argparse makes one
    for every ``add_argument``; ``shutil`` imports ``bz2``, ``lzma`` and ``zlib``: ~2 ms of a
    start on an interpreter whose ``site`` did not import them; issue 16.1)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become :class:`UsageError` (one line, exit 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


LOG_FORMATS = ("text", "json")


def _common(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Options every sub-command takes; on the top-level parser they go to ``global_*``
    destinations (a sub-parser's defaults would otherwise overwrite them)."""
    if not prefix:
        parser.add_argument("--debug", action="store_true",
                            help="show tracebacks of internal errors; log at debug level")
    parser.add_argument("--log-format", dest=prefix + "log_format", choices=LOG_FORMATS,
                        default=None,
                        help="format of log lines on stderr: text or json (one JSON object "
                        "per line); default $TALLYCLERK_LOG_FORMAT or text")
    parser.add_argument("--log-level", dest=prefix + "log_level", default=None,
                        help="log level on stderr (default $TALLYCLERK_LOG_LEVEL or warning; "
                        "debug with --debug)")
    parser.add_argument("--correlation-id", dest=prefix + "correlation_id", default=None,
                        metavar="ID",
                        help="tag this run's log lines and audit events with ID "
                        "(default $TALLYCLERK_CORRELATION_ID, else a new id per batch)")


def prescan_plugins(argv: Sequence[str]) -> list[str]:
    """The ``-p`` values of ``argv``, found before the full parser exists (plugins add options)."""
    found: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg == "-p" and i + 1 < len(args):
            found.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            found.append(arg[2:].lstrip("="))
        i += 1
    return found


COMMANDS: dict[str, str] = {
    "load": "load",
    "validate": "validate",
    "watch": "watch",
    "infer": "infer",
    "status": "status",
    "rejects": "rejects",
    "replay": "replay",
    "repair": "repair",
    "schema": "schema_cmd",
    "verify": "verify",
    "plugins": "plugins_cmd",
    "demo": "demo",
    "health": "health",
}
"""Each sub-command and its module under ``tallyclerk.cli`` (in the order ``--help`` lists them)."""

_GLOBAL_FLAGS = frozenset({"--debug"})
_GLOBAL_VALUED = frozenset({"--log-format", "--log-level", "--correlation-id"})


def prescan_command(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names, read before the parser exists; None when it is not
    plainly there (help, version, an unknown or abbreviated option): then every sub-command's
    parser is built and argparse decides, as it always does."""
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _GLOBAL_FLAGS or (arg.startswith("--") and arg.split("=", 1)[0]
                                    in _GLOBAL_VALUED and "=" in arg):
            i += 1
        elif arg in _GLOBAL_VALUED:
            i += 2
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in COMMANDS else None
    return None


def build_parser(pm: object | None = None, command: str | None = None) -> Parser:
    """The full parser; ``pm`` (a plugin manager) lets plugins add ``load`` options.

    With ``command`` (a key of :data:`COMMANDS`) only that sub-command's parser is built (and
    only its module imported): a process runs one sub-command, and building all thirteen
    parsers cost about 15 ms of every start.
    """
    import importlib

    parser = Parser(
        prog="tallyclerk",
        description="Stream CSV and JSONL files into a database in batches, validate every "
        "record against a Table Schema, quarantine bad rows and audit every batch and file.",
    )
    from tallyclerk import __version__

    parser.add_argument("--version", action="version", version=f"tallyclerk {__version__}")
    _common(parser, prefix="global_")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    names = [command] if command in COMMANDS else list(COMMANDS)
    for name in names:
        module = importlib.import_module(f"tallyclerk.cli.{COMMANDS[name]}")
        cmd = module.add_parser(sub, pm)
        _common(cmd)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    from tallyclerk.logs import configure_logging

    env = os.environ
    fmt = (getattr(args, "log_format", None) or getattr(args, "global_log_format", None)
           or env.get("TALLYCLERK_LOG_FORMAT") or "text").strip().lower()
    if fmt not in LOG_FORMATS:
        raise UsageError(f"TALLYCLERK_LOG_FORMAT must be text or json, got {fmt!r}")
    level: int | str = logging.WARNING
    named = (getattr(args, "log_level", None) or getattr(args, "global_log_level", None)
             or (None if getattr(args, "debug", False) else env.get("TALLYCLERK_LOG_LEVEL")))
    if named:
        level = str(named).strip().upper()
    elif getattr(args, "debug", False):
        level = logging.DEBUG
    try:
        configure_logging(fmt="json" if fmt == "json" else "text", level=level)
    except ValueError as exc:
        raise UsageError(f"--log-level / TALLYCLERK_LOG_LEVEL: {exc}") from exc
    if os.environ.get("TALLYCLERK_TRACE_PLUGINS") not in (None, "", "0"):
        logging.getLogger("tallyclerk.plugins.trace").setLevel(logging.INFO)


def _run(argv: Sequence[str], out: Output) -> int:
    from tallyclerk.plugins import get_plugin_manager

    pm = get_plugin_manager(prescan_plugins(argv))
    parser = build_parser(pm, prescan_command(argv))
    args = parser.parse_args(list(argv))
    _configure_logging(args)
    args.pm = pm
    from tallyclerk.logs import bind

    cid = (getattr(args, "correlation_id", None) or getattr(args, "global_correlation_id", None)
           or os.environ.get("TALLYCLERK_CORRELATION_ID") or None)
    if args.command != "load":  # a load ends its start-up itself, once its modules are in
        start_up_over()
    with bind(correlation_id=cid):
        rc: int = args.func(args, out)
    return rc


def _log_stop(exc: BaseException) -> None:
    """Log an error that stopped the command (error level, with its class) for log readers;
    only once logging is configured (the one-line message on stderr follows it)."""
    if logging.getLogger("tallyclerk").handlers:
        log.error("stopped (%s): %s", type(exc).__name__, exc,
                  extra={"error_class": type(exc).__name__})


def console_main() -> NoReturn:
    """The ``tallyclerk`` process: :func:`main`, then exit without the final collection.

    The collector is paused from here until the command's start-up is over
    (:func:`tallyclerk.cli.gcpause.start_up_over`).

    When :func:`main` returns, the load is over and everything is flushed and closed, so the
    interpreter's collection of every object at exit (about a fifth of a small load's CPU
    time) can only free memory the process is about to give back: the objects are frozen
    (``gc.freeze``) so that collection skips them, and the interpreter's teardown (clearing
    every module) is skipped too (:func:`tallyclerk.cli.gcpause.exit_process`). Exit handlers
    still run and the streams are flushed. Only the process entry points do this; :func:`main`
    called in-process (tests, other programs) does not.
    """
    pause_gc()
    from tallyclerk.cli.catalogs import skip_absent_catalogues

    skip_absent_catalogues()  # argparse's messages, unchanged, without a catalogue search
    code = main()
    gc.freeze()
    exit_process(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (:func:`console_main` exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = Output()
    debug = "--debug" in argv or os.environ.get("TALLYCLERK_DEBUG", "") not in ("", "0")
    try:
        return _run(argv, out)
    except ConfigError as exc:
        out.error(str(exc))
        return EXIT_USAGE
    except StoreError as exc:
        _log_stop(exc)
        out.error(str(exc))
        if debug:
            out.stderr.write(traceback.format_exc())
        return EXIT_STOPPED
    except TallyclerkError as exc:
        _log_stop(exc)
        out.error(f"{type(exc).__name__}: {exc}")
        if debug:
            out.stderr.write(traceback.format_exc())
        return EXIT_STOPPED
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): nothing more can be written
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the top-level handler: one line, exit 70
        hint = "" if debug else " (run with --debug or TALLYCLERK_DEBUG=1 for the traceback)"
        out.error(f"internal error: {type(exc).__name__}: {exc}{hint}")
        if debug:
            out.stderr.write(traceback.format_exc())
        return EXIT_INTERNAL
