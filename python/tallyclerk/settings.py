"""Settings: defaults in code, then a config file, then ``TALLYCLERK_*`` variables, then overrides.

Sources, later ones winning:

1. the defaults of :class:`Settings`;
2. the first config file found searching upward from ``start_dir`` (the current directory by
   default): in each directory ``tallyclerk.toml`` (top-level keys) wins over the
   ``[tool.tallyclerk]`` table of ``pyproject.toml``; a ``pyproject.toml`` without that table
   does not stop the search;
3. environment variables ``TALLYCLERK_<NAME>`` (``TALLYCLERK_QUEUE_MAX_ITEMS=5000``); other
   ``TALLYCLERK_*`` variables are not settings and are ignored;
4. ``overrides`` (CLI flags), a mapping of field name to value.

Every value is checked once, at start-up: a bad one raises :class:`~tallyclerk.errors.ConfigError`
naming the setting and where it came from, e.g.
``TALLYCLERK_LINGER_MS: expected a number >= 0, got 'abc'``. Unknown keys in a config file are
errors too (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from tallyclerk.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ENV_PREFIX", "Settings", "find_config_file", "load_settings", "settings_of"]

ENV_PREFIX = "TALLYCLERK_"

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _doc(text: str) -> dict[str, Any]:
    return {"doc": text}


@dataclass(frozen=True)
class Settings:
    """Every tunable of tallyclerk with its default (build it directly or with load_settings).

    Invalid values raise :class:`~tallyclerk.errors.ConfigError` at construction.
    """

    batch_rows: int = field(default=0, metadata=_doc("rows per record batch; 0 = adaptive"))
    queue_max_items: int = field(default=10000, metadata=_doc("bound on queued audit events"))
    queue_max_bytes: int = field(
        default=64 * 1024 * 1024, metadata=_doc("bound on queued audit event bytes; 0 = none")
    )
    queue_max_batch: int = field(default=1000, metadata=_doc("most events per audit write"))
    queue_put_timeout_ms: float = field(
        default=100.0,
        metadata=_doc("how long record() waits for room in a full queue before dead-lettering"),
    )
    linger_ms: float = field(default=5.0, metadata=_doc("how long a writer waits to fill a batch"))
    operation_timeout_s: float = field(default=3600.0, metadata=_doc("longest a batch may run"))
    idle_timeout_s: float = field(default=1800.0, metadata=_doc("longest a batch may stay idle"))
    watchdog_interval_s: float = field(default=1.0, metadata=_doc("how often timeouts are checked"))
    max_retries: int = field(default=5, metadata=_doc("retries of a transient database error"))
    backoff_initial_ms: float = field(default=10.0, metadata=_doc("first retry delay"))
    backoff_max_ms: float = field(default=2000.0, metadata=_doc("cap on a retry delay"))
    audit_async: bool = field(default=True, metadata=_doc("write audit events behind the caller"))
    audit_events: bool = field(
        default=True,
        metadata=_doc("record the load's audit events (the manifest is always kept)"),
    )
    audit_chain: bool = field(
        default=True,
        metadata=_doc("seal ledger rows into a hash chain (tamper evidence; tallyclerk verify)"),
    )
    busy_timeout_ms: int = field(default=5000, metadata=_doc("SQLite busy timeout"))
    synchronous: Synchronous = field(default="NORMAL", metadata=_doc("SQLite PRAGMA synchronous"))
    connect_timeout_s: float = field(default=10.0, metadata=_doc("database connect timeout"))
    read_timeout_s: float = field(default=30.0, metadata=_doc("source read timeout"))
    lease_s: float = field(default=60.0, metadata=_doc("how long a file claim stays valid"))
    heartbeat_s: float = field(default=10.0, metadata=_doc("how often claims are renewed"))
    breaker_threshold: int = field(default=5, metadata=_doc("failures that open a breaker"))
    breaker_cooldown_s: float = field(default=30.0, metadata=_doc("how long a breaker stays open"))
    max_field_bytes: int = field(default=16 * 1024 * 1024, metadata=_doc("largest CSV field"))
    compression: str = field(
        default="auto",
        metadata=_doc("input compression: auto (by content), none, gzip, bzip2, xz, zstd"),
    )
    sensitive_columns: tuple[str, ...] = field(
        default=(),
        metadata=_doc("columns masked in rejects, reasons, logs and reports (comma-separated)"),
    )
    columns: str = field(
        default="evolve",
        metadata=_doc("columns a file has and its table lacks: evolve, freeze or discard"),
    )
    infer_rows: int = field(
        default=10_000,
        metadata=_doc("rows sampled to infer a new table's schema; 0 = text columns"),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            normalized = _check(f.name, getattr(self, f.name), f"Settings.{f.name}")
            object.__setattr__(self, f.name, normalized)
        if self.heartbeat_s >= self.lease_s:
            raise ConfigError(
                f"heartbeat_s ({self.heartbeat_s}) must be less than lease_s ({self.lease_s}): "
                "a lease must outlive the heartbeat that renews it"
            )
        if self.backoff_initial_ms > self.backoff_max_ms:
            raise ConfigError(
                f"backoff_initial_ms ({self.backoff_initial_ms}) must not exceed "
                f"backoff_max_ms ({self.backoff_max_ms})"
            )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --- validation --------------------------------------------------------------------------------

Check = Callable[[Any], Any]  # returns the normalized value or raises _Invalid(expected)


class _Invalid(Exception):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _int(minimum: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise _Invalid(f"an integer >= {minimum}") from None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _Invalid(f"an integer >= {minimum}")
        return value

    return check


def _float(minimum: float, *, strict: bool) -> Check:
    expected = f"a number {'>' if strict else '>='} {minimum:g}"

    def check(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _Invalid(expected) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(expected)
        number = float(value)
        if not math.isfinite(number) or number < minimum or (strict and number == minimum):
            raise _Invalid(expected)
        return number

    return check


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Invalid("true or false (1/0, yes/no, on/off)")


def _compression(value: Any) -> str:
    names = ("auto", "none", "gzip", "bzip2", "xz", "zstd")
    if isinstance(value, str) and value.strip().lower() in names:
        return value.strip().lower()
    raise _Invalid("one of " + ", ".join(names))


def _columns(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in ("evolve", "freeze", "discard"):
        return value.strip().lower()
    raise _Invalid("one of evolve, freeze, discard")


def _synchronous(value: Any) -> str:
    if isinstance(value, str) and value.strip().upper() in _SYNCHRONOUS:
        return value.strip().upper()
    raise _Invalid("one of " + ", ".join(_SYNCHRONOUS))


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
    raise _Invalid("a list of column names (or one comma-separated string)")


_POSITIVE = _float(0.0, strict=True)
_NON_NEGATIVE = _float(0.0, strict=False)

_CHECKS: dict[str, Check] = {
    "batch_rows": _int(0),
    "queue_max_items": _int(1),
    "queue_max_bytes": _int(0),
    "queue_max_batch": _int(1),
    "queue_put_timeout_ms": _NON_NEGATIVE,
    "linger_ms": _NON_NEGATIVE,
    "operation_timeout_s": _POSITIVE,
    "idle_timeout_s": _POSITIVE,
    "watchdog_interval_s": _POSITIVE,
    "max_retries": _int(0),
    "backoff_initial_ms": _POSITIVE,
    "backoff_max_ms": _POSITIVE,
    "audit_async": _bool,
    "audit_events": _bool,
    "audit_chain": _bool,
    "busy_timeout_ms": _int(0),
    "synchronous": _synchronous,
    "connect_timeout_s": _POSITIVE,
    "read_timeout_s": _POSITIVE,
    "lease_s": _POSITIVE,
    "heartbeat_s": _POSITIVE,
    "breaker_threshold": _int(1),
    "breaker_cooldown_s": _POSITIVE,
    "max_field_bytes": _int(1),
    "compression": _compression,
    "sensitive_columns": _names,
    "columns": _columns,
    "infer_rows": _int(0),
}
_NAMES = frozenset(f.name for f in fields(Settings))
assert _NAMES == frozenset(_CHECKS), "every setting needs a check"


def _check(name: str, value: Any, source: str) -> Any:
    try:
        return _CHECKS[name](value)
    except _Invalid as exc:
        raise ConfigError(f"{source}: expected {exc.expected}, got {value!r}") from None


# --- sources -----------------------------------------------------------------------------------


def find_config_file(start_dir: str | os.PathLike[str] | None = None) -> tuple[Path, str] | None:
    """The config file that applies to ``start_dir``: ``(path, table)`` or None.

    ``table`` is ``""`` for ``tallyclerk.toml`` (top-level keys) and ``"tool.tallyclerk"`` for
    ``pyproject.toml``.
    """
    # searched with os.path: a start with no config file imports no pathlib (which imports
    # urllib.parse, ipaddress and fnmatch: ~3.5 ms where site has not; issue 16.1)
    directory = os.path.realpath(start_dir if start_dir is not None else os.getcwd())
    while True:
        own = os.path.join(directory, "tallyclerk.toml")
        if os.path.isfile(own):
            return _path(own), ""
        pyproject = os.path.join(directory, "pyproject.toml")
        if (os.path.isfile(pyproject) and _may_name_tallyclerk(pyproject)
                and "tallyclerk" in _read_toml(pyproject).get("tool", {})):
            return _path(pyproject), "tool.tallyclerk"
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _path(found: str) -> Path:
    from pathlib import Path

    return Path(found)


def _may_name_tallyclerk(path: str) -> bool:
    """Whether ``path`` can hold a ``[tool.tallyclerk]`` table: its text names ``tallyclerk``,
    or has an escape a quoted key could spell it with (``\\u``, ``\\U``). A project's
    ``pyproject.toml`` that does neither is not parsed: importing ``tomllib`` and parsing cost
    ~5 ms of a start in a project directory (issue 16.1). Unreadable: True, so that
    :func:`_read_toml` reports it."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return True
    return b"tallyclerk" in raw or b"\\u" in raw or b"\\U" in raw


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    # imported here: most runs read no configuration file (start-up, issue 16)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _file_values(path: Path, table: str) -> tuple[dict[str, Any], str]:
    data: Any = _read_toml(path)
    for part in table.split(".") if table else ():
        data = data.get(part, {})
    where = f"{path} [{table}]" if table else str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of settings")
    unknown = sorted(set(data) - _NAMES)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} "
            + ", ".join(repr(k) for k in unknown)
        )
    return data, where


