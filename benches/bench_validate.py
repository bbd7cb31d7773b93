"""``tallyclerk validate`` (a dry run) against the read side of a load.

The read side of a load is what its reader thread does per file: open the source through the
loader hook, run the validate and transform hooks on every record batch, collect the rejects
(``Pipeline._stream`` without the queue and the sink). The dry run must be at least as fast
(issue 15): ratio = read-side time / validate time, target 1.0 (quick mode: half). Both run
in this process on the same generated CSV with the Table Schema, medians of 3 after a warm-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as harness
import loadrun
import tallyclerk
from tallyclerk.plugins import get_plugin_manager
from tallyclerk.protocols import BatchContext
from tallyclerk.session import read_schema
from tallyclerk.settings import load_settings

ROWS = harness.size(100_000, 1_000_000)


def test_validate_vs_load_read_side() -> None:
    csv_path, _, schema_path = loadrun.data(ROWS)
    pm = get_plugin_manager([])
    settings = load_settings()
    schema = read_schema(str(schema_path))

    def read_side() -> int:
        opts = {"settings": settings, "schema": schema,
                "max_field_bytes": settings.max_field_bytes}
        source = pm.hook.tallyclerk_open_source(path=str(csv_path), options=opts)
        ctx = BatchContext(batch_id="b", file_id=1, path=str(csv_path), table="orders",
                           schema=schema, options=opts)
        rows = 0
        rejects = []
        try:
            for batch in source:
                pm.hook.tallyclerk_validate_batch(batch=batch, context=ctx)
                pm.hook.tallyclerk_transform_batch(batch=batch, context=ctx)
                if batch.num_rejected:
                    rejects.extend(batch.rejects())
                rows += batch.num_rows
        finally:
            source.close()
        return rows

    def dry_run() -> int:
        return tallyclerk.validate([str(csv_path)], schema=str(schema_path), pm=pm).rows_read

    assert read_side() == dry_run() == ROWS
    base = harness.measure(read_side, repeat=3)
    ours = harness.measure(dry_run, repeat=3)
    harness.check_ratio(
        "validate (dry run) vs a load's read side", base / ours, at_least=1.0,
        detail=f"validate {ROWS / ours:,.0f} rows/s, read side {ROWS / base:,.0f} rows/s",
    )
