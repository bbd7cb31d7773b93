"""Replaying rejects: load quarantined records that pass the current (or a fixed) schema.

:func:`replay` takes the rejects not yet replayed of files that are ``loaded`` (filtered by
batch, file path or table), groups them by the file they came from, and for each group writes
the stored raw records to a temporary file (CSV, TSV: a header line of the target table's
columns, then each record's raw text; JSONL: each raw line) and loads it with
:func:`tallyclerk.load` into the same table, with the same delimiter and the given schema.
So a replay is an ordinary batch with one file claim per group, and gets every guarantee of a
load: its rows carry the claim's ``_tc_file_id`` and commit with the claim's ``loaded`` row in
one transaction (when the audit store is the target database); records that fail again get
new rejects of that claim.

Exactly once: the claim's fingerprint is not the temporary file's content but
``replay:`` + a hash of (table, source file id, the reject ids replayed), so a replay killed
before its commit leaves nothing and is claimed again, and one killed after it is found
(already ``loaded``) and not loaded twice. The old rejects are then marked in one transaction
(``replayed_by_batch``, ``replayed_at``, ``replay_file_id``, ``replay_record_number``,
``replay_outcome``), only where still unmarked, so a re-run finds only what is left.

Masked rejects (sensitive values masked in ``raw``) are never replayed: their raw text is not
the record as read. Rejects of failed, skipped or replaced files are not replayed (nothing of
that load was kept). The CSV header is the target table's columns in their order (without
``_tc_`` columns), read from the target database (SQLite or PostgreSQL), else the schema's
fields: a file whose header order differed from the table's cannot be replayed correctly.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tallyclerk import faults
from tallyclerk.errors import ConfigError

__all__ = ["ReplayReport", "replay"]

MASKED_REASON = ("masked: sensitive values were masked in its stored raw text, which is not "
                 "the record as read; it cannot be replayed")


@dataclass
class ReplayReport:
    """What a replay did; :meth:`as_dict` is the CLI's ``--json``. ``records`` has one entry per
    record considered: ``outcome`` is ``loaded``, ``rejected`` (failed again, ``reason`` the
    new one), ``masked`` or ``failed`` (its replay file failed: ``reason`` says why)."""

    batches: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def _count(self, outcome: str) -> int:
        return sum(1 for r in self.records if r["outcome"] == outcome)

    @property
    def exit_code(self) -> int:
        """0 when every replayable record was replayed (loaded or rejected again), else 1."""
        return 1 if self._count("failed") else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "records_loaded": self._count("loaded"),
            "records_rejected": self._count("rejected"),
            "records_masked": self._count("masked"),
            "records_failed": self._count("failed"),
            "records": self.records,
        }


@dataclass
class _Record:
    file_id: int
    record_number: int
    line: int
    raw: str
    reject_ids: list[int] = field(default_factory=list)
    masked: bool = False


@dataclass
class _Group:
    file_id: int
    path: str
    table: str
    options: dict[str, Any]
    records: dict[int, _Record] = field(default_factory=dict)


def replay(
    *,
    batch: str | None = None,
    file: str | None = None,
    table: str | None = None,
    schema: Any = None,
    into: str = "sqlite:///tallyclerk.db",
    audit: str | None = None,
    settings: Any = None,
    plugins: Sequence[object] | None = None,
) -> ReplayReport:
    """Replay the rejects selected by ``batch``, ``file`` (path as loaded) and ``table`` (all
    of them when none is given) against ``schema`` (a path, dict or TableSchema; default:
    every column text), loading those that now pass into their table exactly once.

    Raises:
        ConfigError: a bad argument, or no way to know a CSV file's columns.
        StoreError: the sink or the audit store failed after retries.
    """
    from tallyclerk.dburl import default_audit_url, parse_url
    from tallyclerk.names import check_table_name
    from tallyclerk.session import schema_from

    if table is not None:
        check_table_name(table)
    table_schema = schema_from(schema)
    audit_url = audit or default_audit_url(into)
    db = parse_url(audit_url)
    if db.dialect == "sqlite" and db.path is not None and not os.path.exists(db.path):
        raise ConfigError(f"no tallyclerk database at {db.masked} (nothing loaded yet?)")
    report = ReplayReport()
    groups = _select(audit_url, batch, file, table)
    with tempfile.TemporaryDirectory(prefix="tallyclerk-replay-") as tmp:
        for group in groups:
            _replay_group(group, table_schema, into, audit, settings, plugins, tmp, report)
    return report


def _select(audit_url: str, batch: str | None, path: str | None,
            table: str | None) -> list[_Group]:
    from tallyclerk.audit.replay_store import replay_store

    groups: dict[int, _Group] = {}
    with replay_store(audit_url) as store:
        found = store.rejects(batch_id=batch, path=path, table=table)
    for r, f, options in found:
        g = groups.get(f.id)
        if g is None:
            g = groups[f.id] = _Group(f.id, f.path, f.target_table, dict(options or {}))
        rec = g.records.get(r.record_number)
        if rec is None:
            rec = g.records[r.record_number] = _Record(f.id, r.record_number, r.line, r.raw)
        rec.reject_ids.append(int(r.id))
        rec.masked = rec.masked or bool(r.masked)
    # the rejects of a replay whose source rejects are still unmarked (killed before marking
    # them): left for the next replay, as if that one had not been interrupted
    pending = {g.file_id for g in groups.values()
               if any(not r.masked for r in g.records.values())}
    return [g for g in groups.values() if g.options.get("replay_of_file") not in pending]


def _format(group: _Group) -> str | None:
    fmt = group.options.get("format")
    if isinstance(fmt, str) and fmt:
        return fmt if fmt in ("csv", "tsv", "jsonl") else None
    name = group.path.lower()
    for ext in (".gz", ".bz2", ".xz", ".zst", ".zstd"):
        name = name.removesuffix(ext)
    if name.endswith(".tsv"):
        return "tsv"
    if name.endswith((".csv", ".txt")):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return None


def _entry(group: _Group, rec: _Record, outcome: str, reason: str | None, **more: Any
           ) -> dict[str, Any]:
    return {"path": group.path, "table": group.table, "file_id": group.file_id,
            "record_number": rec.record_number, "line": rec.line,
            "reject_ids": rec.reject_ids, "outcome": outcome, "reason": reason, **more}


def _replay_group(group: _Group, schema: Any, into: str, audit: str | None, settings: Any,
                  plugins: Sequence[object] | None, tmp: str, report: ReplayReport) -> None:
    from tallyclerk.api import load

    records = sorted(group.records.values(), key=lambda r: r.record_number)
    todo = [r for r in records if not r.masked]
    for rec in records:
        if rec.masked:
            report.records.append(_entry(group, rec, "masked", MASKED_REASON))
    if not todo:
        return
    fmt = _format(group)
    if fmt is None:
        for rec in todo:
            report.records.append(_entry(group, rec, "failed",
                                         "only CSV, TSV and JSONL rejects can be replayed"))
        return
    ids = ",".join(str(i) for rec in todo for i in rec.reject_ids)
    key = hashlib.sha256(f"{group.table}\n{group.file_id}\n{ids}".encode()).hexdigest()
    fingerprint = "replay:" + key[:56]
    audit_url = audit or _default_audit(into)
    done = _loaded_claim(audit_url, group.table, fingerprint)
    if done is None:
        path = os.path.join(tmp, f"replay-of-file-{group.file_id}.{fmt}")
        # recorded in the batch's options: what this replay replays
        # the fixed schema corrects the table's: its next version (types stay the table's)
        options: dict[str, Any] = {"replay_of_file": group.file_id,
                                   "revise_schema": schema is not None}
        if fmt == "csv":
            options["delimiter"] = _delimiter(group)
            _write_csv(path, _header(group, schema, into), options["delimiter"], todo)
        elif fmt == "tsv":  # no quoting in TSV: the names as they are
            _write_lines(path, ["\t".join(_header(group, schema, into))], todo)
        else:
            _write_lines(path, [], todo)
        from tallyclerk.fingerprints import assign

        assign(path, fingerprint)
        result = load(path, table=group.table, into=into, audit=audit, schema=schema,
                      format=fmt, options=options, settings=settings, plugins=plugins)
        report.batches.append(result.batch_id)
        done = _loaded_claim(audit_url, group.table, fingerprint)
        if done is None:
            why = "; ".join(f.error or f.status for f in result.files) or "not loaded"
            for rec in todo:
                report.records.append(_entry(group, rec, "failed", why))
            return
    faults.point("replay-before-mark")
    for entry in _mark(audit_url, done, todo):
        rec = group.records[entry.pop("source_record")]
        report.records.append(_entry(group, rec, **entry))


def _default_audit(into: str) -> str:
    from tallyclerk.dburl import default_audit_url

    return default_audit_url(into)


def _loaded_claim(audit_url: str, table: str, fingerprint: str) -> tuple[int, str] | None:
    """(file id, batch id) of the committed replay with this identity, if any."""
    from tallyclerk.audit.replay_store import replay_store

    with replay_store(audit_url) as store:
        return store.loaded_claim(table, fingerprint)


def _mark(audit_url: str, done: tuple[int, str], todo: Sequence[_Record]
          ) -> list[dict[str, Any]]:
    """Mark the old rejects replayed (one transaction, only those still unmarked)."""
    from tallyclerk.audit.replay_store import replay_store

    file_id, batch_id = done
    now = datetime.now(timezone.utc)
    with replay_store(audit_url) as store:
        again = store.mark(file_id, batch_id, now, [rec.reject_ids for rec in todo])
    out: list[dict[str, Any]] = []
    for number, rec in enumerate(todo, start=1):
        rule, reason, column = again.get(number, (None, None, None))
        out.append({"source_record": rec.record_number,
                    "outcome": "rejected" if number in again else "loaded",
                    "reason": reason, "rule": rule, "column": column,
                    "replay_batch_id": batch_id, "replay_file_id": file_id,
                    "replay_record_number": number})
    return out


def _delimiter(group: _Group) -> str:
    d = group.options.get("delimiter")
    return d if isinstance(d, str) and d else ","


def _header(group: _Group, schema: Any, into: str) -> list[str]:
    from tallyclerk.dburl import parse_url

    try:
        db = parse_url(into)
    except ConfigError:
        db = None
    if db is not None and not db.in_memory:
        cols = _target_columns(db, group.table)
        if cols is not None:
            return [c for c in cols if not c.startswith("_tc_")]
    if schema is not None:
        return list(schema.field_names)
    raise ConfigError(f"cannot read the columns of table {group.table!r} from {into}: give "
                      "--schema to replay its CSV rejects")


def _target_columns(db: Any, table: str) -> list[str] | None:
    """The columns of ``table`` in the target database, in order; None when it has none."""
    if db.dialect == "sqlite":
        import sqlite3

        if db.path is None or not os.path.exists(db.path):
            return None
        conn = sqlite3.connect(db.path)
        try:
            rows = conn.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid",
                                (table,)).fetchall()
        finally:
            conn.close()
        return [str(r[0]) for r in rows] or None
    from sqlalchemy import create_engine, inspect

    engine = create_engine(db.url)
    try:
        with engine.connect() as server:
            insp = inspect(server)
            if insp.has_table(table):
                return [str(c["name"]) for c in insp.get_columns(table)]
    finally:
        engine.dispose()
    return None


def _write_csv(path: str, header: Sequence[str], delimiter: str,
               records: Sequence[_Record]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=delimiter, lineterminator="\n").writerow(header)
        for rec in records:
            fh.write(rec.raw.rstrip("\r\n") + "\n")


def _write_lines(path: str, head: Sequence[str], records: Sequence[_Record]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for line in head:
            fh.write(line + "\n")
        for rec in records:
            fh.write(rec.raw.rstrip("\r\n") + "\n")
