"""Structured logs carry the bound context and never show a password."""

from __future__ import annotations

import io
import logging
import threading

import orjson

from tallyclerk.logs import bind, configure_logging
from tallyclerk.redact import redact


def test_redact_masks_url_passwords_and_keyword_passwords() -> None:
    text = (
        "connect postgresql+psycopg://loader:hunter2@db:5432/x failed; "
        "dsn password=hunter2 port=5"
    )
    out = redact(text)
    assert "hunter2" not in out
    assert "postgresql+psycopg://loader:***@db:5432/x" in out
    assert "password=***" in out


def test_redact_leaves_urls_without_password_alone() -> None:
    assert redact("sqlite:///tmp/a.db and http://host/x@y") == "sqlite:///tmp/a.db and http://host/x@y"


def test_json_log_lines_carry_context_extras_and_exception_class() -> None:
    buf = io.StringIO()
    handler = configure_logging("json", logging.INFO, buf)
    log = logging.getLogger("tallyclerk.test")
    try:
        with bind(batch_id="b1", correlation_id="c1"), bind(file_id=7):
            try:
                raise ValueError("bad postgresql://u:pw@h/db")
            except ValueError:
                log.error("load failed for %s", "postgresql://u:pw@h/db", exc_info=True,
                          extra={"rows": 3})
        log.info("outside")
    finally:
        logging.getLogger("tallyclerk").removeHandler(handler)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("{")]
    first, second = (orjson.loads(line) for line in lines)
    assert first["level"] == "error" and first["logger"] == "tallyclerk.test"
    assert (first["batch_id"], first["file_id"], first["correlation_id"]) == ("b1", 7, "c1")
    assert first["rows"] == 3 and first["exc_class"] == "ValueError"
    assert ":pw@" not in buf.getvalue()
    assert "batch_id" not in second


def test_context_is_per_thread() -> None:
    buf = io.StringIO()
    handler = configure_logging("text", logging.INFO, buf)
    log = logging.getLogger("tallyclerk.test")
    try:
        with bind(batch_id="main"):
            t = threading.Thread(target=lambda: log.info("from thread"))
            t.start()
            t.join()
            log.info("from main")
    finally:
        logging.getLogger("tallyclerk").removeHandler(handler)
    lines = buf.getvalue().splitlines()
    assert any("from thread" in ln and "batch_id" not in ln for ln in lines)
    assert any("from main" in ln and "batch_id=main" in ln for ln in lines)
