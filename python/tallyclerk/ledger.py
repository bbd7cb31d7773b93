"""The ledger's own operations in the Python API: ``tallyclerk.verify()`` and
``tallyclerk.file_history()``.

The hash chain itself (what is sealed, when, and how it is checked) is
:mod:`tallyclerk.audit.chain`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tallyclerk.audit.chainreport import VerifyReport
from tallyclerk.errors import ConfigError

if TYPE_CHECKING:
    from tallyclerk.audit import AuditService

__all__ = ["VerifyReport", "file_history", "verify"]


def _service(audit: str) -> AuditService:
    from tallyclerk.audit import AuditService
    from tallyclerk.dburl import default_audit_url, parse_url
    from tallyclerk.settings import load_settings

    audit = default_audit_url(audit)  # a DuckDB target's audit store: the file beside it
    db = parse_url(audit)
    if db.dialect == "sqlite" and db.path is not None and not os.path.exists(db.path):
        raise ConfigError(f"no tallyclerk database at {db.masked} (nothing loaded yet?)")
    # no seal at close and no event writer: reading the ledger never extends the chain
    settings = replace(load_settings(), audit_chain=False, audit_async=False)
    return AuditService(audit, settings=settings)


def file_history(path: str, audit: str = "sqlite:///tallyclerk.db") -> list[dict[str, Any]]:
    """Every manifest row of ``path`` (``tallyclerk status --file``), oldest first: loads,
    skips, failures, ``--force`` and ``--mode replace`` replacements, with their batches.
    A row killed between its data commit and its manifest commit (audit store apart) has
    status ``uncertain`` until ``tallyclerk repair`` or the next load settles it."""
    from tallyclerk.audit import uncertain

    with _service(audit) as service:
        return uncertain.mark_history(service.file_history(path),
                                      service.ledger.uncertain_files(path=path))


def verify(
    audit: str = "sqlite:///tallyclerk.db", *, since_anchor: str | None = None
) -> VerifyReport:
    """Recompute the ledger's hash chain and name the first broken link.

    Args:
        audit: the audit store (``sqlite:///PATH`` or ``postgresql://...``).
        since_anchor: a head hash published earlier (``tallyclerk verify --anchor``): the
            report is not ``ok`` unless the chain still holds it.

    Returns:
        a :class:`VerifyReport`: ``ok``, the head (``head_hash`` is the anchor to publish),
        the number of links, rows final but not sealed yet, and ``broken`` (table, row,
        chain position, what changed) for the first broken link.

    Raises:
        ConfigError: no audit store at ``audit``.
    """
    with _service(audit) as service:
        return service.verify(since_anchor=since_anchor)
