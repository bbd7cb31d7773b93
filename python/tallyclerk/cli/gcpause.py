"""The garbage collector during a CLI process's start-up: paused, then frozen and resumed.

Start-up (importing SQLAlchemy, the audit models, the plugins; building the parser) makes a
few hundred thousand objects that live until the process exits; the collections their
allocations trigger (each full one scanning every module object) find no garbage worth the
scan and cost about a tenth of a one-row load's CPU time. :func:`pause_gc` (called by the
``tallyclerk`` process's entry point only, never by :func:`tallyclerk.cli.main` in-process)
pauses the collector; :func:`start_up_over` freezes what start-up made (``gc.freeze``: no later
collection scans it again) and resumes collecting. A command calls it once its modules are
imported, before its work (``load``: before its first file; the others: before they run).
"""

from __future__ import annotations

import gc

__all__ = ["pause_gc", "start_up_over"]

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