def settings_of(value: object) -> Settings:
    """The settings a plugin hook received (``options["settings"]``), or the defaults when
    there are none: the one typed place every sink, loader and the pipeline read settings
    from (no ``getattr(settings, name, default)`` with its own copy of a default)."""
    return value if isinstance(value, Settings) else Settings()


def load_settings(
    start_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from defaults, the config file, ``TALLYCLERK_*`` variables and ``overrides``.

    Args:
        start_dir: where the config file search starts (default: the current directory).
        env: the environment (default ``os.environ``).
        overrides: field name -> value (CLI flags); None values are ignored.

    Raises:
        ConfigError: an unknown key, a value of the wrong type or out of range (the message
            names the setting and its source), or an unreadable config file.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}

    found = find_config_file(start_dir)
    if found is not None:
        data, where = _file_values(*found)
        for name, value in data.items():
            values[name] = _check(name, value, f"{where} {name}")

    for name in sorted(_NAMES):
        var = ENV_PREFIX + name.upper()
        if var in env:
            values[name] = _check(name, env[var], var)

    if overrides:
        unknown = sorted(set(overrides) - _NAMES)
        if unknown:
            raise ConfigError("unknown setting override " + ", ".join(repr(k) for k in unknown))
        for name, value in overrides.items():
            if value is not None:
                values[name] = _check(name, value, f"{name} (override)")

    return replace(Settings(), **values) if values else Settings()


def describe() -> dict[str, tuple[Any, str]]:
    """Each setting's default and one-line description (for ``--help`` texts and docs)."""
    return {
        f.name: (f.default, cast(str, f.metadata.get("doc", ""))) for f in fields(Settings)
    }
