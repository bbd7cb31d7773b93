"""Structured logging: JSON lines (orjson) or human text, with batch/file/correlation context.

The loader binds ``batch_id``, ``file_id`` and ``correlation_id`` with :func:`bind` (contextvars,
so threads and tasks each see their own); every record logged inside carries them. Messages and
exception texts pass through :func:`tallyclerk.redact.redact`, so a database password never
reaches a log line. Errors are logged at error level with the exception class.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import sys
import types
from collections.abc import Iterator, Mapping
from typing import IO, Any, Literal

import orjson

from tallyclerk.redact import redact

__all__ = ["JsonFormatter", "TextFormatter", "bind", "configure_logging", "current_context"]

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "tallyclerk_log_context", default=_EMPTY
)
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def current_context() -> dict[str, Any]:
    """The fields bound in the current context (a copy)."""
    return dict(_CONTEXT.get())


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Bind fields (``batch_id=..., file_id=..., correlation_id=...``) for the enclosed code."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class _ContextFilter(logging.Filter):
    """Copies the bound context onto each record (as ``record.tc_context``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tc_context = _CONTEXT.get()
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS
            and k != "tc_context" and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, context fields, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        out.update(getattr(record, "tc_context", None) or _CONTEXT.get())
        for key, value in _extras(record).items():
            out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            out["exc_class"] = type(exc).__qualname__
            out["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2026-11-22T16:20:00Z ERROR tallyclerk.pipeline [batch=… file=…] message``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        ctx = getattr(record, "tc_context", None) or _CONTEXT.get()
        tags = " ".join(f"{k}={v}" for k, v in ctx.items())
        line = f"{ts} {record.levelname} {record.name}"
        if tags:
            line += f" [{tags}]"
        line += " " + redact(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


def configure_logging(
    fmt: Literal["json", "text"] = "text",
    level: int | str = logging.WARNING,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send the ``tallyclerk`` loggers to ``stream`` (stderr) in the given format.

    Replaces a handler installed by an earlier call; returns the handler.
    """
    logger = logging.getLogger("tallyclerk")
    for old in [h for h in logger.handlers if getattr(h, "_tallyclerk", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    handler._tallyclerk = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
