"""Checks on identifiers that come from users or data (table names).

Identifiers are never formatted into SQL unquoted: the sinks quote every table and column
name. What is refused here is what quoting cannot make safe or portable:

- the empty name, or one that is only whitespace;
- a NUL byte or any other control character (U+0000-U+001F, U+007F);
- more than 255 characters (or 255 bytes of UTF-8);
- names starting with ``sqlite_`` (SQLite reserves them for itself) or ``tallyclerk_`` (the
  audit store's tables), in any letter case.

Everything else (spaces, quotes, semicolons, non-ASCII letters, SQL keywords) is allowed and
quoted, so ``--table 'my "odd"; table'`` creates exactly that table.
"""

from __future__ import annotations

from tallyclerk.errors import ConfigError

__all__ = ["MAX_IDENTIFIER_LENGTH", "check_table_name", "column_name_problem"]

MAX_IDENTIFIER_LENGTH = 255
FILE_ID_COLUMN = "_tc_file_id"


def check_table_name(name: str) -> str:
    """Return ``name`` if it is usable as a table name, else raise :class:`ConfigError`."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("table name must not be empty")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise ConfigError(f"table name {name!r} contains a control character")
    if len(name) > MAX_IDENTIFIER_LENGTH or len(name.encode("utf-8")) > MAX_IDENTIFIER_LENGTH:
        raise ConfigError(
            f"table name is too long ({len(name)} characters; at most {MAX_IDENTIFIER_LENGTH})"
        )
    if name.lower().startswith("sqlite_"):
        raise ConfigError(f"table name {name!r} is reserved (sqlite_* names belong to SQLite)")
    if name.lower().startswith("tallyclerk_"):
        raise ConfigError(
            f"table name {name!r} is reserved (tallyclerk_* names are the audit store's tables)"
        )
    return name


def column_name_problem(name: str) -> str | None:
    """Why ``name`` (a key or header from the data) cannot be a column name, or None.

    Refused: the empty name, a NUL byte, more than 255 characters (or bytes of UTF-8), and
    ``_tc_file_id`` in any letter case (the column tallyclerk tags every row with). Names
    that differ only in ASCII case are the loader's business (SQLite ignores that case).
    """
    if name == "":
        return "an empty name"
    if "\0" in name:
        return "a NUL byte in the name"
    if len(name) > MAX_IDENTIFIER_LENGTH or len(name.encode("utf-8")) > MAX_IDENTIFIER_LENGTH:
        return f"longer than {MAX_IDENTIFIER_LENGTH} characters"
    if name.lower() == FILE_ID_COLUMN:
        return f"{FILE_ID_COLUMN} is tallyclerk's own column"
    return None
