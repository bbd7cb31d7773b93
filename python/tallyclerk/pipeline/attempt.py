"""One attempt at one file: one transaction.

``sink.begin_file(claim)``; ``audit.prepare_file_in`` deletes the rows of an earlier crashed
(or forced) load of the same file; the schema contract's new columns are added; the file is
streamed (:mod:`tallyclerk.pipeline.stream`). When the audit store is the sink's database,
the rejects and the manifest row (``audit.commit_file_in``) are written in the same
transaction, so a file's rows and its ``loaded`` status commit together or not at all;
otherwise the data commits here and the file policy records it afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tallyclerk import faults
from tallyclerk.audit import FileClaim, StoredSchema
from tallyclerk.contract import ContractViolation, FilePlan, plan_file
from tallyclerk.errors import ConfigError, SinkError, SourceError
from tallyclerk.first_schema import first_schema
from tallyclerk.pipeline.filestate import FileState
from tallyclerk.pipeline.run import BatchRun
from tallyclerk.pipeline.stream import stream_file
from tallyclerk.protocols import BatchContext, FileWrite, Source
from tallyclerk.settle import mark_loaded

__all__ = ["attempt"]


def attempt(run: BatchRun, claim: FileClaim, st: FileState, ctx: BatchContext) -> None:
    """Load ``claim``'s file in one transaction; raises (after rolling back) when it fails."""
    source = _open_source(run, run.local.get(claim.path, claim.path), ctx.options)
    try:
        columns = list(source.columns)
        while True:
            stored, remembered = run.table_schema()
            try:
                plan = st.plan = _plan(run, claim, ctx, columns, stored)
            except Exception:
                if not remembered:
                    raise
                run.forget_schema()  # refused on a remembered version: on the current one?
                continue
            fw = _begin(run, claim, plan)
            try:
                ex = fw.executor
                shared = ex if run.shared else None
                if shared is not None:
                    found = run.audit.ledger.schema_version_in(
                        shared, run.table, serialize=plan.new_version is not None)
                    if found != _base_version(plan):
                        run.forget_schema()
                        if remembered:
                            # another worker recorded a version since this batch read it:
                            # plan again on it (nothing of the file has been read yet)
                            with st.writing:
                                fw.rollback()
                            continue
                        raise SinkError(
                            f"the schema of table {run.table!r} changed while this file was "
                            f"planned (now version {found}); the file is planned and loaded "
                            "again",
                            transient=True,
                        )
                # merge: a re-run upserts the same rows again (idempotent), an earlier load's
                # rows are not deleted (later files may have updated them since)
                if claim.replaces and not run.mode.merge:
                    if ex is None:
                        raise SinkError("this sink cannot delete the rows of an earlier load")
                    run.audit.ledger.prepare_file_in(ex, claim, run.target)
                if plan.added_fields:
                    _add_columns(fw, claim.path, run.table, plan.added_fields)
                stream_file(run, source, fw, claim, ctx, st, shared)
                _write_counts(run, fw, st)
                if shared is not None:
                    if plan.new_version is not None:
                        run.audit.ledger.record_schema_in(shared, plan.new_version)
                    run.audit.ledger.commit_file_in(shared, claim, st.result())
                elif run.data_target is not None:
                    mark_loaded(ex, claim, st.result(), run.mode.mode)
                faults.point("before-data-commit")
                fw.commit()
            except BaseException:
                st.abandon = True
                if plan.new_version is not None:
                    run.forget_schema()  # committed or not: read again
                with st.writing:
                    fw.rollback()
                raise
            if plan.new_version is not None:
                run.remember_schema(plan.new_version)
            return
    finally:
        source.close()


def _plan(run: BatchRun, claim: FileClaim, ctx: BatchContext, columns: list[str],
          stored: StoredSchema | None) -> FilePlan:
    """The file's schema plan on ``stored``; sets the hooks' schema and checks the mode."""
    plan = plan_file(
        table=run.table, path=claim.path, columns=columns, stored=stored, given=run.schema,
        mode=run.columns,
        first_schema=lambda: first_schema(claim.path, run.table, columns, run.options,
                                          run.settings, local=run.local.get(claim.path)),
        batch_id=run.batch_id, file_id=claim.file_id, revise=run.revise,
    )
    # every later hook of this attempt validates against the planned schema (a plain
    # text table with nothing to drop: no validation, values load as read)
    ctx.schema = plan.schema if plan.validate else None
    if (not run.mode.merge and ctx.schema is not None and ctx.schema.keys
            and not getattr(run.sink, "checks_unique", False)):
        raise ConfigError(
            f"the sink for {getattr(run.sink, 'url', '?')} cannot check the schema's "
            "primaryKey/unique against the rows already in the table (the SQLite and "
            "PostgreSQL sinks can; --mode merge upserts by the key instead)"
        )
    if run.mode.merge:
        missing = [k for k in run.mode.primary_key if k not in columns]
        if missing and run.schema is None:
            raise SourceError(
                f"{claim.path}: no primary key column(s) "
                f"{', '.join(map(repr, missing))} in its header",
                path=claim.path,
            )
    return plan


def _begin(run: BatchRun, claim: FileClaim, plan: FilePlan) -> FileWrite:
    """The sink prepared with the plan's table and the file's transaction begun."""
    run.sink.prepare(run.target, plan.create_schema)
    try:
        return run.sink.begin_file(claim)
    except ConfigError as exc:
        if run.schema is not None and plan.create_schema is plan.schema:
            raise  # the given schema's columns: a configuration error (exit 2)
        # the columns come from this file's header (too long, too many, clashing with
        # _tc_file_id): this file fails, the other files still load
        raise SourceError(
            f"{claim.path}: its header cannot be the columns of table "
            f"{run.table!r}: {exc}",
            path=claim.path,
        ) from exc


def _base_version(plan: FilePlan) -> int:
    """The stored version ``plan`` was made on (0: none)."""
    return plan.version - 1 if plan.new_version is not None else plan.version


def _write_counts(run: BatchRun, fw: FileWrite, st: FileState) -> None:
    """Rows inserted and updated, from the sink's ``counts()`` (merge) or the mode."""
    counts = getattr(fw, "counts", None)
    if callable(counts):
        inserted, updated = counts()
        if inserted + updated != st.rows_written:
            raise SinkError(
                f"the sink counted {inserted} inserted + {updated} updated rows, but wrote "
                f"{st.rows_written}"
            )
        st.rows_inserted, st.rows_updated = int(inserted), int(updated)
    elif not run.mode.merge:
        st.rows_inserted, st.rows_updated = st.rows_written, 0


def _open_source(run: BatchRun, path: str, opts: Mapping[str, Any]) -> Source:
    source = run.hook.tallyclerk_open_source(path=path, options=opts)
    if source is None:
        fmt = opts.get("format")
        if fmt:
            raise ConfigError(f"no loader for --format {fmt!r} (csv, jsonl, or a plugin's)")
        raise SourceError(
            f"{path}: no loader recognises this file (use --format csv|jsonl, or a plugin)",
            path=path,
        )
    return source  # type: ignore[no-any-return]


def _add_columns(fw: FileWrite, path: str, table: str, fields: Sequence[Mapping[str, Any]]) -> None:
    """``--columns evolve``: the sink adds the columns in the file's transaction."""
    add = getattr(fw, "add_columns", None)
    if add is None:
        names = ", ".join(repr(f["name"]) for f in fields)
        raise ContractViolation(
            f"{path}: column(s) {names} would be added to table {table!r}, but this sink "
            "cannot add columns (use --columns discard or freeze)",
            path=path,
        )
    add(list(fields))
