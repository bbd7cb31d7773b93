"""The conformance suites run against the built-in plugins: proof that the suites work.

Each class below is what a plugin author writes in their own tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from tallyclerk.builtins import (
    csv_loader,
    jsonl_loader,
    sqlalchemy_sink,
    sqlite_sink,
    tableschema_validator,
    tsv_loader,
)
from tallyclerk.testing import LoaderConformance, SinkConformance, ValidatorConformance


class TestCsvLoader(LoaderConformance):
    plugin = csv_loader
    format = "csv"
    suffixes = (".csv",)
    expected_rows: ClassVar[list[dict[str, Any]]] = [
        {"id": "1", "name": "plain", "note": ""},
        {"id": "2", "name": "with, comma", "note": 'a "quoted"\nnewline'},
        {"id": "3", "name": "ünï", "note": "x"},
        {"id": "4", "name": "last", "note": "y"},
    ]
    bad_line = 3

    def make_sample(self, directory: Path) -> Path:
        path = directory / "sample.csv"
        path.write_text(
            'id,name,note\n1,plain,\n2,"with, comma","a ""quoted""\nnewline"\n3,ünï,x\n4,last,y\n',
            encoding="utf-8",
        )
        return path

    def make_bad_file(self, directory: Path) -> Path:
        path = directory / "broken.csv"
        path.write_text('id,name,note\n1,a,b\n2,"never closed,c\n3,d,e\n', encoding="utf-8")
        return path


class TestCsvLoaderWithSchema(TestCsvLoader):
    """With a schema, ``expected_rows`` are the typed values."""

    schema: ClassVar[dict[str, Any]] = {"fields": [
        {"name": "id", "type": "integer"}, {"name": "name"}, {"name": "note"}]}
    expected_rows: ClassVar[list[dict[str, Any]]] = [
        {**row, "id": int(row["id"]), "note": row["note"] or None}
        for row in TestCsvLoader.expected_rows
    ]


class TestTsvLoader(LoaderConformance):
    plugin = tsv_loader
    format = "tsv"
    suffixes = (".tsv", ".tab")
    expected_rows: ClassVar[list[dict[str, Any]]] = [
        {"id": "1", "name": '"quoted"', "note": ""},
        {"id": "2", "name": "tab\there", "note": "line\nbreak \\ \\q"},
        {"id": "3", "name": "ünï", "note": "x"},
    ]

    def make_sample(self, directory: Path) -> Path:
        path = directory / "sample.tsv"
        path.write_text('id\tname\tnote\n1\t"quoted"\t\n2\ttab\\there\tline\\nbreak \\\\ \\q\n'
                        "3\tünï\tx\n", encoding="utf-8")
        return path


class TestJsonlLoader(LoaderConformance):
    plugin = jsonl_loader
    format = "jsonl"
    other_formats = ("ndjson",)
    suffixes = (".jsonl", ".ndjson")
    expected_rows: ClassVar[list[dict[str, Any]]] = [
        {"id": 1, "name": "a", "tags": '["x","y"]'},
        {"id": 2, "name": "b", "tags": None},
        {"id": 3, "name": None, "tags": "[]"},
    ]

    def make_sample(self, directory: Path) -> Path:
        path = directory / "sample.jsonl"
        lines = [
            {"id": 1, "name": "a", "tags": ["x", "y"]},
            {"id": 2, "name": "b"},
            {"id": 3, "name": None, "tags": []},
        ]
        path.write_bytes(b"\n".join(orjson.dumps(o) for o in lines) + b"\n")
        return path


class TestTableSchemaValidator(ValidatorConformance):
    plugin = tableschema_validator
    schema: ClassVar[dict[str, Any]] = {
        "fields": [
            {"name": "id", "type": "integer", "constraints": {"required": True}},
            {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
            {"name": "currency", "type": "string", "constraints": {"enum": ["EUR", "USD"]}},
        ]
    }
    columns = ("id", "amount", "currency")
    good_rows = (("1", "1.5", "EUR"), ("2", "0", "USD"), ("3", "10", None))
    bad_rows = (("x", "1", "EUR"), ("4", "-1", "EUR"), ("5", "1", "BTC"), (None, "1", "EUR"))
    expected_rejects = (
        ("id", "type"), ("amount", "minimum"), ("currency", "enum"), ("id", "required"),
    )


class TestSqliteSink(SinkConformance):
    plugin = sqlite_sink
    foreign_urls = ("nosuchscheme://host/db", "postgresql://u:p@localhost/db",
                    "sqlite:///x.db?mode=ro")


class TestSqlalchemySinkOnSqlite(SinkConformance):
    """The generic sink; a query string keeps the SQLite fast path from claiming the URL."""

    plugin = sqlalchemy_sink

    def make_url(self, directory: Path) -> str:
        return "sqlite:///" + str(directory / "generic.db") + "?timeout=30"


@pytest.mark.postgres
class TestSqlalchemySinkOnPostgres(SinkConformance):
    plugin = sqlalchemy_sink

    @pytest.fixture()
    def url(self, pg_url: str) -> str:
        return pg_url
