"""The audit store's part of ``tallyclerk replay``: the rejects to replay, the replay's
``loaded`` claim, and marking the rejects replayed.

:func:`replay_store` opens the store (creating or migrating its schema: an older store gains
the replay columns) and picks the implementation by URL, as the audit service does: SQLite on
plain ``sqlite3`` (:class:`LiteReplayStore`, the catalogue's ``replay_*`` statements, no
SQLAlchemy), a server through SQLAlchemy Core (:class:`CoreReplayStore`). Both run the
statements of :mod:`tallyclerk.audit.replay_statements` and return the same rows
(``tests/replay/test_replay_store_parity.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from tallyclerk.audit import backend
from tallyclerk.audit.catalogue import STATEMENTS
from tallyclerk.audit.dbapi_repository import _expanded, _store
from tallyclerk.audit.liteengine import LiteEngine
from tallyclerk.audit.rows import FileManifest, RejectRecord, from_storage
from tallyclerk.audit.translate import wrap_db_errors
from tallyclerk.dburl import parse_url
from tallyclerk.settings import load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["CoreReplayStore", "LiteReplayStore", "ReplayStore", "replay_store"]

Replayable = tuple[RejectRecord, FileManifest, "dict[str, Any] | None"]
"""A reject not yet replayed, its (loaded) file, and its batch's options."""

Again = dict[int, tuple["str | None", "str | None", "str | None"]]
"""The replay's own rejects: record number -> (rule, reason, column)."""

_REJECT_WIDTH = len(RejectRecord._fields)
_FILE_WIDTH = len(FileManifest._fields)


class ReplayStore(Protocol):
    def rejects(self, *, batch_id: str | None, path: str | None,
                table: str | None) -> list[Replayable]:
        """The rejects not yet replayed of ``loaded`` files, in file and record order."""
        ...

    def loaded_claim(self, table: str, fingerprint: str) -> tuple[int, str] | None:
        """(file id, batch id) of the ``loaded`` row of this identity, if any."""
        ...

    def mark(self, file_id: int, batch_id: str, now: datetime,
             records: Sequence[Sequence[int]]) -> Again:
        """In one transaction: the replay file's own rejects, and each record's rejects
        (``records[n - 1]``: the reject ids of the replay's record ``n``) marked replayed
        (outcome ``rejected`` when record ``n`` failed again, else ``loaded``), only those
        still unmarked. Returns the replay file's rejects by record number."""
        ...


def _outcome(number: int, again: Again) -> str:
    return "rejected" if number in again else "loaded"


class LiteReplayStore:
    """:class:`ReplayStore` of a SQLite store on plain ``sqlite3`` (no SQLAlchemy)."""

    def __init__(self, engine: LiteEngine) -> None:
        self._engine = engine

    @staticmethod
    def _run(conn: Any, name: str, values: Mapping[str, Any]) -> Any:
        sql, params = _expanded(*STATEMENTS[name], values)
        return conn.execute(sql, params)

    def rejects(self, *, batch_id: str | None, path: str | None,
                table: str | None) -> list[Replayable]:
        flags = "".join("0" if v is None else "1" for v in (batch_id, path, table))
        with wrap_db_errors(), self._engine.begin() as conn:
            rows = self._run(conn, f"replay_rejects:{flags}",
                             {"batch_id": batch_id, "path": path, "table": table}).fetchall()
        end = _REJECT_WIDTH + _FILE_WIDTH
        return [(from_storage(RejectRecord, r[:_REJECT_WIDTH]),
                 from_storage(FileManifest, r[_REJECT_WIDTH:end]),
                 None if r[end] is None else orjson.loads(r[end])) for r in rows]

    def loaded_claim(self, table: str, fingerprint: str) -> tuple[int, str] | None:
        with wrap_db_errors(), self._engine.begin() as conn:
            row = self._run(conn, "replay_loaded_claim",
                            {"table": table, "fingerprint": fingerprint}).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def mark(self, file_id: int, batch_id: str, now: datetime,
             records: Sequence[Sequence[int]]) -> Again:
        at = _store("tallyclerk_rejects", "replayed_at", now)
        with wrap_db_errors(), self._engine.begin() as conn:
            again: Again = {}
            for n, rule, reason, column in self._run(conn, "replay_again", {"file_id": file_id}):
                again.setdefault(int(n), (rule, reason, column))
            for number, ids in enumerate(records, start=1):
                self._run(conn, "replay_mark", {
                    "ids": list(ids), "replayed_by_batch": batch_id, "replayed_at": at,
                    "replay_file_id": file_id, "replay_record_number": number,
                    "replay_outcome": _outcome(number, again)})
        return again


class CoreReplayStore:
    """:class:`ReplayStore` through SQLAlchemy Core (PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def rejects(self, *, batch_id: str | None, path: str | None,
                table: str | None) -> list[Replayable]:
        from tallyclerk.audit import replay_statements as st

        stmt = st.rejects_to_replay(batch_id is not None, path is not None, table is not None)
        values = {k: v for k, v in (("batch_id", batch_id), ("path", path), ("table", table))
                  if v is not None}
        with wrap_db_errors(), self._engine.connect() as conn:
            rows = conn.execute(stmt, values).all()
        end = _REJECT_WIDTH + _FILE_WIDTH
        return [(RejectRecord._make(r[:_REJECT_WIDTH]), FileManifest._make(r[_REJECT_WIDTH:end]),
                 None if r[end] is None else dict(r[end])) for r in rows]

    def loaded_claim(self, table: str, fingerprint: str) -> tuple[int, str] | None:
        from tallyclerk.audit import replay_statements as st

        with wrap_db_errors(), self._engine.connect() as conn:
            row = conn.execute(st.loaded_claim(),
                               {"table": table, "fingerprint": fingerprint}).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def mark(self, file_id: int, batch_id: str, now: datetime,
             records: Sequence[Sequence[int]]) -> Again:
        from tallyclerk.audit import replay_statements as st

        with wrap_db_errors(), self._engine.begin() as conn:
            again: Again = {}
            for n, rule, reason, column in conn.execute(st.again(), {"file_id": file_id}):
                again.setdefault(int(n), (rule, reason, column))
            for number, ids in enumerate(records, start=1):
                conn.execute(st.mark(), {
                    "ids": list(ids), "replayed_by_batch": batch_id, "replayed_at": now,
                    "replay_file_id": file_id, "replay_record_number": number,
                    "replay_outcome": _outcome(number, again)})
        return again


@contextmanager
def replay_store(audit_url: str) -> Iterator[ReplayStore]:
    """The replay's view of the audit store at ``audit_url`` (its schema made current)."""
    engine = backend.open_engine(parse_url(audit_url), load_settings())
    try:
        backend.ensure_schema(engine)  # adds the replay columns to an older store
        if isinstance(engine, LiteEngine):
            yield LiteReplayStore(engine)
        else:
            yield CoreReplayStore(engine)
    finally:
        backend.dispose(engine)
