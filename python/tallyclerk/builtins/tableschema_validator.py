"""Frictionless Table Schema validation, done in Rust (:meth:`tallyclerk.RecordBatch.validate`).

Coerces each column to its field's type in place (string, integer, number, boolean, date,
datetime) and rejects rows that break a type or a constraint (required, enum, minimum/maximum,
minLength/maxLength, pattern), with the column, rule and reason. ``tryfirst``: validators
registered by other plugins run after it and see typed values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tallyclerk.hookspecs import hookimpl

if TYPE_CHECKING:
    from tallyclerk._core import RecordBatch
    from tallyclerk.protocols import BatchContext


@hookimpl(tryfirst=True)
def tallyclerk_validate_batch(batch: RecordBatch, context: BatchContext) -> None:
    """Validate and coerce the batch against ``context.schema`` (nothing to do without one)."""
    if context.schema is not None:
        batch.validate(context.schema, nan=context.stores_nan,
                       big_int=context.stores_big_int)
