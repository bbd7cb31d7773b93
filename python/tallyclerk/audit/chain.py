"""Tamper evidence: one hash chain over the ledger's rows, sealed when they become final.

Design (the README's "Tamper evidence" section states what it proves):

* **What is chained.** Every row of ``tallyclerk_batches``, ``tallyclerk_files``,
  ``tallyclerk_rejects``, ``tallyclerk_events`` and ``tallyclerk_schemas`` (the remembered
  schema versions) gets ``chain_seq`` (its position in one chain over all five tables) and
  ``chain_hash = sha256(predecessor's chain_hash, table, id, content)`` where *content* is the
  row's stored values (canonical JSON, storage form). The last link is kept in
  ``tallyclerk_chain_head``.
* **When.** Rows are written from many places (the loader's file transaction through the Rust
  SQLite writer, the event writer thread, the watchdog, other workers) and some change while
  they run (a batch until it finishes, a file ``loading`` -> ``loaded``). So a row is hashed in
  its *final* state, by a seal that appends every final unsealed row: a batch once finished
  (``finished_at`` set), a file once ``loaded``/``failed``/``skipped``, every committed reject
  and event. Seals run in the audit store's own transactions: when a batch starts and
  finishes, and when the service closes (after the event queue has drained). The hot path
  (the file's transaction) never touches the chain.
* **Many workers.** One serialised append, not a chain per writer: a seal locks the head row
  (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` write lock) *first*,
  then reads the unsealed rows. Seals are rare (a few per batch) and short, so workers seldom
  wait, and a single chain has a single head to publish (``verify --anchor``): with a chain per
  writer an auditor would have to collect and compare one anchor per writer.
* **Legitimate changes after sealing.** A forced reload turns the earlier ``loaded`` row into
  ``replaced`` and a later claim sets ``cleaned_by`` on failed attempts; the content hashed for
  a file therefore reads ``replaced`` as ``loaded`` and leaves out ``cleaned_by`` and the lease
  (``lease_expires_at``); :func:`verify` checks instead that a ``replaced`` row is cleaned by a
  later sealed row of the same content.
* **Sealed rows are not rewritten.** A batch closed by someone else (another worker took over
  its expired lease, or the watchdog timed it out) is final and may be sealed before its own
  worker finishes; that worker's late ending is then recorded as a ``batch_finished_late``
  event instead of an update (``update_batch(only_if_unsealed=True)``). On PostgreSQL a seal
  locks the batch rows it reads (``FOR UPDATE``), so an update racing it is hashed or refused,
  never half of each.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from tallyclerk.audit.catalogue import QUOTED, QUOTED_POSTGRESQL
from tallyclerk.digest import sha256

if TYPE_CHECKING:
    from tallyclerk.audit.chainreport import Break, VerifyReport
    from tallyclerk.audit.repo_protocol import Repository

__all__ = ["GENESIS", "TABLES", "Break", "VerifyReport", "seal", "verify"]

GENESIS = "0" * 64
"""The predecessor hash of the first link."""

TABLES: tuple[str, ...] = (
    "tallyclerk_batches",
    "tallyclerk_files",
    "tallyclerk_rejects",
    "tallyclerk_events",
    "tallyclerk_schemas",
)
"""The chained tables, in the order a seal visits them (the models' names; tested)."""
_FINAL = {
    "tallyclerk_batches": "finished_at IS NOT NULL AND status <> 'running'",
    # a file loaded into a replace's shadow table is not final: the swap renames its table
    # (tallyclerk.modes.SHADOW_PREFIX), or an abandoned replace makes it failed
    "tallyclerk_files": "status IN ('loaded', 'failed', 'skipped', 'replaced') AND NOT "
    "(status = 'loaded' AND substr(target_table, 1, 12) = '_tc_replace_')",
    "tallyclerk_rejects": "1 = 1",
    "tallyclerk_events": "1 = 1",
    # a table's schema version, committed with the file that introduced it; never updated
    "tallyclerk_schemas": "1 = 1",
}
_NOT_HASHED = {"chain_seq", "chain_hash", "lease_expires_at", "cleaned_by",
               # set by a later `tallyclerk replay` (whose own batch and file are chained)
               "replayed_by_batch", "replayed_at", "replay_file_id", "replay_record_number",
               "replay_outcome"}
_SEAL_ROWS = 5000  # rows read per round of a seal


_QUOTED = {"sqlite": QUOTED, "postgresql": QUOTED_POSTGRESQL}
"""Each dialect's quoted column names (from the generated catalogue: SQLAlchemy's identifier
preparers, recorded; PostgreSQL quotes ``user``, SQLite does not)."""


def _columns(table: str) -> list[str]:
    """``id`` first, then the hashed columns in the model's order."""
    return ["id"] + [n for n in QUOTED[table] if n not in _NOT_HASHED and n != "id"]


def _quoted_columns(dialect: str, table: str) -> str:
    """The SELECT list of :func:`_columns`, quoted as ``dialect`` quotes them."""
    try:
        quoted = _QUOTED[dialect][table]
    except KeyError:
        raise ValueError(f"the hash chain needs a SQLite or PostgreSQL audit store, "
                         f"not {dialect!r}") from None
    return ", ".join(quoted[c] for c in _columns(table))


def _select_unsealed_sql(dialect: str, table: str) -> str:
    """A seal's read of ``table``: its final unsealed rows, a round at a time."""
    return (
        f"SELECT {_quoted_columns(dialect, table)} FROM {table} "
        f"WHERE chain_hash IS NULL AND {_FINAL[table]} ORDER BY id LIMIT {_SEAL_ROWS}"
        # PostgreSQL: lock the batches read, so a concurrent update of one (a stalled
        # worker finishing its batch) either commits first and is hashed, or waits
        # and then finds it sealed; never hashed in one state and stored in another.
        # (Final rows of the other tables change only in columns not hashed.)
        + (" FOR UPDATE" if dialect == "postgresql" and table == "tallyclerk_batches" else "")
    )


def _mark(dialect: str) -> str:
    """The driver's positional parameter (psycopg ``%s``, ``sqlite3`` ``?``)."""
    return "%s" if dialect == "postgresql" else "?"


def _update_link_sql(dialect: str, table: str) -> str:
    mark = _mark(dialect)
    return f"UPDATE {table} SET chain_seq = {mark}, chain_hash = {mark} WHERE id = {mark}"


def _update_head_sql(dialect: str) -> str:
    mark = _mark(dialect)
    return f"UPDATE tallyclerk_chain_head SET seq = {mark}, hash = {mark} WHERE id = 1"


def _select_sealed_sql(dialect: str, table: str) -> str:
    """:func:`verify`'s read of ``table``: its sealed rows in chain order."""
    return (f"SELECT chain_seq, chain_hash, {_quoted_columns(dialect, table)} FROM {table} "
            "WHERE chain_seq IS NOT NULL ORDER BY chain_seq")


def _content(table: str, cols: Sequence[str], row: Sequence[Any]) -> bytes:
    """The row's values but its id (hashed apart, as the link's row id), canonical JSON."""
    values = list(row)
    if table == "tallyclerk_files":
        i = cols.index("status")
        if values[i] == "replaced":
            values[i] = "loaded"  # superseded by a forced reload after it was sealed
    return orjson.dumps(values[1:], default=str)


def link_hash(prev: str, table: str, row_id: int | str, content: bytes) -> str:
    return str(_sha256(f"{prev}\n{table}\n{row_id}\n".encode() + content).hexdigest())


_sha256 = sha256  # CPython's own SHA-256: no OpenSSL (hashlib) at start-up, the same digest


def seal(repo: Repository) -> int:
    """Append every final unsealed ledger row to the chain; returns how many were sealed.

    Runs in the caller's transaction (``repo``'s, on either audit repository), which must not
    have written ledger rows that another sealer could be waiting on (call it first, or at the
    end of a short transaction).
    """
    dialect = repo.dialect_name
    pg = dialect == "postgresql"
    sql = repo.executor()
    found = sql.query(
        "SELECT seq, hash FROM tallyclerk_chain_head WHERE id = 1" + (" FOR UPDATE" if pg else "")
    )
    if not found:
        sql.execute(
            "INSERT INTO tallyclerk_chain_head (id, seq, hash) VALUES (1, 0, '" + GENESIS + "')"
        )
        if pg:  # a concurrent first sealer inserted it too: the unique key waited; lock it
            found = sql.query(
                "SELECT seq, hash FROM tallyclerk_chain_head WHERE id = 1 FOR UPDATE"
            )
        seq, prev = (0, GENESIS) if not found else (int(found[0][0]), str(found[0][1]))
    else:
        seq, prev = int(found[0][0]), str(found[0][1])
    sealed = 0
    # the driver's own cursor: a seal may read and update many rows (a load's rejects), and
    # per-row wrapping would cost more than the hashing
    cursor = repo.driver_cursor()
    try:
        for table in TABLES:
            cols = _columns(table)
            select = _select_unsealed_sql(dialect, table)
            update = _update_link_sql(dialect, table)
            while True:
                cursor.execute(select)
                rows = cursor.fetchall()
                if not rows:
                    break
                params = []
                for row in rows:
                    seq += 1
                    prev = link_hash(prev, table, row[0], _content(table, cols, row))
                    params.append((seq, prev, row[0]))
                cursor.executemany(update, params)
                sealed += len(rows)
                if len(rows) < _SEAL_ROWS:
                    break
    finally:
        cursor.close()
    if sealed:
        sql.execute(_update_head_sql(dialect), (seq, prev))
    return sealed


def _sealed_rows(
    repo: Repository, table: str
) -> Generator[tuple[int, str, int | str, str, bytes], None, None]:
    cols = _columns(table)
    rows = repo.stream_query(_select_sealed_sql(repo.dialect_name, table))
    try:
        for row in rows:
            yield int(row[0]), table, row[2], str(row[1]), _content(table, cols, row[2:])
    finally:
        rows.close()  # an early end (a broken link): let go of the cursor now


def verify(repo: Repository, *, since_anchor: str | None = None) -> VerifyReport:
    """Recompute the chain from its first link; the report names the first broken link.

    Checks, in chain order: positions follow one another (a gap is a deleted or unsealed
    row), each row's content and predecessor give its stored hash (an edit, or two rows
    swapped), the head matches the last link (rows deleted at the end), ``replaced`` files are
    cleaned by a later sealed load of the same content. Read-only; in ``repo``'s transaction.
    """
    from tallyclerk.audit.chainreport import VerifyReport

    report = VerifyReport(anchor=since_anchor)
    if since_anchor is not None:
        report.anchor_found = False
    found = repo.executor().query("SELECT seq, hash FROM tallyclerk_chain_head WHERE id = 1")
    head = found[0] if found else None
    streams = [_sealed_rows(repo, t) for t in TABLES]
    try:
        return _check(repo, report, head, heapq.merge(*streams), since_anchor)
    finally:
        for stream in streams:
            stream.close()


def _check(
    repo: Repository,
    report: VerifyReport,
    head: Sequence[Any] | None,
    links: Iterator[tuple[int, str, int | str, str, bytes]],
    since_anchor: str | None,
) -> VerifyReport:
    """:func:`verify`'s walk along the links, then the head and the replaced files."""
    from tallyclerk.audit.chainreport import Break

    prev, expected_seq = GENESIS, 1
    last: tuple[str, int | str] = ("", 0)
    for seq, table, row_id, stored, content in links:
        if seq != expected_seq:
            after = f"{last[0]} row {last[1]}" if report.links else "the start of the chain"
            if seq < expected_seq:
                what = f"chain position {seq} appears twice (a link was copied or renumbered)"
                report.broken = Break(table, row_id, seq, what)
            else:
                what = (f"chain position {expected_seq} is missing: the sealed row after "
                        f"{after} (position {expected_seq - 1}) and before {table} row "
                        f"{row_id} (position {seq}) was deleted, or its link cleared")
                report.broken = Break(last[0] or table, None, expected_seq, what)
            return report
        computed = link_hash(prev, table, row_id, content)
        if computed != stored:
            report.broken = Break(table, row_id, seq,
                                  _diagnose(prev, table, row_id, stored, next(links, None)))
            return report
        if since_anchor is not None and stored == since_anchor:
            report.anchor_found = True
        prev, expected_seq, last = stored, seq + 1, (table, row_id)
        report.links += 1
    report.head_seq, report.head_hash = expected_seq - 1, prev
    if head is None:
        if report.links:
            report.broken = Break("tallyclerk_chain_head", 1, None,
                                  "the chain head row is missing")
        return _after(repo, report)
    if (int(head[0]), str(head[1])) != (report.head_seq, report.head_hash):
        where = f"the last link is {last[0]} row {last[1]}" if report.links else "no link"
        report.broken = Break(
            "tallyclerk_chain_head", 1, int(head[0]),
            f"the head says position {head[0]} but the chain ends at position "
            f"{report.head_seq} ({where}): sealed rows were deleted at the end, or the head "
            "was changed",
        )
        return report
    return _after(repo, report)


def _diagnose(
    prev: str,
    table: str,
    row_id: int | str,
    stored: str,
    following: tuple[int, str, int | str, str, bytes] | None,
) -> str:
    """What changed at a link whose recomputed hash differs from the stored one."""
    if following is not None:
        _seq, f_table, f_id, f_stored, f_content = following
        if f_table == table and link_hash(prev, table, row_id, f_content) == stored:
            return (f"its content was swapped with {f_table} row {f_id} (the next link): each "
                    "holds the other's sealed content")
        if link_hash(stored, f_table, f_id, f_content) == f_stored:
            return ("its content was edited after it was sealed (its stored hash still links "
                    "to the next row: the hash was not recomputed)")
        return ("its content and its stored hash changed (the next link no longer follows "
                "from it: rows were rewritten or reordered)")
    return "its content was edited after it was sealed (it is the last link)"


def _after(repo: Repository, report: VerifyReport) -> VerifyReport:
    """Replaced files cleaned by a later sealed load of the same content; unsealed counts."""
    from tallyclerk.audit.chainreport import Break

    sql = repo.executor()
    found = sql.query(
        # cleaned by a forced reload of the same content, or (cleaned_by empty) retired by a
        # later --mode replace load of the same table
        "SELECT f.id, f.chain_seq FROM tallyclerk_files f LEFT JOIN tallyclerk_files c "
        "ON c.id = f.cleaned_by AND c.target_table = f.target_table "
        "AND c.fingerprint = f.fingerprint AND c.id > f.id "
        "WHERE f.status = 'replaced' AND f.chain_seq IS NOT NULL AND c.id IS NULL "
        "AND NOT (f.cleaned_by IS NULL AND EXISTS (SELECT 1 FROM tallyclerk_files r "
        "WHERE r.target_table = f.target_table AND r.id > f.id "
        "AND r.status IN ('loaded', 'replaced'))) "
        "ORDER BY f.chain_seq LIMIT 1"
    )
    bad = found[0] if found else None
    if bad is not None and report.broken is None:
        report.broken = Break("tallyclerk_files", int(bad[0]), bad[1],
                              "status 'replaced' but no later load of the same content "
                              "cleaned it (cleaned_by)")
    for table in TABLES:
        n = sql.query(
            f"SELECT count(*) FROM {table} WHERE chain_hash IS NULL AND {_FINAL[table]}"
        )[0][0]
        if n:
            report.unsealed[table] = int(n)
    return report


def __getattr__(name: str) -> Any:
    """:class:`Break` and :class:`VerifyReport` (what :func:`verify` finds) are defined in
    :mod:`tallyclerk.audit.chainreport` and imported when first asked for: a load only seals,
    and the two dataclasses cost ~1 ms of every start (issue 16.1)."""
    if name in ("Break", "VerifyReport"):
        from tallyclerk.audit import chainreport

        return getattr(chainreport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
