"""``--mode replace``: every file loads into a shadow table, swapped in at the end of the batch.

The swap happens only when every file loaded and nothing stopped the batch; otherwise the
table stays as it was, the shadow is dropped and its loaded files become failed. A shadow
left by a replace that died before its swap is dropped by the next replace of the table.
"""

from __future__ import annotations

import logging
from typing import Any

from tallyclerk import faults, modes
from tallyclerk.errors import ConfigError, SinkError, TallyclerkError
from tallyclerk.pipeline.entries import message
from tallyclerk.pipeline.run import BatchRun
from tallyclerk.protocols import Sink, SqlExecutor

__all__ = ["Replace", "check_mode"]

log = logging.getLogger("tallyclerk.pipeline")


def check_mode(sink: Sink, mode: modes.WriteMode) -> modes.WriteMode:
    """Refuse a write mode the sink does not declare (exit 2): never append silently."""
    supported = modes.sink_modes(sink)
    if mode.mode not in supported:
        raise ConfigError(
            f"the sink for {getattr(sink, 'url', '?')} does not support --mode "
            f"{mode.mode} (it supports: {', '.join(supported)})"
        )
    if mode.replace and not callable(getattr(sink, "swap_table", None)):
        raise ConfigError("--mode replace needs a sink with swap_table()")
    return mode


class Replace:
    """The shadow table of one replace batch (``run.target``)."""

    def __init__(self, run: BatchRun) -> None:
        self.run = run
        self.swapped = False

    def finish(self, status: str | None, unclaimed: list[dict[str, Any]]) -> None:
        """Swap the shadow table in when every file loaded; else abandon the replace."""
        run = self.run
        why = run.why_stop()
        if status is not None or why is not None:
            self.abandon(why or f"the batch stopped ({status})")
            return
        if run.any_failed or unclaimed:
            self.abandon("a file failed")
            return
        shadow, table = run.target, run.table
        shared = run.shared

        def in_txn(ex: SqlExecutor | None) -> None:
            if shared:
                if ex is None:
                    raise SinkError("the sink's swap transaction cannot run SQL")
                run.audit.ledger.swap_in(ex, shadow, table)
            faults.point("replace-before-swap-commit")

        run.sink.swap_table(shadow, table, in_txn)  # type: ignore[attr-defined]
        self.swapped = True
        if not shared:
            faults.point("after-swap-before-manifest")
            run.audit.ledger.swap_done(shadow, table)
        loaded = run.acc.snapshot().files_loaded
        log.info("table %r replaced by the %d file(s) loaded by batch %s", table, loaded,
                 run.batch_id)

    def drop_stale_shadows(self) -> None:
        """Drop the shadow tables of replaces of this table that died before their swap."""
        run = self.run
        drop = getattr(run.sink, "drop_table", None)
        for shadow in run.audit.ledger.stale_shadows(run.table):
            if callable(drop):
                drop(shadow)
            run.audit.ledger.abandon_replace(
                shadow, f"replace interrupted before its swap; table {run.table!r} was left "
                "as it was"
            )
            log.warning("replace of %r: dropped %r, left by an interrupted replace",
                        run.table, shadow)

    def abandon(self, why: str) -> None:
        """The table stays as it was: the shadow's files become failed, the shadow is dropped."""
        run = self.run
        shadow = run.target
        if self.swapped:  # the table is the new one; only its manifest update failed
            log.error("replace of %r: the table was swapped in but recording it failed (%s); "
                      "its files still name %r", run.table, why, shadow)
            return
        try:
            n = run.audit.ledger.abandon_replace(
                shadow, f"replace abandoned ({why}); table {run.table!r} left as it was"
            )
            # the batch's counts as the manifest now has them: every file this batch loaded
            # was loaded into the shadow, so it is failed and its written rows rolled back
            snap = run.acc.snapshot()
            run.acc.unload(snap.files_loaded, snap.rows_written)
        finally:
            drop = getattr(run.sink, "drop_table", None)
            if callable(drop):
                try:
                    drop(shadow)
                except (TallyclerkError, OSError) as exc:
                    log.error("replace of %r: cannot drop the shadow table %r: %s",
                              run.table, shadow, message(exc))
        log.error("replace of %r abandoned (%s): %d loaded file(s) marked failed",
                  run.table, why, n)
