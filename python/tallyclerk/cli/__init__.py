"""The ``tallyclerk`` command line (console script ``tallyclerk = tallyclerk.cli:console_main``).

Sub-commands: ``load``, ``watch``, ``infer``, ``status``, ``rejects``, ``schema``, ``plugins``,
``demo``, ``health``.

Logging (stderr): ``--log-format text|json`` and ``--log-level LEVEL``, before or after the
sub-command, else ``TALLYCLERK_LOG_FORMAT`` / ``TALLYCLERK_LOG_LEVEL``; default text at
WARNING. ``--correlation-id ID`` (or ``TALLYCLERK_CORRELATION_ID``) tags every log line and
audit event of the run; without it each load batch gets a new one.

Exit status:

====  ==========================================================================================
0     success: no file failed (rejected rows alone do not fail a load)
1     at least one file failed (a missing or unreadable path is a failed file), or the batch
      timed out
2     usage or configuration error (bad option, bad table name, unreadable or invalid schema,
      unknown URL scheme): one line on stderr, ``tallyclerk: error: ...``
3     the sink or the audit store failed in a way that stopped the load
70    an unexpected internal error (one line; the traceback with ``--debug`` or
      ``TALLYCLERK_DEBUG=1``)
130   interrupted by Ctrl-C (SIGINT); 143: terminated by SIGTERM. The file being loaded was
      rolled back and is recorded as failed ("interrupted"); the batch ends ``cancelled``.
====  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from tallyclerk.cli.app import (
        COMMANDS,
        EXIT_FAILED,
        EXIT_INTERNAL,
        EXIT_OK,
        EXIT_STOPPED,
        EXIT_USAGE,
        Parser,
        UsageError,
        build_parser,
        db_options,
        plugin_option,
        prescan_command,
        prescan_plugins,
    )

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_STOPPED",
    "EXIT_USAGE",
    "COMMANDS",
    "Parser",
    "UsageError",
    "build_parser",
    "console_main",
    "db_options",
    "main",
    "plugin_option",
    "prescan_command",
    "prescan_plugins",
]


def console_main() -> NoReturn:
    """The ``tallyclerk`` process (:func:`tallyclerk.cli.app.console_main`), with the garbage
    collector paused before the command line's modules are imported: their import makes tens
    of thousands of objects that live until exit, and the collections they would trigger find
    no garbage (about 5 ms of a one-row load's CPU, issue 16.1). This package therefore
    imports nothing else until it is called."""
    from tallyclerk.cli.gcpause import pause_gc

    pause_gc()
    from tallyclerk.cli.app import console_main as run

    run()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit status (:func:`tallyclerk.cli.app.main`)."""
    from tallyclerk.cli.app import main as run

    return run(argv)


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tallyclerk.cli import app

        value = getattr(app, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tallyclerk.cli' has no attribute {name!r}")
