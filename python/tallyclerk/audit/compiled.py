"""A compiled statement and the helpers its callers share, with no SQLAlchemy: used by
:mod:`tallyclerk.audit.sqlgen` (which compiles with SQLAlchemy) and
:mod:`tallyclerk.audit.sqlgen_lite` (which reads the ahead-of-time catalogue)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import FrozenInstanceError
from datetime import datetime, timezone
from typing import Any

from tallyclerk.audit.rows import to_epoch_us
from tallyclerk.errors import ConfigError

__all__ = ["FILE_ID_COLUMN", "CompiledSql", "check_identifier", "quote_identifier", "ts"]

FILE_ID_COLUMN = "_tc_file_id"


class CompiledSql:
    """A statement's SQL text for one dialect and the order of its named parameters.

    Immutable, equal and hashable by value, printed as a frozen dataclass would be; written
    out rather than a ``@dataclass``, whose generated methods cost ~0.5 ms of every start
    (issue 16.1)."""

    sql: str
    names: tuple[str, ...]

    def __init__(self, sql: str, names: tuple[str, ...]) -> None:
        object.__setattr__(self, "sql", sql)
        object.__setattr__(self, "names", names)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(sql={self.sql!r}, names={self.names!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, CompiledSql)
            return (self.sql, self.names) == (other.sql, other.names)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.sql, self.names))

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[name] for name in self.names)


def check_identifier(name: str) -> str:
    """``name`` if it can be used as a (quoted) table name, else :class:`ConfigError`."""
    if not name or "\x00" in name or len(name) > 255 or name != name.strip():
        raise ConfigError(f"invalid table name {name!r}")
    return name


def quote_identifier(name: str) -> str:
    """``name`` always quoted, as SQLAlchemy's SQLite (and PostgreSQL) preparer writes a
    ``quoted_name(name, quote=True)``: in double quotes, a double quote doubled."""
    return '"' + check_identifier(name).replace('"', '""') + '"'


def ts(dialect_name: str, value: datetime | None = None) -> Any:
    """A timestamp (now when None) in the storage form of ``dialect_name``."""
    value = value or datetime.now(timezone.utc)
    return to_epoch_us(value) if dialect_name == "sqlite" else value
