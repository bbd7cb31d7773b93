"""Helpers of the audit service tests: files, the target table, reading the manifest."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from tallyclerk.audit.models import AuditEvent, FileManifest
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
        with Session(engine) as s:
            return list(s.scalars(select(FileManifest).order_by(FileManifest.id)))
    finally:
        engine.dispose()


def set_file(db_path: str, file_id: int, **values: Any) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s, s.begin():
            s.execute(update(FileManifest).where(FileManifest.id == file_id).values(**values))
    finally:
        engine.dispose()


def read_events(db_path: str) -> list[AuditEvent]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    finally:
        engine.dispose()


def loaded_event() -> Any:
    from tallyclerk import FileEvent

    return FileEvent.LOADED
