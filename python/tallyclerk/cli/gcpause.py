"""The garbage collector during a CLI process's start-up (paused, then frozen and resumed), and
the process's exit without the interpreter's teardown.

Start-up (importing SQLAlchemy, the audit models, the plugins; building the parser) makes a
few hundred thousand objects that live until the process exits; the collections their
allocations trigger (each full one scanning every module object) find no garbage worth the
scan and cost about a tenth of a one-row load's CPU time. :func:`pause_gc` (called by the
``tallyclerk`` process's entry point only, never by :func:`tallyclerk.cli.main` in-process)
pauses the collector; :func:`start_up_over` freezes what start-up made (``gc.freeze``: no later
collection scans it again) and resumes collecting. A command calls it once its modules are
imported, before its work (``load``: before its first file; the others: before they run).

:func:`exit_process` ends the ``tallyclerk`` process once its command has returned: the exit
handlers run and stdout and stderr are flushed as at any exit, then the process ends without the
interpreter's teardown (clearing every module and freeing every object one by one, ~10 ms of
CPU for a one-row load: the kernel frees the memory at once). Only when the main thread is the
only thread left; otherwise (a thread to wait for) it exits as usual.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import NoReturn

__all__ = ["exit_process", "pause_gc", "start_up_over"]

_paused = False


def pause_gc() -> None:
    """Pause the collector until :func:`start_up_over` (if it runs at all now)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def start_up_over() -> None:
    """Freeze start-up's objects and resume the collector paused by :func:`pause_gc`; a
    no-op when it did not pause it."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def exit_process(code: int) -> NoReturn:
    """End the process with status ``code``: exit handlers (``atexit``: logging's shutdown,
    ``weakref.finalize`` callbacks, coverage...) run and the standard streams are flushed, then
    ``os._exit`` skips the interpreter's teardown. A process with another thread still alive,
    or whose streams cannot be flushed (a closed pipe), exits through ``sys.exit`` as before."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)  # Python reports the stream it could not flush, as at any exit
    os._exit(code)
