"""``tallyclerk verify``: the ledger's hash chain, through the real CLI on real SQLite files.

Tamper cases an auditor cares about (edit a count, delete a reject, swap two events, cut the
tail) are each detected with the broken link named; a whole chain rewritten after the last
published anchor is detected only against that anchor (what the chain cannot prove alone).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tallyclerk
from tests.cli.conftest import query
from tests.cli.conftest import tallyclerk as cli


def _loaded(work: Path) -> Path:
    r = cli("load", "a.csv", "b.csv", "--table", "t", "--schema", "schema.json", cwd=work)
    assert r.code == 0, r.err
    return work / "tallyclerk.db"


def _verify(work: Path, *args: str) -> tuple[int, dict]:
    r = cli("verify", "--json", *args, cwd=work)
    assert "Traceback" not in r.err
    return r.code, r.json()


def _sql(db: Path, sql: str, params: tuple = ()) -> None:
    con = sqlite3.connect(db)
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def test_a_whole_ledger_verifies_and_every_row_is_sealed(work: Path) -> None:
    db = _loaded(work)
    code, rep = _verify(work)
    assert code == 0 and rep["ok"] is True and rep["broken"] is None
    assert rep["unsealed"] == {}
    # every row of the five tables is a link: batch, 2 files, 2 rejects, the events, the
    # table's schema version
    assert query(db, "SELECT count(*) FROM tallyclerk_schemas") == [(1,)]
    counts = sum(query(db, f"SELECT count(*) FROM {t}")[0][0] for t in
                 ("tallyclerk_batches", "tallyclerk_files", "tallyclerk_rejects",
                  "tallyclerk_events", "tallyclerk_schemas"))
    assert rep["links"] == counts == rep["head"]["chain_seq"]
    anchor = cli("verify", "--anchor", cwd=work)
    assert anchor.code == 0 and anchor.out.strip() == rep["head"]["hash"]


def test_an_edited_count_is_named(work: Path) -> None:
    db = _loaded(work)
    file_id = query(db, "SELECT id FROM tallyclerk_files WHERE path = 'b.csv'")[0][0]
    _sql(db, "UPDATE tallyclerk_files SET rows_rejected = 0 WHERE id = ?", (file_id,))
    code, rep = _verify(work)
    assert code == 1 and rep["ok"] is False
    b = rep["broken"]
    assert (b["table"], b["row"]) == ("tallyclerk_files", file_id)
    assert "edited" in b["what"]
    text = cli("verify", cwd=work)
    assert text.code == 1 and f"tallyclerk_files row {file_id}" in text.out


def test_a_deleted_reject_is_named(work: Path) -> None:
    db = _loaded(work)
    (first, pos1), (second, pos2) = query(
        db, "SELECT id, chain_seq FROM tallyclerk_rejects ORDER BY id")
    _sql(db, "DELETE FROM tallyclerk_rejects WHERE id = ?", (first,))
    code, rep = _verify(work)
    assert code == 1
    b = rep["broken"]
    assert b["chain_seq"] == pos1 and "missing" in b["what"]
    assert f"before tallyclerk_rejects row {second} (position {pos2})" in b["what"]
    # the text names the position, not a table the deleted row may not have been in
    text = cli("verify", cwd=work)
    assert text.code == 1 and text.out.startswith(f"BROKEN at chain position {pos1}: "), text.out


def test_two_swapped_events_are_named(work: Path) -> None:
    db = _loaded(work)
    # two events next to each other in the chain (its order is the sealing order, which
    # interleaves the tables' rows)
    seqs = query(db, "SELECT id, chain_seq FROM tallyclerk_events ORDER BY chain_seq")
    pairs = zip(seqs, seqs[1:], strict=False)
    (a, b_id), = [(x, y) for (x, sx), (y, sy) in pairs if sy == sx + 1][:1]
    con = sqlite3.connect(db)
    try:  # exchange their content, keep their ids and links
        cols = "type, batch_id, file_id, payload, created_at, correlation_id"
        ra = con.execute(f"SELECT {cols} FROM tallyclerk_events WHERE id = ?", (a,)).fetchone()
        rb = con.execute(f"SELECT {cols} FROM tallyclerk_events WHERE id = ?", (b_id,)).fetchone()
        sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
        con.execute(f"UPDATE tallyclerk_events SET {sets} WHERE id = ?", (*rb, a))
        con.execute(f"UPDATE tallyclerk_events SET {sets} WHERE id = ?", (*ra, b_id))
        con.commit()
    finally:
        con.close()
    code, rep = _verify(work)
    assert code == 1
    broken = rep["broken"]
    assert (broken["table"], broken["row"]) == ("tallyclerk_events", a)
    assert f"swapped with tallyclerk_events row {b_id}" in broken["what"]


def test_an_edited_schema_version_is_named(work: Path) -> None:
    db = _loaded(work)
    (sid, text), = query(db, "SELECT id, schema_json FROM tallyclerk_schemas")
    widened = json.loads(text)
    widened["fields"][0]["type"] = "string"  # what the table's rows were checked against
    _sql(db, "UPDATE tallyclerk_schemas SET schema_json = ? WHERE id = ?",
         (json.dumps(widened), sid))
    code, rep = _verify(work)
    assert code == 1 and rep["ok"] is False
    b = rep["broken"]
    assert (b["table"], b["row"]) == ("tallyclerk_schemas", sid)
    assert "edited" in b["what"]
    text_out = cli("verify", cwd=work)
    assert text_out.code == 1 and f"tallyclerk_schemas row {sid}" in text_out.out


def test_a_cut_tail_is_caught_by_the_head(work: Path) -> None:
    db = _loaded(work)
    last = query(db, "SELECT max(id) FROM tallyclerk_events")[0][0]
    _sql(db, "DELETE FROM tallyclerk_events WHERE id = ?", (last,))
    code, rep = _verify(work)
    assert code == 1 and rep["broken"]["table"] == "tallyclerk_chain_head"


def test_a_rewritten_chain_is_caught_only_by_a_published_anchor(work: Path) -> None:
    db = _loaded(work)
    anchor = cli("verify", "--anchor", cwd=work).out.strip()
    # later loads extend the chain: the anchor stays in it
    (work / "c.csv").write_text("id,name,amount\n99,c,1\n", encoding="utf-8")
    assert cli("load", "c.csv", "--table", "t", "--schema", "schema.json", cwd=work).code == 0
    code, rep = _verify(work, "--since-anchor", anchor)
    assert code == 0 and rep["anchor_found"] is True
    # an attacker with write access edits a count and recomputes the whole chain
    _sql(db, "UPDATE tallyclerk_files SET rows_written = 1000 WHERE path = 'a.csv'")
    for t in ("tallyclerk_batches", "tallyclerk_files", "tallyclerk_rejects",
              "tallyclerk_events", "tallyclerk_schemas"):
        _sql(db, f"UPDATE {t} SET chain_seq = NULL, chain_hash = NULL")
    _sql(db, "DELETE FROM tallyclerk_chain_head")
    from tallyclerk.audit import AuditService

    with AuditService(f"sqlite:///{db}") as audit:
        assert audit.seal() > 0
    code, rep = _verify(work)
    assert code == 0  # alone, a consistent rewrite cannot be told from the truth
    code, rep = _verify(work, "--since-anchor", anchor)
    assert code == 1 and rep["anchor_found"] is False


def test_a_forced_reload_keeps_the_chain_whole(work: Path) -> None:
    _loaded(work)
    r = cli("load", "a.csv", "--table", "t", "--schema", "schema.json", "--force", cwd=work)
    assert r.code == 0, r.err
    assert query(work / "tallyclerk.db",
                 "SELECT count(*) FROM tallyclerk_files WHERE status = 'replaced'") == [(1,)]
    code, rep = _verify(work)
    assert code == 0, rep
    # 'replaced' hashes as 'loaded' (a later load may supersede a sealed row), so a row made
    # 'replaced' must have been superseded by a later load: the newest load was not
    newest = query(work / "tallyclerk.db", "SELECT max(id) FROM tallyclerk_files")[0][0]
    _sql(work / "tallyclerk.db",
         "UPDATE tallyclerk_files SET status = 'replaced' WHERE id = ?", (newest,))
    code, rep = _verify(work)
    assert code == 1 and "cleaned_by" in rep["broken"]["what"]
    assert rep["broken"]["row"] == newest


def test_the_python_api(work: Path) -> None:
    db = _loaded(work)
    report = tallyclerk.verify(f"sqlite:///{db}")
    assert isinstance(report, tallyclerk.VerifyReport) and report.ok
    assert not tallyclerk.verify(f"sqlite:///{db}", since_anchor="f" * 64).ok


COLUMNS = {
    "tallyclerk_batches": ["rows_read", "rows_written", "files_loaded", "status", "user"],
    "tallyclerk_files": ["rows_read", "rows_written", "rows_rejected", "path", "fingerprint",
                         "error"],
    "tallyclerk_rejects": ["line", "reason", "raw", "rule"],
    "tallyclerk_events": ["type", "payload", "created_at"],
}


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_edit_of_a_sealed_row_is_detected(work: Path, data: st.DataObject) -> None:
    """Property: changing any hashed value of any sealed row breaks the chain at that row."""
    db = work / "tallyclerk.db"
    if not db.exists():
        _loaded(work)
    table = data.draw(st.sampled_from(sorted(COLUMNS)))
    column = data.draw(st.sampled_from(COLUMNS[table]))
    ids = [r[0] for r in query(db, f"SELECT id FROM {table} ORDER BY id")]
    row = data.draw(st.sampled_from(ids))
    before = query(db, f"SELECT {column} FROM {table} WHERE id = ?", (row,))[0][0]
    changed = data.draw(st.one_of(st.integers(-5, 10**6), st.text(max_size=8)).filter(
        lambda v: v != before and str(v) != str(before)))
    _sql(db, f"UPDATE {table} SET {column} = ? WHERE id = ?", (changed, row))
    try:
        report = tallyclerk.verify(f"sqlite:///{db}")
        assert not report.ok
        assert report.broken is not None
        assert (report.broken.table, report.broken.row_id) == (table, row)
    finally:
        _sql(db, f"UPDATE {table} SET {column} = ? WHERE id = ?", (before, row))
    assert tallyclerk.verify(f"sqlite:///{db}").ok


def test_write_modes_keep_the_chain_whole(work: Path) -> None:
    """--mode replace retires the table's loaded files after they were sealed (and swaps a
    shadow table in): the chain stays whole, and a retired row is still checked."""
    _loaded(work)
    (work / "c.csv").write_text("id,name,amount\n99,c,1\n", encoding="utf-8")
    r = cli("load", "c.csv", "--table", "t", "--schema", "schema.json", "--mode", "replace",
            cwd=work)
    assert r.code == 0, r.err
    db = work / "tallyclerk.db"
    assert query(db, "SELECT count(*) FROM tallyclerk_files WHERE status = 'replaced'") == [(2,)]
    code, rep = _verify(work)
    assert code == 0 and rep["unsealed"] == {}, rep
    _sql(db, "UPDATE tallyclerk_files SET rows_written = 0 WHERE status = 'replaced'")
    code, rep = _verify(work)
    assert code == 1 and rep["broken"]["table"] == "tallyclerk_files"
