"""The identity of a load's target database, recorded with a batch whose audit store is
another database (:mod:`tallyclerk.audit.uncertain` settles such batches' files). Its own
module, so that a load imports neither the uncertain files' machinery nor its dataclass
(issue 16.1); :mod:`tallyclerk.audit.uncertain` re-exports both names."""

from __future__ import annotations

import os

__all__ = ["OPTION", "target_key"]

OPTION = "data_target"
"""The batch option naming the target of a load whose audit store is another database."""


def target_key(url: str) -> str | None:
    """The identity of a target database tallyclerk can check (no user, no password):
    ``sqlite:PATH``, ``postgresql:HOST:PORT/DB`` or ``duckdb:PATH``; None for other targets
    (a plugin's sink: its files are never *uncertain*, a re-run replaces them as before)."""
    from tallyclerk.dburl import parse_url
    from tallyclerk.errors import ConfigError

    if url.startswith("duckdb:///"):
        return "duckdb:" + os.path.realpath(url[len("duckdb:///"):])
    try:
        db = parse_url(url)
    except ConfigError:
        return None
    if db.in_memory:
        return None
    ident = db.identity()
    if db.dialect == "sqlite":
        return f"sqlite:{ident[1]}"
    return f"postgresql:{ident[1]}:{ident[2]}/{ident[3]}"
