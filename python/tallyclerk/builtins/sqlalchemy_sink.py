"""The generic sink's plugin: any database SQLAlchemy 2 can reach (PostgreSQL, SQLite, ...).

Claims every URL SQLAlchemy has a dialect for (``trylast``: faster sinks such as the built-in
SQLite one go first). This module is what the plugin manager registers, and it is small: the
sink (:mod:`tallyclerk.builtins.sqlalchemy_target`) and SQLAlchemy are imported when a URL
reaches :func:`tallyclerk_open_sink`, so a load another sink takes never imports them. The
sink's names (``SqlAlchemySink``, ``sink_error``, ...) are also importable from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tallyclerk.hookspecs import hookimpl

if TYPE_CHECKING:
    from tallyclerk.builtins.sqlalchemy_target import SqlAlchemySink

_TARGET = "tallyclerk.builtins.sqlalchemy_target"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(_TARGET), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


@hookimpl(trylast=True)
def tallyclerk_open_sink(url: str, options: Mapping[str, Any]) -> SqlAlchemySink | None:
    """Open any URL SQLAlchemy has a dialect for."""
    from tallyclerk.builtins.sqlalchemy_target import open_sink

    return open_sink(url, options)
