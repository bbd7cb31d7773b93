"""The manifest's state transitions against a simple model (hypothesis state machine).

Two simulated worker processes claim, load, fail and crash (a crash leaves their claims with
the pid of a process that no longer exists) in any order, with or without ``force``, over a
few files (one content under two names). Data lives in the audit database (one transaction
per file) or in a separate database (the data commit and the audit record are two steps, and
a crash may fall between them). After every step: no file's rows are in the target table
twice, a file once loaded is never lost, and claims are exclusive. At the end a clean re-run
loads every file exactly once, its rows tagged with its ``loaded`` manifest row.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tallyclerk import SqliteWriter
from tallyclerk.audit import AuditService, FileClaim, FileResult, FileSkip
from tallyclerk.settings import Settings

TARGET = "target"
CONTENTS = 3  # distinct contents; content 0 also exists under a second name
DEAD_PID = 2**22 + 54321


@dataclass
class InFlight:
    proc: int
    claim: FileClaim
    identity: int
    data_committed: bool = False


class ManifestMachine(RuleBasedStateMachine):
    separate_data_db = False

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="tc-model-"))
        self.audit_db = str(self.dir / "audit.db")
        self.data_db = str(self.dir / "data.db") if self.separate_data_db else self.audit_db
        conf = Settings(audit_async=False, busy_timeout_ms=10_000)
        self.procs = [AuditService(f"sqlite:///{self.audit_db}", settings=conf) for _ in range(2)]
        with sqlite3.connect(self.data_db) as conn:
            conn.execute(f'CREATE TABLE "{TARGET}" (v TEXT, _tc_file_id INTEGER)')
        self.writer = SqliteWriter(self.data_db)
        self.batches = [svc.start_batch(TARGET, {}) for svc in self.procs]
        self.paths: list[tuple[int, str]] = []
        for k in range(CONTENTS):
            self.paths.append((k, self._file(f"f{k}.csv", k)))
        self.paths.append((0, self._file("copy-of-f0.csv", 0)))
        self.inflight: dict[int, InFlight] = {}
        self.done: set[int] = set()
        # contents with an interrupted attempt no loaded claim has replaced since: a claim
        # found a dead loading row (rule 2) and did not end loaded; its rows may be in the
        # target (a committed forced reload), so the next claim must not skip
        self.interrupted: set[int] = set()

    def _file(self, name: str, k: int) -> str:
        path = self.dir / name
        path.write_text(f"k{k}-a\nk{k}-b\n", encoding="utf-8")
        return str(path)

    # --- helpers ---------------------------------------------------------------------------

    def _manifest(self, k: int) -> list[tuple[int, str]]:
        fingerprint = self._fingerprint(k)
        with sqlite3.connect(self.audit_db) as conn:
            return conn.execute(
                "SELECT id, status FROM tallyclerk_files WHERE fingerprint = ? ORDER BY id",
                (fingerprint,),
            ).fetchall()

    def _fingerprint(self, k: int) -> str:
        from tallyclerk import file_fingerprint

        return file_fingerprint(self.paths[k][1])

    def _rows(self) -> list[tuple[str, int]]:
        with sqlite3.connect(self.data_db) as conn:
            return conn.execute(f'SELECT v, _tc_file_id FROM "{TARGET}"').fetchall()

    def _write_data(self, flight: InFlight, *, with_manifest: bool) -> None:
        claim, svc = flight.claim, self.procs[flight.proc]
        k = flight.identity
        w = self.writer
        w.begin()
        svc.ledger.prepare_file_in(w, claim, TARGET)
        w.executemany(
            f'INSERT INTO "{TARGET}" VALUES (?, ?)',
            [(f"k{k}-a", claim.file_id), (f"k{k}-b", claim.file_id)],
        )
        if with_manifest:
            svc.ledger.commit_file_in(w, claim, FileResult(2, 2, 0, 12))
        w.commit()

    # --- rules -----------------------------------------------------------------------------

    @rule(proc=st.integers(0, 1), which=st.integers(0, CONTENTS), force=st.booleans())
    def claim(self, proc: int, which: int, force: bool) -> None:
        k, path = self.paths[which]
        live = any(f.identity == k for f in self.inflight.values())
        statuses = [s for _, s in self._manifest(k)]
        result = self.procs[proc].ledger.claim_file(self.batches[proc], path, TARGET, force=force)
        if live:
            assert isinstance(result, FileSkip), "two live claims of one file"
            assert result.reason.startswith("being loaded by batch")
            return
        if "loading" in statuses:  # not live (checked above): its owner died
            self.interrupted.add(k)
        expect_skip = ("loaded" in statuses and not force and "loading" not in statuses
                       and k not in self.interrupted)
        assert isinstance(result, FileSkip) == expect_skip, (statuses, force, result)
        if isinstance(result, FileClaim):
            self.inflight[result.file_id] = InFlight(proc, result, k)

    @precondition(lambda self: any(not f.data_committed for f in self.inflight.values()))
    @rule(data=st.data())
    def load(self, data: st.DataObject) -> None:
        """Same database: rows and manifest in one transaction. Separate: the data commit."""
        ready = sorted(i for i, f in self.inflight.items() if not f.data_committed)
        flight = self.inflight[data.draw(st.sampled_from(ready))]
        if self.separate_data_db:
            self._write_data(flight, with_manifest=False)
            flight.data_committed = True
        else:
            self._write_data(flight, with_manifest=True)
            del self.inflight[flight.claim.file_id]
            self.done.add(flight.identity)
            self.interrupted.discard(flight.identity)

    @precondition(lambda self: any(f.data_committed for f in self.inflight.values()))
    @rule(data=st.data())
    def record_loaded(self, data: st.DataObject) -> None:
        """Separate database: the audit record after the data commit."""
        ready = sorted(i for i, f in self.inflight.items() if f.data_committed)
        flight = self.inflight.pop(data.draw(st.sampled_from(ready)))
        self.procs[flight.proc].ledger.finish_file(flight.claim, "loaded", FileResult(2, 2, 0, 12))
        self.done.add(flight.identity)
        self.interrupted.discard(flight.identity)

    @precondition(lambda self: any(not f.data_committed for f in self.inflight.values()))
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        ready = sorted(i for i, f in self.inflight.items() if not f.data_committed)
        flight = self.inflight.pop(data.draw(st.sampled_from(ready)))
        result = FileResult(2, 0, 2, 12, error="boom", error_class="RuntimeError")
        self.procs[flight.proc].ledger.finish_file(flight.claim, "failed", result)

    @rule(proc=st.integers(0, 1))
    def crash(self, proc: int) -> None:
        """The process dies: its claims stay 'loading' under a pid that no longer exists."""
        lost = [i for i, f in self.inflight.items() if f.proc == proc]
        with sqlite3.connect(self.audit_db) as conn:
            for file_id in lost:
                conn.execute(
                    "UPDATE tallyclerk_files SET owner = ? WHERE id = ?",
                    (f"{_host()}:{DEAD_PID}", file_id),
                )
                del self.inflight[file_id]
        self.batches[proc] = self.procs[proc].start_batch(TARGET, {})  # a new process

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def no_file_twice_and_none_lost(self) -> None:
        counts = Counter(v for v, _ in self._rows())
        for k in range(CONTENTS):
            a, b = counts[f"k{k}-a"], counts[f"k{k}-b"]
            assert a == b <= 1, f"content {k} is in the target {a} times"
            if k in self.done:
                assert a == 1, f"content {k} was loaded and is lost"

    @invariant()
    def one_loaded_row_per_file(self) -> None:
        for k in range(CONTENTS):
            assert [s for _, s in self._manifest(k)].count("loaded") <= 1

    def teardown(self) -> None:
        try:
            for proc in (0, 1):
                self.crash(proc)
            svc = self.procs[0]
            batch = svc.start_batch(TARGET, {})
            for k in range(CONTENTS):
                result = svc.ledger.claim_file(batch, self.paths[k][1], TARGET)
                if isinstance(result, FileClaim):
                    flight = InFlight(0, result, k)
                    if self.separate_data_db:
                        self._write_data(flight, with_manifest=False)
                        svc.ledger.finish_file(result, "loaded", FileResult(2, 2, 0, 12))
                    else:
                        self._write_data(flight, with_manifest=True)
            rows = self._rows()
            for k in range(CONTENTS):
                loaded = [i for i, s in self._manifest(k) if s == "loaded"]
                assert len(loaded) == 1, f"content {k}: loaded rows {loaded}"
                tags = sorted(fid for v, fid in rows if v.startswith(f"k{k}-"))
                assert tags == [loaded[0], loaded[0]], (k, tags, loaded)
        finally:
            self.writer.close()
            for svc in self.procs:
                svc.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def _host() -> str:
    import socket

    return socket.gethostname()


class SeparateDataMachine(ManifestMachine):
    separate_data_db = True


_settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestManifestSameDatabase = ManifestMachine.TestCase
TestManifestSameDatabase.settings = _settings
TestManifestSeparateDatabase = SeparateDataMachine.TestCase
TestManifestSeparateDatabase.settings = _settings
