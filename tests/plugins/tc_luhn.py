"""A validator rejecting card numbers that fail the Luhn checksum (used by the tests of
sensitive fields): its reason names the value, as a careless validator's would."""

from __future__ import annotations

from typing import Any

from tallyclerk.hookspecs import hookimpl


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return bool(digits) and total % 10 == 0


@hookimpl
def tallyclerk_validate_batch(batch: Any) -> None:
    if "card" not in batch.columns:  # runs on every load of every table: a no-op here
        return
    for i, value in enumerate(batch.column("card")):
        if value is not None and not batch.is_rejected(i) and not luhn_ok(str(value)):
            batch.reject(i, "card", "luhn", f"card {value} fails the Luhn check")
