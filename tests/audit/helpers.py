"""Helpers of the audit service tests: files, the target table, reading the manifest."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, update

from tallyclerk.audit.models import events, files
from tallyclerk.audit.rows import AuditEvent, FileManifest
from tests.audit.workers import TARGET

DEAD_PID = 2**22 + 12345  # above the default pid_max: never a live process


def write_file(path: Path, *lines: str) -> str:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


def create_target(db_path: str) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{TARGET}" (v TEXT, _tc_file_id INTEGER)')


def target_rows(db_path: str) -> list[tuple[str, int]]:
    with sqlite3.connect(db_path) as conn:
        return sorted(conn.execute(f'SELECT v, _tc_file_id FROM "{TARGET}"').fetchall())


def manifest(db_path: str) -> list[FileManifest]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            return [FileManifest._make(r)
                    for r in conn.execute(select(files).order_by(files.c.id))]
    finally:
        engine.dispose()


def set_file(db_path: str, file_id: int, **values: Any) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.begin() as conn:
            conn.execute(update(files).where(files.c.id == file_id).values(**values))
    finally:
        engine.dispose()


def read_events(db_path: str) -> list[AuditEvent]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            return [AuditEvent._make(r)
                    for r in conn.execute(select(events).order_by(events.c.id))]
    finally:
        engine.dispose()


def loaded_event() -> Any:
    from tallyclerk import FileEvent

    return FileEvent.LOADED
